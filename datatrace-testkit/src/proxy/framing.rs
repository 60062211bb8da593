//! HTTP/1.x message framing for the proxy: reading complete requests and responses (head plus
//! a body delimited by `Content-Length`, chunked encoding or the end of the connection).

use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest head (request or status line plus header fields) accepted.
const MAX_HEAD: usize = 64 * 1024;

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

/// Whether the first bytes a client sent start an HTTP request line: `Some(true)` / `Some(false)`,
/// or `None` when they are too few to tell.
pub(super) fn looks_like_http(first: &[u8]) -> Option<bool> {
    if first.is_empty() {
        return None;
    }
    let mut undecided = false;
    for method in METHODS {
        if first.starts_with(method) {
            return Some(true);
        }
        if method.starts_with(first) {
            undecided = true;
        }
    }
    if undecided {
        None
    } else {
        Some(false)
    }
}

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    /// Exactly this many bytes (0 for no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

/// A parsed message head; `raw` keeps the exact bytes, including the blank line.
#[derive(Debug, Clone)]
pub(super) struct Head {
    pub(super) raw: Vec<u8>,
    /// The request line or status line.
    pub(super) start: String,
    /// Header fields in order.
    pub(super) fields: Vec<(String, String)>,
}

impl Head {
    pub(super) fn parse(raw: Vec<u8>) -> io::Result<Head> {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.trim_end_matches("\r\n").split("\r\n");
        let start = lines.next().unwrap_or_default().to_string();
        let fields = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split_once(':')
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| invalid(format!("malformed header field {l:?}")))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Head { raw, start, fields })
    }

    /// The value of the first field called `name` (case-insensitive).
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether some field `name` lists `token` (comma-separated, case-insensitive).
    pub(super) fn has_token(&self, name: &str, token: &str) -> bool {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The request method (first word of the request line).
    pub(super) fn method(&self) -> &str {
        self.start.split(' ').next().unwrap_or_default()
    }

    /// The status code of a status line.
    pub(super) fn status(&self) -> io::Result<u16> {
        self.start
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("malformed status line {:?}", self.start)))
    }

    fn is_http10(&self) -> bool {
        self.start.ends_with("HTTP/1.0") || self.start.starts_with("HTTP/1.0")
    }

    /// Whether the connection stays open after this message (HTTP/1.1 unless `close`,
    /// HTTP/1.0 only with `keep-alive`).
    pub(super) fn keeps_alive(&self) -> bool {
        if self.has_token("Connection", "close") {
            false
        } else {
            !self.is_http10() || self.has_token("Connection", "keep-alive")
        }
    }

    fn declared_body(&self) -> io::Result<Option<Body>> {
        if self.has_token("Transfer-Encoding", "chunked") {
            return Ok(Some(Body::Chunked));
        }
        match self.field("Content-Length") {
            Some(n) => n
                .parse()
                .map(|n| Some(Body::Length(n)))
                .map_err(|_| invalid(format!("malformed Content-Length {n:?}"))),
            None => Ok(None),
        }
    }

    /// How the body of this request is delimited.
    pub(super) fn request_body(&self) -> io::Result<Body> {
        Ok(self.declared_body()?.unwrap_or(Body::Length(0)))
    }

    /// How the body of this response to a `method` request is delimited.
    pub(super) fn response_body(&self, method: &str) -> io::Result<Body> {
        let status = self.status()?;
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304
        {
            return Ok(Body::Length(0));
        }
        Ok(self.declared_body()?.unwrap_or(Body::UntilClose))
    }

    /// The raw head without the fields called `name`.
    pub(super) fn without(&self, name: &str) -> Vec<u8> {
        let mut raw = format!("{}\r\n", self.start);
        for (n, v) in self
            .fields
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
        {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        raw.into_bytes()
    }
}

/// A buffered reader over a connection that reads whole HTTP messages.
pub(super) struct Wire {
    pub(super) stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Wraps `stream`; `already_read` holds bytes read from it before.
    pub(super) fn new(stream: TcpStream, already_read: Vec<u8>) -> Wire {
        Wire {
            stream,
            buf: already_read,
        }
    }

    /// Reads more bytes into the buffer; false at end of stream.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads a head; `None` when the peer closed the connection before sending a byte.
    pub(super) async fn read_head(&mut self) -> io::Result<Option<Head>> {
        let mut searched = 0;
        loop {
            if let Some(at) = find(&self.buf[searched..], b"\r\n\r\n") {
                let end = searched + at + 4;
                let raw: Vec<u8> = self.buf.drain(..end).collect();
                return Head::parse(raw).map(Some);
            }
            searched = self.buf.len().saturating_sub(3);
            if self.buf.len() > MAX_HEAD {
                return Err(invalid(format!(
                    "message head longer than {MAX_HEAD} bytes"
                )));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(truncated())
                };
            }
        }
    }

    /// Reads a body delimited as `body` and appends its raw bytes (chunk framing included) to `out`.
    pub(super) async fn read_body(&mut self, body: Body, out: &mut Vec<u8>) -> io::Result<()> {
        match body {
            Body::Length(n) => self.read_exact(n, out).await,
            Body::Chunked => self.read_chunked(out).await,
            Body::UntilClose => {
                while self.fill().await? {}
                out.append(&mut self.buf);
                Ok(())
            }
        }
    }

    async fn read_exact(&mut self, n: u64, out: &mut Vec<u8>) -> io::Result<()> {
        let mut left = n;
        loop {
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            out.extend(self.buf.drain(..take));
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
            if !self.fill().await? {
                return Err(truncated());
            }
        }
    }

    /// Reads one line including its CRLF into `out`; returns the line without CRLF.
    async fn read_line(&mut self, out: &mut Vec<u8>) -> io::Result<String> {
        loop {
            if let Some(at) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).collect();
                out.extend_from_slice(&line);
                return Ok(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("chunk line too long".to_string()));
            }
            if !self.fill().await? {
                return Err(truncated());
            }
        }
    }

    async fn read_chunked(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        loop {
            let line = self.read_line(out).await?;
            let size_text = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| invalid(format!("malformed chunk size {line:?}")))?;
            if size == 0 {
                // Trailer fields, then the blank line.
                while !self.read_line(out).await?.is_empty() {}
                return Ok(());
            }
            self.read_exact(size + 2, out).await?;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed in the middle of a message",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_request_lines() {
        assert_eq!(looks_like_http(b"GET / HTTP/1.1\r\n"), Some(true));
        assert_eq!(looks_like_http(b"PO"), None);
        assert_eq!(looks_like_http(b"\x4a\x00\x00\x00\x0a"), Some(false));
        assert_eq!(looks_like_http(b"GETX"), Some(false));
    }

    #[test]
    fn parses_heads_and_framing() {
        let raw = b"POST /_bulk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n";
        let head = Head::parse(raw.to_vec()).unwrap();
        assert_eq!(head.method(), "POST");
        assert_eq!(head.request_body().unwrap(), Body::Chunked);
        assert!(head.keeps_alive());
        let without = Head::parse(head.without("host")).unwrap();
        assert_eq!(without.field("Host"), None);
        assert_eq!(without.field("connection"), Some("keep-alive"));

        let resp = Head::parse(b"HTTP/1.0 200 OK\r\n\r\n".to_vec()).unwrap();
        assert_eq!(resp.response_body("GET").unwrap(), Body::UntilClose);
        assert_eq!(resp.response_body("HEAD").unwrap(), Body::Length(0));
        assert!(!resp.keeps_alive());
        let no_content =
            Head::parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".to_vec()).unwrap();
        assert_eq!(no_content.response_body("GET").unwrap(), Body::Length(0));
    }
}
