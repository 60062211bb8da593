//! `datatrace serve` operated as a team service (issue 19): security headers, HTTPS, data
//! sources' secrets, restarts, live views, schedules with their run history and the drift
//! watch. The real binary against the testkit's MariaDB and the test run's search engine;
//! one test binary, so the servers start once.

mod accounts;
mod alerts;
#[path = "../serve_common.rs"]
mod common;
mod dead_letters;
mod fixtures;
mod live;
mod restart;
mod schedules;
mod security;
