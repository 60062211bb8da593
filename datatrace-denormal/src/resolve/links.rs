//! How a relation's node links to its parent: foreign keys, references and join tables, and
//! the link of child documents to the root document.

use std::sync::Arc;

use datatrace_mysql::TableInfo;

use super::Resolver;
use crate::definition::Link;
use crate::error::Result;
use crate::spec::{RelationKind, RelationSpec};

impl Resolver<'_> {
    /// The link of `rel`'s node (reading `table`) to its parent (reading `pt`), with every
    /// column checked against its table.
    pub(super) async fn link(
        &mut self,
        rel: &RelationSpec,
        root_db: &str,
        pt: &Arc<TableInfo>,
        table: &Arc<TableInfo>,
    ) -> Result<Link> {
        let name = Some(rel.name());
        Ok(match rel.kind {
            RelationKind::OneToOne | RelationKind::OneToMany => {
                let fk = self.columns(name, "foreign_key", table, &rel.foreign_key)?;
                let refs = self.refs(name, "references", pt, &rel.references)?;
                self.same_len(name, "foreign_key", fk.len(), refs.len())?;
                Link::ChildHolds { fk, refs }
            }
            RelationKind::ManyToOne => {
                let fk = self.columns(name, "foreign_key", pt, &rel.foreign_key)?;
                let refs = self.refs(name, "references", table, &rel.references)?;
                self.same_len(name, "foreign_key", fk.len(), refs.len())?;
                Link::ParentHolds { fk, refs }
            }
            RelationKind::ManyToMany => {
                let th = rel
                    .through
                    .as_ref()
                    .ok_or_else(|| self.err(name, "through is missing"))?;
                let (jd, jt) = self.split(name, &th.table, Some(root_db))?;
                let join = self.table(name, &jd, &jt, &[]).await?;
                let fk = self.columns(name, "through.foreign_key", &join, &th.foreign_key)?;
                let refs = self.refs(name, "references", pt, &rel.references)?;
                self.same_len(name, "through.foreign_key", fk.len(), refs.len())?;
                let target_key = self.columns(name, "through.target_key", &join, &th.target_key)?;
                let target_refs = self.refs(
                    name,
                    "through.target_references",
                    table,
                    &th.target_references,
                )?;
                self.same_len(
                    name,
                    "through.target_key",
                    target_key.len(),
                    target_refs.len(),
                )?;
                Link::Through {
                    table: join,
                    fk,
                    refs,
                    target_key,
                    target_refs,
                }
            }
        })
    }

    /// A child-documents relation's link to the root (reading `pt`): its foreign key columns
    /// in root-key order and the root columns they reference. Only a `one_to_many` relation
    /// whose foreign key references exactly the root's key qualifies.
    pub(super) fn child_documents_link(
        &self,
        name: Option<&str>,
        link: Link,
        pt: &TableInfo,
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        let Link::ChildHolds { fk, refs } = link else {
            return Err(self.err(name, "child_documents needs a one_to_many relation"));
        };
        let root_key = &pt.key;
        let mut ordered = Vec::with_capacity(root_key.len());
        for k in root_key {
            match refs.iter().position(|r| r == k) {
                Some(j) => ordered.push(fk[j]),
                None => {
                    return Err(self.err(
                        name,
                        format!("child_documents: the foreign key must reference the root's key ({}), which names the parent document", pt.key_names().join(", ")),
                    ))
                }
            }
        }
        if refs.len() != root_key.len() {
            return Err(self.err(
                name,
                "child_documents: the foreign key must reference exactly the root's key columns",
            ));
        }
        Ok((ordered, refs))
    }
}
