//! GTID bookkeeping of a stream: the GTID of the transaction being read (announced by its
//! GTID event) is added to the state when the transaction commits, so the state always
//! describes the end of the last committed transaction.

use super::gtid::{MariaDbGtid, MariaDbGtidState, MySqlGtidSet};

/// The GTID state after the last committed transaction, and the pending GTID of the one
/// being read.
#[derive(Debug, Default)]
pub(super) struct GtidState {
    mariadb: bool,
    mariadb_state: MariaDbGtidState,
    mysql_set: MySqlGtidSet,
    pending_mariadb: Option<MariaDbGtid>,
    pending_mysql: Option<(String, u64)>,
    /// Whether `mysql_set` started from the server's executed set (MySQL only).
    mysql_complete: bool,
}

impl GtidState {
    /// The state a stream resumes with: the checkpoint's GTID text, if any.
    pub(super) fn resume(mariadb: bool, gtid: Option<&str>) -> GtidState {
        GtidState {
            mariadb,
            mariadb_state: gtid
                .filter(|_| mariadb)
                .and_then(|g| MariaDbGtidState::parse(g).ok())
                .unwrap_or_default(),
            mysql_set: gtid
                .filter(|_| !mariadb)
                .and_then(|g| MySqlGtidSet::parse(g).ok())
                .unwrap_or_default(),
            mysql_complete: !mariadb && gtid.is_some(),
            pending_mariadb: None,
            pending_mysql: None,
        }
    }

    /// A MariaDB GTID event: the GTID of the transaction that follows.
    pub(super) fn begin_mariadb(&mut self, gtid: Option<MariaDbGtid>) {
        self.pending_mariadb = gtid;
    }

    /// A MySQL GTID event: the GTID (`uuid`, `gno`) of the transaction that follows.
    pub(super) fn begin_mysql(&mut self, gtid: (String, u64)) {
        self.pending_mysql = Some(gtid);
    }

    /// The transaction commits: its GTID joins the state.
    pub(super) fn commit(&mut self) {
        if let Some(g) = self.pending_mariadb.take() {
            self.mariadb_state.apply(g);
        }
        if let Some((sid, gno)) = self.pending_mysql.take() {
            self.mysql_set.add(&sid, gno);
        }
    }

    /// The GTID of the transaction being read (MariaDB `0-1-48`, MySQL `uuid:48`), if its
    /// GTID event announced one.
    pub(super) fn current(&self) -> Option<String> {
        if let Some(g) = &self.pending_mariadb {
            return Some(g.to_string());
        }
        self.pending_mysql
            .as_ref()
            .map(|(sid, gno)| format!("{sid}:{gno}"))
    }

    /// The state as checkpoint text, when a stream may resume from it.
    pub(super) fn text(&self) -> Option<String> {
        if self.mariadb {
            (!self.mariadb_state.is_empty()).then(|| self.mariadb_state.to_string())
        } else if self.mysql_complete {
            // Only a set that started from the server's whole executed set may be resumed
            // from: one holding just the streamed transactions would replay the rest.
            (!self.mysql_set.is_empty()).then(|| self.mysql_set.to_string())
        } else {
            None
        }
    }
}
