//! The client commands: `put`, `get`, `delete` (exit status 0 on success, 1 for a key not
//! found, 2 for an error the node reported), `status` and `ring`.

use crate::Target;
use ringstore_node::client::{Client, Reply};
use serde_json::Value;

fn query(target: &Target, count: &str) -> String {
    match target.consistency.as_deref() {
        None => String::new(),
        Some(c) if c.parse::<u32>().is_ok() => format!("{count}={c}"),
        Some(c) => format!("consistency={c}"),
    }
}

/// Prints a node's error answer; the exit status for it.
fn report_error(reply: &Reply) -> i32 {
    let message = reply
        .json()
        .ok()
        .and_then(|j| j.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).into_owned());
    let code = reply
        .error_code()
        .unwrap_or_else(|| reply.status.to_string());
    eprintln!("error: {code}: {message}");
    if reply.status == 404 { 1 } else { 2 }
}

fn report_write(reply: &Reply) -> anyhow::Result<i32> {
    if reply.status != 200 {
        return Ok(report_error(reply));
    }
    let j = reply.json()?;
    println!(
        "ok: timestamp {} by {}, {} acks ({} hinted)",
        j["timestamp"],
        node_name(&j["writer"]),
        j["acks"],
        j["hinted"]
    );
    Ok(0)
}

/// `ringstore put KEY VALUE`.
pub fn put(target: &Target, key: &str, value: &[u8]) -> anyhow::Result<i32> {
    let reply = Client::new(&target.node).put(key.as_bytes(), value, &query(target, "w"))?;
    report_write(&reply)
}

/// `ringstore delete KEY`.
pub fn delete(target: &Target, key: &str) -> anyhow::Result<i32> {
    let reply = Client::new(&target.node).delete(key.as_bytes(), &query(target, "w"))?;
    report_write(&reply)
}

/// `ringstore get KEY`: the value on stdout, its timestamp on stderr.
pub fn get(target: &Target, key: &str) -> anyhow::Result<i32> {
    let reply = Client::new(&target.node).get(key.as_bytes(), &query(target, "r"))?;
    if reply.status != 200 {
        return Ok(report_error(&reply));
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&reply.body)?;
    out.write_all(b"\n")?;
    // The caller exits with `process::exit`, which runs no destructor: flush now.
    out.flush()?;
    eprintln!(
        "timestamp {} by {}",
        reply.timestamp().unwrap_or_default(),
        reply.header("x-ringstore-writer").unwrap_or("?")
    );
    Ok(0)
}

/// A node id from JSON (a number) as `n3`.
fn node_name(v: &Value) -> String {
    v.as_u64()
        .map_or_else(|| "?".to_string(), |n| format!("n{n}"))
}

fn share(v: &Value) -> String {
    format!("{:.1}%", v.as_f64().unwrap_or(0.0) * 100.0)
}

/// `ringstore status`: the members as the node sees them.
pub fn status(client: &Client) -> anyhow::Result<()> {
    let c = client.cluster()?;
    println!(
        "cluster as seen by {} ({}), N={} W={} R={}",
        node_name(&c["node"]),
        c["address"].as_str().unwrap_or("?"),
        c["n"],
        c["w"],
        c["r"]
    );
    println!(
        "{:<6} {:<22} {:<8} {:<8} {:>6} {:>7} {:>8} {:>8}",
        "node", "address", "state", "status", "phi", "tokens", "primary", "replica"
    );
    for m in c["members"].as_array().into_iter().flatten() {
        let phi = m["phi"]
            .as_f64()
            .map_or_else(|| "-".to_string(), |p| format!("{p:.1}"));
        let mut state = m["state"].as_str().unwrap_or("?").to_string();
        if m["partitioned"].as_bool() == Some(true) {
            state.push('*');
        }
        println!(
            "{:<6} {:<22} {:<8} {:<8} {:>6} {:>7} {:>8} {:>8}",
            node_name(&m["id"]),
            m["address"].as_str().unwrap_or(""),
            state,
            m["status"].as_str().unwrap_or("?"),
            phi,
            m["tokens"],
            share(&m["primary_share"]),
            share(&m["replica_share"]),
        );
    }
    let hints: u64 = c["hints_held"]
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    println!(
        "hints held: {hints}; requests in flight: {}; repairs done: {} ({} keys repaired)",
        c["in_flight"], c["anti_entropy"]["sessions_done"], c["anti_entropy"]["keys_repaired"]
    );
    Ok(())
}

/// `ringstore ring`: every token in ring order.
pub fn ring(client: &Client) -> anyhow::Result<()> {
    let c = client.cluster()?;
    let tokens = c["ring"].as_array().cloned().unwrap_or_default();
    println!(
        "{} tokens on the ring of {} (N={})",
        tokens.len(),
        node_name(&c["node"]),
        c["n"]
    );
    println!(
        "{:>22} {:>9} {:>6}  range share",
        "token", "position", "owner"
    );
    let positions: Vec<f64> = tokens
        .iter()
        .map(|t| t["position"].as_f64().unwrap_or(0.0))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        // A token owns the range from the previous token (exclusive) to itself.
        let prev = if i == 0 {
            positions.last().copied().unwrap_or(0.0) - 1.0
        } else {
            positions[i - 1]
        };
        let width = if tokens.len() == 1 {
            1.0
        } else {
            positions[i] - prev
        };
        println!(
            "{:>22} {:>9.5} {:>6}  {:.2}%",
            t["token"].as_str().unwrap_or("?"),
            positions[i],
            node_name(&t["node"]),
            width * 100.0
        );
    }
    Ok(())
}
