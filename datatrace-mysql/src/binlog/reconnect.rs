//! Reconnects: a lost connection (a killed dump thread, a restarted server, a dead link
//! noticed by the missing heartbeats) is opened again with backoff from the end of the last
//! committed transaction; rows events already emitted are skipped by their ordinal, so a
//! reconnect emits nothing twice.

use std::sync::atomic::Ordering;

use datatrace_core::Emitter;

use super::reader::{End, Reader};
use crate::error::MySqlError;

impl Reader<'_> {
    /// Streams until cancelled (`Error::Cancelled`), a fatal error, or more consecutive
    /// lost connections than `reconnect_attempts`.
    pub(super) async fn run(&mut self, out: &mut Emitter) -> datatrace_core::Result<()> {
        let unit = self.src.unit.clone();
        let core = |e: MySqlError| datatrace_core::Error::source(&unit, e);
        let stats = self.src.stats.clone();
        let mut retry = self.src.opts.reconnect_policy().start();
        let mut check = true;
        loop {
            let before = stats.events.load(Ordering::Relaxed);
            // At start and after every lost connection: is the position still there?
            let result = match check {
                true => self.check_gap(out).await,
                false => Ok(()),
            };
            let result = match result {
                Ok(()) => self.run_once(out).await,
                Err(e) => Err(e),
            };
            check = true;
            match result {
                Ok(()) | Err(End::Stopped) => return Err(datatrace_core::Error::Cancelled),
                Err(End::Fatal(e)) => return Err(core(e)),
                Err(End::Gap(message)) => {
                    // The server refused the position although the check passed (a purge
                    // in between): the same as a gap found by the check.
                    let gap = self.describe_gap(message).await;
                    match self.bridge_gap(gap, out).await {
                        Ok(()) => {}
                        Err(End::Stopped) => return Err(datatrace_core::Error::Cancelled),
                        Err(End::Fatal(e)) | Err(End::Lost(e)) => return Err(core(e)),
                        Err(End::Gap(m)) => return Err(core(MySqlError::BinlogGap(m))),
                    }
                    check = false;
                }
                Err(End::Lost(e)) => {
                    if stats.events.load(Ordering::Relaxed) > before + 1 {
                        // Events came through: the connection worked, the budget starts again.
                        retry.succeeded();
                    }
                    let Some(delay) = retry.failed(None) else {
                        return Err(core(e));
                    };
                    let attempt = retry.failures();
                    tracing::warn!(error = %e, attempt, "binlog connection lost; reconnecting");
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    // Table ids may change on the new connection's table maps.
                    self.decoders.clear();
                    let _ = out.flush().await;
                    tokio::select! {
                        _ = out.cancelled().cancelled() => return Err(datatrace_core::Error::Cancelled),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
}
