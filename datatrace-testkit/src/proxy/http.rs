//! HTTP mode: reading each request of a (keep-alive) connection completely, then injecting an
//! error, dropping the connection, or forwarding it on a fresh server connection and relaying
//! the complete answer.

use std::io;
use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::framing::{Body, Wire};
use super::Shared;

/// Serves HTTP requests on `client` until it closes; `first` holds bytes already read from it.
pub(super) async fn serve(client: TcpStream, first: Vec<u8>, shared: &Shared) {
    let mut client = Wire::new(client, first);
    loop {
        let head = match client.read_head().await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                let _ = client
                    .stream
                    .write_all(&error_response(400, &e.to_string(), false))
                    .await;
                return;
            }
        };
        Shared::count(&shared.requests);
        // The whole body is read before forwarding, so a client waiting for `100 Continue`
        // gets it from the proxy, and the server never sees the `Expect`.
        let mut request = if head.has_token("Expect", "100-continue") {
            if client
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            head.without("Expect")
        } else {
            head.raw.clone()
        };
        let body = match head.request_body() {
            Ok(body) => body,
            Err(e) => {
                let _ = client
                    .stream
                    .write_all(&error_response(400, &e.to_string(), false))
                    .await;
                return;
            }
        };
        if client.read_body(body, &mut request).await.is_err() {
            return;
        }
        let keep_alive = head.keeps_alive();
        let Some(_busy) = shared.enter() else {
            Shared::count(&shared.injected);
            let reason = "rejected execution: the write queue is full (datatrace-testkit FaultProxy capacity)";
            if client
                .stream
                .write_all(&error_response(429, reason, keep_alive))
                .await
                .is_err()
                || !keep_alive
            {
                return;
            }
            continue;
        };
        let latency = shared.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }

        if !shared.authorized(head.field("Authorization")) {
            Shared::count(&shared.injected);
            let reason = "missing or wrong credentials (datatrace-testkit FaultProxy)";
            if client
                .stream
                .write_all(&error_response(401, reason, keep_alive))
                .await
                .is_err()
                || !keep_alive
            {
                return;
            }
            continue;
        }

        if let Some(status) = shared.draw_http_error() {
            Shared::count(&shared.injected);
            let reason = "injected by the datatrace-testkit FaultProxy";
            if client
                .stream
                .write_all(&with_retry_after(
                    error_response(status, reason, keep_alive),
                    shared.retry_after(),
                ))
                .await
                .is_err()
                || !keep_alive
            {
                return;
            }
            continue;
        }

        let drop = shared.draw_drop();
        let forwarded = forward(shared.upstream, &request, head.method()).await;
        if drop {
            // The server saw the request (and answered it); the client never learns how.
            Shared::count(&shared.dropped);
            return;
        }
        match forwarded {
            Ok((response, server_closes)) => {
                // Counted before the client can see the answer, so tests can rely on it.
                Shared::count(&shared.forwarded);
                if client.stream.write_all(&response).await.is_err() {
                    return;
                }
                if server_closes || !keep_alive {
                    return;
                }
            }
            Err(e) => {
                let reason = format!("FaultProxy: upstream {}: {e}", shared.upstream);
                let _ = client
                    .stream
                    .write_all(&error_response(502, &reason, false))
                    .await;
                return;
            }
        }
    }
}

/// Sends `request` to the server on a fresh connection and reads the complete answer. Returns
/// the raw answer and whether the client's connection must close after it (the server said
/// `close`, or delimited the body by closing).
async fn forward(
    upstream: SocketAddr,
    request: &[u8],
    method: &str,
) -> io::Result<(Vec<u8>, bool)> {
    let mut stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    stream.write_all(request).await?;
    let mut server = Wire::new(stream, Vec::new());
    loop {
        let head = server.read_head().await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection without answering",
            )
        })?;
        let status = head.status()?;
        if (100..200).contains(&status) && status != 101 {
            // Interim answers (`100 Continue`) are the proxy's business, not the client's.
            continue;
        }
        let body = head.response_body(method)?;
        let closes = !head.keeps_alive() || body == Body::UntilClose;
        let mut response = head.raw;
        server.read_body(body, &mut response).await?;
        return Ok((response, closes));
    }
}

/// A complete response with an Elasticsearch-style JSON error body.
fn error_response(status: u16, reason: &str, keep_alive: bool) -> Vec<u8> {
    let kind = match status {
        401 => "security_exception",
        429 => "es_rejected_execution_exception",
        503 => "unavailable_shards_exception",
        400 => "parse_exception",
        502 => "bad_gateway_exception",
        _ => "injected_fault_exception",
    };
    let body = serde_json::json!({
        "error": {
            "root_cause": [{"type": kind, "reason": reason}],
            "type": kind,
            "reason": reason,
        },
        "status": status,
    })
    .to_string();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut extra = String::new();
    if status == 401 {
        extra.push_str("www-authenticate: Basic realm=\"security\" charset=\"UTF-8\"\r\n");
    }
    format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json; charset=UTF-8\r\n\
         content-length: {}\r\nconnection: {connection}\r\nx-datatrace-fault: {kind}\r\n{extra}\r\n{body}",
        reason_phrase(status),
        body.len()
    )
    .into_bytes()
}

/// `response` with a `Retry-After` header, when `secs` is set.
fn with_retry_after(response: Vec<u8>, secs: Option<u64>) -> Vec<u8> {
    let Some(secs) = secs else {
        return response;
    };
    let text = String::from_utf8_lossy(&response);
    text.replacen("\r\n\r\n", &format!("\r\nretry-after: {secs}\r\n\r\n"), 1)
        .into_bytes()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected Fault",
    }
}

#[cfg(test)]
mod tests {
    use super::error_response;

    #[test]
    fn error_bodies_look_like_elasticsearch() {
        let raw = String::from_utf8(error_response(429, "busy", true)).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["status"], 429);
        assert_eq!(json["error"]["type"], "es_rejected_execution_exception");
        assert_eq!(json["error"]["reason"], "busy");
    }
}
