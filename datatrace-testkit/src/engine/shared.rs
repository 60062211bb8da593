//! One real search engine node per test run, shared by every test process through the
//! testkit's lease directory (see [`crate::lease`]): `<target>/datatrace-shared/engine-<flavor>/`.
//! The node runs under a keeper that stops it and deletes its data a few seconds after the last
//! leaseholder is gone; the node halts by itself if the keeper is killed.

use std::net::{Ipv4Addr, SocketAddr};

use super::EngineFlavor;
use crate::client;
use crate::lease::{shared, ServerSpec};

/// The port of the shared node of `flavor`, started if need be.
pub(super) fn node(flavor: EngineFlavor) -> Result<u16, String> {
    let jit = [("DATATRACE_ENGINE_JIT", "c1")];
    let env: &[(&str, &str)] = if std::env::var_os("DATATRACE_ENGINE_JIT").is_none() {
        &jit
    } else {
        &[]
    };
    let name = format!("engine-{flavor}");
    let ready = shared(&ServerSpec {
        name: &name,
        script: "search-engine.sh",
        args: &[flavor.name()],
        // Like Elasticsearch 8 by default: sorting or aggregating on `_id` is refused, so no
        // test passes while the connector relies on it.
        settings: &["indices.id_field_data.enabled=false"],
        keeper_var: "DATATRACE_ENGINE_KEEPER_PID",
        env,
        serves: answers,
    })?;
    ready["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            format!("datatrace-testkit: {flavor} wrote a ready file without a port: {ready}")
        })
}

/// Whether the node of a ready file answers `GET /` with 200.
fn answers(ready: &serde_json::Value) -> bool {
    let Some(port) = ready["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
        return false;
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    matches!(client::request(addr, "GET", "/", None), Ok(reply) if reply.status == 200)
}
