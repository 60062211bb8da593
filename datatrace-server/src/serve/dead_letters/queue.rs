//! [`DbDeadLetterQueue`]: the dead-letter queue of a server task, in the metadata store
//! (instead of the NDJSON file a job run from the command line writes), de-duplicated by
//! the record's key.

use async_trait::async_trait;
use datatrace_core::error::{Error, Result};
use datatrace_core::{DeadLetter, DeadLetterQueue, Record};

use crate::serve::auth::secret::digest;
use crate::serve::sql_store::dead_letters::{DeadLetterFilter, NewDeadLetter};
use crate::serve::sql_store::Store;

/// How many entries one read of the store brings.
const PAGE: u32 = 500;

/// The dead letters of one task in the metadata store.
pub struct DbDeadLetterQueue {
    store: Store,
    task: i64,
}

impl DbDeadLetterQueue {
    /// The queue of task `task`.
    pub fn new(store: Store, task: i64) -> Self {
        DbDeadLetterQueue { store, task }
    }
}

/// What identifies a record among a unit's dead letters, as a digest, and its key as
/// text: the injective document id of its key, or (a keyless row) all of its values.
pub fn key_of(record: &Record) -> (String, String) {
    let text = record.key_string(", ");
    let ident = if record.has_key() {
        record.doc_id("|").unwrap_or_else(|_| text.clone())
    } else {
        serde_json::to_string(&record.values).unwrap_or_else(|_| text.clone())
    };
    (digest(&ident), text)
}

/// A dead letter as the store keeps it.
pub fn to_new(e: &DeadLetter) -> Result<NewDeadLetter> {
    let (key_digest, key_text) = key_of(&e.record);
    Ok(NewDeadLetter {
        unit: e.unit.clone(),
        key_digest,
        key_text,
        stage: e.stage.clone(),
        error: e.error.clone(),
        entry: serde_json::to_string(e)
            .map_err(|err| Error::DeadLetter(format!("serializing an entry: {err}")))?,
        attempts: e.attempts,
    })
}

fn store_error(e: impl std::fmt::Display) -> Error {
    Error::DeadLetter(e.to_string())
}

impl DbDeadLetterQueue {
    /// The `new` entries with their ids, oldest first.
    async fn new_entries(&self) -> Result<Vec<(i64, DeadLetter)>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let filter = DeadLetterFilter {
                state: Some("new".into()),
                after: Some(after),
                limit: PAGE,
                ..DeadLetterFilter::default()
            };
            let page = self
                .store
                .dead_letters(self.task, &filter)
                .await
                .map_err(store_error)?;
            let ids: Vec<i64> = page.iter().map(|r| r.id).collect();
            for (id, entry) in self
                .store
                .dead_letter_entries(self.task, &ids)
                .await
                .map_err(store_error)?
            {
                out.push((id, serde_json::from_str(&entry).map_err(store_error)?));
            }
            match ids.last() {
                Some(&last) if ids.len() == PAGE as usize => after = last,
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl DeadLetterQueue for DbDeadLetterQueue {
    async fn put(&self, entries: Vec<DeadLetter>) -> Result<()> {
        let rows = entries.iter().map(to_new).collect::<Result<Vec<_>>>()?;
        self.store
            .put_dead_letters(self.task, &rows)
            .await
            .map_err(store_error)
    }

    /// The `new` entries, oldest first.
    async fn list(&self) -> Result<Vec<DeadLetter>> {
        Ok(self.new_entries().await?.into_iter().map(|x| x.1).collect())
    }

    /// Keeps `entries` as the `new` ones (with their new errors): the other `new` entries
    /// were written, and are marked replayed.
    async fn replace(&self, entries: Vec<DeadLetter>) -> Result<()> {
        let mut keep: std::collections::HashMap<(String, String), DeadLetter> = entries
            .into_iter()
            .map(|e| ((e.unit.clone(), key_of(&e.record).0), e))
            .collect();
        let mut written = Vec::new();
        for (id, old) in self.new_entries().await? {
            match keep.remove(&(old.unit.clone(), key_of(&old.record).0)) {
                Some(e) => {
                    let row = to_new(&e)?;
                    self.store
                        .dead_letter_refused(self.task, id, &row.error, &row.entry)
                        .await
                        .map_err(store_error)?;
                }
                None => written.push(id),
            }
        }
        self.store
            .set_dead_letter_state(self.task, &written, "replayed", "replay")
            .await
            .map_err(store_error)?;
        self.put(keep.into_values().collect()).await
    }
}
