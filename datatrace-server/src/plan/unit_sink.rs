//! [`UnitSink`]: a sink as one unit of a job sees it: the target is prepared for the schema
//! the records will have after the transforms (not the source's), and a target name
//! pattern (`table = "copy_{table}"`) is applied to records that no transform routed.

use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{
    Batch, Outcome, PrepareContext, SchemaRef, Sink, SinkError, TableChange, TableChangeKind,
};

use crate::job_file::naming::NamePattern;

/// Wraps a sink for one unit (or for replays, without a schema).
pub struct UnitSink {
    inner: Arc<dyn Sink>,
    schema: Option<SchemaRef>,
    pattern: Option<NamePattern>,
}

impl UnitSink {
    /// `inner`, prepared with `schema` when given, writing to `pattern`'s names when given
    /// (and not the identity).
    pub fn new(
        inner: Arc<dyn Sink>,
        schema: Option<SchemaRef>,
        pattern: Option<NamePattern>,
    ) -> Self {
        UnitSink {
            inner,
            schema,
            pattern: pattern.filter(|p| !p.is_identity()),
        }
    }

    /// The context the wrapped sink sees: this unit's schema, named by the pattern.
    fn unit_context(&self, ctx: &PrepareContext) -> PrepareContext {
        let mut ctx = ctx.clone();
        if self.schema.is_some() {
            ctx.schema = self.schema.clone();
        }
        if let (Some(p), Some(s)) = (&self.pattern, &ctx.schema) {
            let name = p.render(s.name(), s.namespace());
            ctx.schema = Some(Arc::new(s.renamed(None, name)));
        }
        ctx
    }

    /// Whether wrapping changes anything.
    pub fn is_needed(&self) -> bool {
        self.schema.is_some() || self.pattern.is_some()
    }
}

#[async_trait]
impl Sink for UnitSink {
    async fn prepare(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.prepare(&self.unit_context(ctx)).await
    }

    async fn write(&self, batch: &Batch) -> Result<Vec<Outcome>, SinkError> {
        let Some(p) = &self.pattern else {
            return self.inner.write(batch).await;
        };
        let mut renamed = batch.clone();
        // One name per schema of the batch (usually one).
        let mut names: Vec<(SchemaRef, Arc<str>)> = Vec::new();
        for r in &mut renamed.records {
            if r.target.is_none() {
                let name = match names.iter().find(|(s, _)| Arc::ptr_eq(s, &r.schema)) {
                    Some((_, n)) => n.clone(),
                    None => {
                        let n: Arc<str> = p.render(r.schema.name(), r.schema.namespace()).into();
                        names.push((r.schema.clone(), n.clone()));
                        n
                    }
                };
                r.target = Some(name);
            }
        }
        self.inner.write(&renamed).await
    }

    /// Table changes of a change stream go to the tables the pattern names, like the rows.
    async fn table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        let Some(p) = &self.pattern else {
            return self.inner.table_change(change).await;
        };
        let mut named = change.clone();
        if named.target.is_none() {
            let s = &named.schema;
            named.target = Some(p.render(s.name(), s.namespace()).into());
        }
        if let TableChangeKind::Rename { to, to_target } = &mut named.kind {
            if to_target.is_none() {
                *to_target = Some(p.render(to.name(), to.namespace()).into());
            }
        }
        self.inner.table_change(&named).await
    }

    async fn finish(&self) -> Result<(), SinkError> {
        self.inner.finish().await
    }

    async fn finish_unit(&self, ctx: &PrepareContext) -> Result<(), SinkError> {
        self.inner.finish_unit(&self.unit_context(ctx)).await
    }
}
