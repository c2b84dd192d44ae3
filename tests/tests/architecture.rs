//! Keeps `ARCHITECTURE.md` and the design rules it states true.
//!
//! - Every repository path and every Rust name the document writes in backticks must exist: a
//!   path relative to the repository root (a bare file name somewhere in the repository), a
//!   Rust name as a definition somewhere in the workspace's sources (`fn`, `struct`, `enum`,
//!   `trait`, `type`, `const`, `static`, `mod`, a variant or a field, a dependency's crate
//!   name). Each segment of a path such as `Node::handle` is checked.
//! - The core stays sans-IO: no clock, file, socket, thread, process or OS randomness of its
//!   own in `core/src/`.
//!
//! What counts as a path or a Rust name is decided by [`classify`], whose own tests show it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the repository root")
        .to_path_buf()
}

/// Directories never searched: build output, dependencies, generated files, git.
const SKIPPED_DIRS: &[&str] = &[
    "target",
    "node_modules",
    ".git",
    "pkg",
    "corpus",
    "artifacts",
];

/// Every file under `dir`, skipping [`SKIPPED_DIRS`], in a fixed order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    stack.push(path);
                }
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// What a backticked span names.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    /// A file or directory of the repository: with a `/`, relative to the root (`*` matches
    /// within the last segment); without, a file name found anywhere in it.
    Path(String),
    /// A Rust path: each segment must be defined somewhere.
    Rust(Vec<String>),
    /// Anything else (a command, a value, a header, a JavaScript call).
    Other,
}

/// File extensions that make a slash-less span a file name.
const FILE_EXTENSIONS: &[&str] = &[
    "rs", "md", "js", "mjs", "html", "css", "toml", "json", "script", "golden", "sh",
];

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Decides what a backticked span names (see [`Name`]).
fn classify(span: &str) -> Name {
    let span = span.trim();
    let path_chars = |c: char| c.is_ascii_alphanumeric() || "/._-*".contains(c);
    if !span.is_empty() && span.chars().all(path_chars) && !span.starts_with(['/', '-', '.']) {
        let first = span.split('/').next().unwrap_or_default();
        let placeholder = first.chars().all(|c| c.is_ascii_uppercase()) && span.contains('/');
        let extension = span.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        if !placeholder && (span.contains('/') || FILE_EXTENSIONS.contains(&extension)) {
            return Name::Path(span.to_string());
        }
    }
    // A Rust path, then nothing, a call, a struct literal, generics or a return type.
    let end = span
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(span.len());
    let (head, rest) = span.split_at(end);
    let rest_ok = rest.is_empty()
        || ["(", " {", "{", "<", " ->"]
            .iter()
            .any(|p| rest.starts_with(p));
    let segments: Vec<String> = head.split("::").map(str::to_string).collect();
    if !rest_ok || head.ends_with(':') || !segments.iter().all(|s| is_ident(s)) {
        return Name::Other;
    }
    let word = &segments[0];
    let camel = word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase());
    let screaming = word.contains('_') && !word.chars().any(|c| c.is_ascii_lowercase());
    let snake = word.contains('_') && !word.chars().any(|c| c.is_ascii_uppercase());
    let call = rest.starts_with('(') && word.chars().any(|c| c.is_ascii_lowercase());
    if segments.len() > 1 || camel || screaming || snake || call {
        Name::Rust(segments)
    } else {
        Name::Other
    }
}

/// The backticked spans of a Markdown text outside fenced blocks, and its link targets.
fn spans(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(code), Some(_)) = (parts.next(), parts.next()) {
            out.push(code.to_string());
        }
        for (i, _) in line.match_indices("](") {
            let target = &line[i + 2..];
            if let Some(end) = target.find(')') {
                let target = &target[..end];
                if !target.contains("://") && !target.starts_with('#') {
                    out.push(target.split('#').next().unwrap_or_default().to_string());
                }
            }
        }
    }
    out
}

/// Identifiers defined in Rust sources and crate names of the workspace's manifests.
fn defined_names(root: &Path) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union",
    ];
    let mut names = BTreeSet::new();
    for path in files(root) {
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if ext == "toml" {
            // Dependency keys and package names: `quick_cache = ...`, `name = "ringstore-core"`.
            for line in text.lines() {
                if let Some((key, value)) = line.split_once('=') {
                    let key = key.trim();
                    if key == "name" {
                        names.insert(value.trim().trim_matches('"').replace('-', "_"));
                    } else if is_ident(&key.replace('-', "_")) {
                        names.insert(key.replace('-', "_"));
                    }
                }
            }
            continue;
        }
        if ext != "rs" {
            continue;
        }
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            names.insert(stem.to_string());
        }
        for line in text.lines() {
            let words: Vec<&str> = line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                if KEYWORDS.contains(&pair[0]) {
                    names.insert(pair[1].to_string());
                }
            }
            // A variant or a field: the line starts with the name (after `pub` and its scope).
            let mut t = line.trim_start();
            for prefix in ["pub(crate) ", "pub(super) ", "pub "] {
                t = t.strip_prefix(prefix).unwrap_or(t);
            }
            let end = t
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(t.len());
            let (word, after) = t.split_at(end);
            let after = after.trim_start();
            if is_ident(word) && (after.is_empty() || after.starts_with([':', '(', '{', ','])) {
                names.insert(word.to_string());
            }
        }
    }
    names
}

/// Whether `pattern` names a file or directory under `root`: a relative path whose last
/// segment may hold `*`s.
fn path_exists(root: &Path, pattern: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    let (dir, last) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    if !last.contains('*') {
        return root.join(pattern).exists();
    }
    let Ok(entries) = fs::read_dir(root.join(dir)) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| glob_match(last, &e.file_name().to_string_lossy()))
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| {
                    name.is_char_boundary(head.len() + i)
                        && glob_match(tail, &name[head.len() + i..])
                })
        }
    }
}

/// The names in `markdown` that do not exist in the repository at `root`.
fn missing_names(root: &Path, markdown: &str) -> Vec<String> {
    let defined = defined_names(root);
    let file_names: BTreeSet<String> = files(root)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let mut missing = Vec::new();
    for span in spans(markdown) {
        match classify(&span) {
            Name::Path(p) if p.contains('/') => {
                if !path_exists(root, &p) {
                    missing.push(format!("path `{p}`"));
                }
            }
            Name::Path(p) => {
                if !file_names.contains(&p) {
                    missing.push(format!("file `{p}`"));
                }
            }
            Name::Rust(segments) => {
                for s in segments.iter().filter(|s| !defined.contains(*s)) {
                    missing.push(format!("`{s}` in `{span}`"));
                }
            }
            Name::Other => {}
        }
    }
    missing.dedup();
    missing
}

#[test]
fn every_path_and_rust_name_in_architecture_md_exists() {
    let root = root();
    let doc = fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let missing = missing_names(&root, &doc);
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what does not exist (rename it there, or fix the code):\n  {}",
        missing.join("\n  ")
    );
    let lines = doc.lines().count();
    assert!(
        lines <= 420,
        "ARCHITECTURE.md is a map: {lines} lines; move detail into module docs"
    );
}

#[test]
fn a_wrong_name_or_path_in_the_document_is_reported() {
    let root = root();
    let doc = "The node (`core/src/node/mod.rs`) runs `Node::handle` and `run_read(op)`.\n\
               Not here: `core/src/node/nowhere.rs`, `Node::no_such_method`, `NoSuchType`, \
               `shared/hooks/before-stop`, `nowhere.js`, [a link](docs/NOWHERE.md).\n\
               ```text\n`InsideAFence` is a diagram, not checked\n```\n";
    assert_eq!(
        missing_names(&root, doc),
        [
            "path `core/src/node/nowhere.rs`",
            "`no_such_method` in `Node::no_such_method`",
            "`NoSuchType` in `NoSuchType`",
            "path `shared/hooks/before-stop`",
            "file `nowhere.js`",
            "path `docs/NOWHERE.md`",
        ]
    );
}

#[test]
fn spans_are_classified_as_paths_rust_names_or_neither() {
    let rust = |s: &[&str]| Name::Rust(s.iter().map(|s| s.to_string()).collect());
    let path = |s: &str| Name::Path(s.to_string());
    let cases = [
        ("core/src/wire.rs", path("core/src/wire.rs")),
        ("www/", path("www/")),
        (
            "core/tests/scripts/*.script",
            path("core/tests/scripts/*.script"),
        ),
        ("docs/LESSONS.md", path("docs/LESSONS.md")),
        ("app.js", path("app.js")),
        (
            "Node::handle(now, Input) -> Vec<Output>",
            rust(&["Node", "handle"]),
        ),
        ("Version { ts, node: n2 }", rust(&["Version"])),
        ("Vec<Output>", rust(&["Vec"])),
        ("run_read", rust(&["run_read"])),
        ("plan(before, after, N)", rust(&["plan"])),
        ("PUT(\"user123\", \"Alice\")", Name::Other),
        ("WAL_MAGIC", rust(&["WAL_MAGIC"])),
        ("Envelope", rust(&["Envelope"])),
        ("DIR/node.state", Name::Other),
        ("node.state", Name::Other),
        ("plan", Name::Other),
        ("MANIFEST", Name::Other),
        ("UPDATE_GOLDENFILES=1", Name::Other),
        ("purpose: Client", Name::Other),
        ("cargo test -p ringstore-web", Name::Other),
        ("--join ADDR", Name::Other),
        ("/ws/ui", Name::Other),
        ("Cluster.open", Name::Other),
        ("127.0.0.1", Name::Other),
        ("ringstore-core", Name::Other),
    ];
    for (span, want) in cases {
        assert_eq!(classify(span), want, "{span}");
    }
}

#[test]
fn the_core_does_no_io_of_its_own() {
    const FORBIDDEN: &[&str] = &[
        "std::fs",
        "std::net",
        "std::thread",
        "std::process",
        "SystemTime::now",
        "Instant::now",
        "tokio",
        "thread_rng",
        "rand::rng()",
        "OsRng",
        "getrandom",
    ];
    let root = root();
    let mut found = Vec::new();
    for path in files(&root.join("core/src")) {
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a source file");
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if let Some(f) = FORBIDDEN.iter().find(|f| line.contains(*f)) {
                let at = path.strip_prefix(&root).unwrap_or(&path).display();
                found.push(format!("{at}:{}: {f}", i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the core takes time, randomness and I/O as inputs; these lines reach for their own:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn docs_and_comments_cite_no_tracker_numbers() {
    // An issue, session or ticket number: a reader of the repository cannot look it up. The
    // text should say what the code does instead.
    const EXTENSIONS: &[&str] = &["rs", "md", "js", "mjs", "html", "css", "toml", "sh"];
    let root = root();
    let mut found = Vec::new();
    for path in files(&root) {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let scripts = path.parent().is_some_and(|p| p.ends_with("scripts"));
        if !(EXTENSIONS.contains(&ext) || scripts) {
            continue;
        }
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if let Some(cited) = tracker_citation(line) {
                let at = path.strip_prefix(&root).unwrap_or(&path).display();
                found.push(format!("{at}:{}: {cited}", i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "tracker numbers in the repository:\n  {}",
        found.join("\n  ")
    );
}

/// The first tracker citation in `line`: a word such as "issue" followed by a number.
fn tracker_citation(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let noun = w[0].trim_start_matches(|c: char| !c.is_ascii_alphabetic());
        let number = w[1].trim_start_matches('#');
        let cites = ["issue", "issues", "session", "sessions", "ticket", "pr"].contains(&noun)
            && number.starts_with(|c: char| c.is_ascii_digit());
        cites.then(|| format!("{} {}", w[0], w[1]))
    })
}

#[test]
fn tracker_citations_are_recognised() {
    // Spelled in pieces, so that this file does not cite what it tests for.
    let cite = |a: &str, b: &str| format!("{a} {b}");
    assert_eq!(
        tracker_citation(&cite("(issue", "8) will send")),
        Some(cite("(issue", "8)"))
    );
    assert_eq!(
        tracker_citation(&cite("see Issue", "#12.")),
        Some(cite("issue", "#12."))
    );
    assert_eq!(
        tracker_citation(&cite("## Gossip (session", "4, 2026-12-02)")),
        Some(cite("(session", "4,"))
    );
    assert_eq!(tracker_citation("the issue is that 3 nodes"), None);
    assert_eq!(tracker_citation("a session of 4 messages"), None);
}
