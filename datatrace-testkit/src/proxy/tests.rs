//! The proxy's HTTP framing against a tiny origin server that answers the ways osmem-server
//! never does (chunked in pieces, delimited by closing, interim `100 Continue`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::FaultProxy;

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
const CLOSING: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
const CONTINUED: &[u8] =
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";

/// An origin answering each request by its path; every answer is written in small pieces.
fn origin() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |n| n.trim().parse().unwrap());
                let mut body = vec![0; length];
                stream.read_exact(&mut body).unwrap();
                let answer = if head.starts_with("GET /chunked") {
                    CHUNKED
                } else if head.starts_with("GET /closing") {
                    CLOSING
                } else {
                    assert_eq!(body, b"{\"a\":1}");
                    assert!(!head.contains("Expect"), "{head}");
                    CONTINUED
                };
                for piece in answer.chunks(7) {
                    stream.write_all(piece).unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
                // Dropping the stream closes it: the only delimiter of CLOSING.
            });
        }
    });
    addr
}

fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn relays_chunked_interim_and_closing_answers_completely() {
    let proxy = FaultProxy::start(origin());
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    // Two requests in one write (pipelined): both answered, in order.
    client
        .write_all(
            b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    assert_eq!(
        read_exactly(&mut client, 2 * CHUNKED.len()),
        [CHUNKED, CHUNKED].concat()
    );

    client
        .write_all(b"POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
        .unwrap();
    // The proxy says `100 Continue` itself, before the body is sent.
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    assert_eq!(read_exactly(&mut client, interim.len()), interim);
    client.write_all(b"{\"a\":1}").unwrap();
    let final_answer = &CONTINUED[interim.len()..];
    assert_eq!(read_exactly(&mut client, final_answer.len()), final_answer);

    client
        .write_all(b"GET /closing HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, CLOSING, "relayed whole, then the connection closed");

    let stats = proxy.stats();
    assert_eq!(
        (stats.connections, stats.requests, stats.forwarded),
        (1, 4, 4)
    );
}

#[test]
fn answers_502_when_the_server_is_unreachable() {
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .unwrap();
    let proxy = FaultProxy::start(closed);
    let reply = crate::client::request(proxy.addr(), "GET", "/", None).unwrap();
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["error"]["type"], "bad_gateway_exception");
}

#[test]
fn requests_beyond_the_capacity_are_rejected_like_a_full_write_queue() {
    let proxy = FaultProxy::start(origin());
    // One request at a time, each held for a second: of two sent together, one passes.
    proxy.set_capacity(Some(1));
    proxy.set_latency(Duration::from_secs(1));
    let addr = proxy.addr();
    let sent: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                crate::client::request(addr, "GET", "/chunked", None)
                    .unwrap()
                    .status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = sent.into_iter().map(|t| t.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 429]);
    assert_eq!(proxy.stats().injected, 1);
    // The room is given back: the next request passes.
    proxy.set_latency(Duration::ZERO);
    let reply = crate::client::request(addr, "GET", "/chunked", None).unwrap();
    assert_eq!(reply.status, 200);
}
