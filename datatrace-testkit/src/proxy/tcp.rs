//! TCP mode: relaying bytes both ways, each chunk delayed by the current latency.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;

/// How many chunks may be in flight per direction before reading pauses.
const IN_FLIGHT: usize = 64;

/// Relays between `client` and `upstream` until both directions are finished; `first` holds
/// bytes already read from the client.
pub(super) async fn relay(client: TcpStream, upstream: TcpStream, first: Vec<u8>, shared: &Shared) {
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let first = (!first.is_empty()).then_some(first);
    tokio::join!(
        pipe(client_read, upstream_write, first, shared),
        pipe(upstream_read, client_write, None, shared),
    );
}

/// One direction: a reader stamps each chunk with the time it may be delivered, a writer
/// delivers it then. Latency so delays without limiting throughput, like a long cable.
async fn pipe<R, W>(mut from: R, mut to: W, first: Option<Vec<u8>>, shared: &Shared)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        let mut pending: VecDeque<Vec<u8>> = first.into_iter().collect();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let chunk = match pending.pop_front() {
                Some(chunk) => chunk,
                None => match from.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf[..n].to_vec(),
                },
            };
            let due = Instant::now() + shared.latency();
            if tx.send((due, chunk)).await.is_err() {
                break;
            }
        }
        // Dropping `tx` tells the writer that this direction is finished.
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
