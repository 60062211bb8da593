//! The built `datatrace` binary against the testkit's MariaDB and osmem-server (one test
//! binary, so the servers start once).

mod common;
mod directions;
mod fidelity;
mod recovery;
mod validate;
