//! A small blocking HTTP client for a node's API (on `ureq`): what the `ringstore put/get/
//! delete/status/ring` commands, the demo and the end-to-end tests use.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use std::time::Duration;

/// Bytes left as they are in a key's path segment (RFC 3986's unreserved characters).
const KEY_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Bytes of a response body read at most (a value at the hard limit, plus room).
const BODY_BYTES_MAX: u64 = 17 << 20;

/// A key as a percent-encoded path segment.
pub fn encode_key(key: &[u8]) -> String {
    percent_encode(key, KEY_ESCAPE).to_string()
}

/// An HTTP answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            anyhow::anyhow!(
                "status {}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The LWW timestamp of a read value (`x-ringstore-timestamp`) or a write (`timestamp`).
    pub fn timestamp(&self) -> Option<u64> {
        self.header(crate::http::TIMESTAMP_HEADER)
            .and_then(|v| v.parse().ok())
            .or_else(|| self.json().ok()?.get("timestamp")?.as_u64())
    }

    /// The JSON error code of an error answer.
    pub fn error_code(&self) -> Option<String> {
        self.json().ok()?.get("error")?.as_str().map(str::to_string)
    }
}

/// A client of one node.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    /// A client of the node at `addr` (`host:port` or `http://host:port`), with a 10 s
    /// timeout per request.
    pub fn new(addr: &str) -> Client {
        Client::with_timeout(addr, Duration::from_secs(10))
    }

    /// A client with a given timeout per request.
    pub fn with_timeout(addr: &str, timeout: Duration) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build();
        let base = if addr.starts_with("http://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        Client {
            agent: config.into(),
            base,
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; `path` includes any query.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> anyhow::Result<Reply> {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            ("PUT", b) => self.agent.put(&url).send(b.unwrap_or(&[])),
            ("POST", b) => self
                .agent
                .post(&url)
                .header("content-type", "application/json")
                .send(b.unwrap_or(&[])),
            (m, _) => anyhow::bail!("unsupported method {m}"),
        };
        let mut response = response.map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| anyhow::anyhow!("{method} {url}: reading the body: {e}"))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn kv_path(key: &[u8], query: &str) -> String {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("/kv/{}{q}", encode_key(key))
    }

    /// `PUT /kv/{key}?{query}`.
    pub fn put(&self, key: &[u8], value: &[u8], query: &str) -> anyhow::Result<Reply> {
        self.request("PUT", &Client::kv_path(key, query), Some(value))
    }

    /// `GET /kv/{key}?{query}`.
    pub fn get(&self, key: &[u8], query: &str) -> anyhow::Result<Reply> {
        self.request("GET", &Client::kv_path(key, query), None)
    }

    /// `DELETE /kv/{key}?{query}`.
    pub fn delete(&self, key: &[u8], query: &str) -> anyhow::Result<Reply> {
        self.request("DELETE", &Client::kv_path(key, query), None)
    }

    /// `GET /cluster` as JSON.
    pub fn cluster(&self) -> anyhow::Result<serde_json::Value> {
        let reply = self.request("GET", "/cluster", None)?;
        if reply.status != 200 {
            anyhow::bail!("GET /cluster: status {}", reply.status);
        }
        reply.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_for_the_path() {
        assert_eq!(encode_key(b"user123"), "user123");
        assert_eq!(encode_key(b"a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_key(b"\xff-_.~"), "%FF-_.~");
    }
}
