//! The bulk endpoint's HTTP/1.1 requests: the head (method, path, `filter_path`, gzip,
//! `connection: close`) and a `content-length` body read from a keep-alive connection.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One request.
pub(super) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    /// `filter_path` was given (answers then hold only `status` and `error` per item).
    pub(super) filtered: bool,
    pub(super) gzip: bool,
    pub(super) close: bool,
    pub(super) body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 64 * 1024];
    let n = sock.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

pub(super) async fn read_request(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Request>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if !fill(sock, buf).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let filtered = query.contains("filter_path=");
    let (mut len, mut chunked, mut gzip, mut close) = (0usize, false, false, false);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "content-length" => len = v.parse().unwrap_or(0),
            "transfer-encoding" => chunked = v.contains("chunked"),
            "content-encoding" => gzip = v.contains("gzip"),
            "connection" => close = v == "close",
            _ => {}
        }
    }
    if chunked {
        return Err(std::io::Error::other(
            "chunked request bodies are not supported",
        ));
    }
    while buf.len() < len {
        if !fill(sock, buf).await? {
            return Ok(None);
        }
    }
    let body = buf.drain(..len).collect();
    Ok(Some(Request {
        method,
        path: path.to_string(),
        filtered,
        gzip,
        close,
        body,
    }))
}

pub(super) fn phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
