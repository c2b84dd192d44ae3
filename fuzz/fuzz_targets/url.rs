//! The page's URL parameters (`ringstore_web::url::parse`), which anyone can put in a link.
//! Parsing never panics; what it reads back from its own query string is what it wrote, with
//! no warnings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringstore_web::url::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(query);
    let again = parse(&parsed.settings.to_query());
    assert_eq!(
        again.warnings,
        Vec::<String>::new(),
        "a written query warns"
    );
    assert_eq!(
        again.settings, parsed.settings,
        "a written query reads back otherwise"
    );
});
