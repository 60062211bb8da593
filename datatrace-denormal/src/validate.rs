//! Checks of a [`DocumentSpec`] that need no database: names, parents, cycles, the keys
//! each kind of relation needs, and settings. Errors name the document and the relation.
//! (Checks against the tables are in [`crate::resolve`], the fan-out check in
//! [`crate::fanout`].)

use std::collections::HashMap;

use crate::error::{DenormalError, Result};
use crate::spec::{DocumentSpec, RelationKind, RelationSpec};

impl DocumentSpec {
    /// Checks what can be checked without the database: names, parents (unknown ones and
    /// cycles), the keys each kind of relation needs, settings. The error names the
    /// document and the relation.
    pub fn check(&self) -> Result<()> {
        check_spec(self)
    }
}

/// Document names become unit names, index names and id prefixes.
fn check_name(doc: &str, what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(DenormalError::definition(
            doc,
            None,
            format!("{what} {name:?}: use letters, digits, \"_\", \"-\" and \".\""),
        ))
    }
}

/// The largest `batch_size` (roots per batch).
pub const MAX_BATCH_SIZE: u64 = 100_000;
/// The largest `window_ms` (ten minutes).
pub const MAX_WINDOW_MS: u64 = 600_000;
/// The largest `rebuild_concurrency`.
pub const MAX_REBUILD_CONCURRENCY: u64 = 256;
/// The largest `max_fan_out`.
pub const MAX_FAN_OUT: u64 = 1_000_000_000;

/// The checks of [`DocumentSpec::check`].
pub fn check_spec(spec: &DocumentSpec) -> Result<()> {
    let doc = spec.name.as_str();
    check_name(doc, "document name", doc)?;
    let err = |rel: Option<&str>, m: String| Err(DenormalError::definition(doc, rel, m));
    if spec.table.trim().is_empty() {
        return err(None, "table: name the root table".into());
    }
    // Every number has an upper bound: batches are queries and pending windows, the window
    // is a time, the concurrency tasks.
    datatrace_core::limits::check_ranges(&[
        ("batch_size", spec.batch_size as u64, 1, MAX_BATCH_SIZE),
        ("window_ms", spec.window_ms, 0, MAX_WINDOW_MS),
        (
            "rebuild_concurrency",
            spec.rebuild_concurrency as u64,
            1,
            MAX_REBUILD_CONCURRENCY,
        ),
        ("max_fan_out", spec.max_fan_out, 1, MAX_FAN_OUT),
    ])
    .or_else(|m| err(None, m))?;
    if spec.join_field.is_empty() {
        return err(None, "join_field must not be empty".into());
    }
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, r) in spec.relations.iter().enumerate() {
        let name = r.name();
        if r.field.is_empty() {
            return err(
                Some(name),
                "field: name the field the relation becomes".into(),
            );
        }
        if name == doc && r.name.is_none() {
            return err(
                Some(name),
                format!("the relation's field has the document's name; give the relation a `name` other than {doc:?}"),
            );
        }
        if r.child_documents {
            check_name(doc, "relation name (it prefixes child document ids)", name)?;
        }
        if by_name.insert(name, i).is_some() {
            return err(
                Some(name),
                format!("two relations are named {name:?}: give one of them a `name` (parents refer to relations by name)"),
            );
        }
    }
    for r in &spec.relations {
        check_relation(doc, r)?;
        if let Some(p) = &r.parent {
            let Some(&pi) = by_name.get(p.as_str()) else {
                let names: Vec<&str> = spec.relations.iter().map(|r| r.name()).collect();
                return err(
                    Some(r.name()),
                    format!(
                        "parent {p:?} is not a relation of this document (relations: {}; leave `parent` out for the root)",
                        names.join(", ")
                    ),
                );
            };
            let parent = &spec.relations[pi];
            if parent.scalar.is_some() {
                return err(
                    Some(r.name()),
                    format!("its parent {p:?} is a scalar relation (values, not objects): nothing can hang under it"),
                );
            }
            if r.child_documents {
                return err(
                    Some(r.name()),
                    "child_documents works for relations directly under the root (leave out `parent`)".into(),
                );
            }
        }
    }
    check_cycles(spec, &by_name)?;
    // Two relations writing the same field of the same parent.
    let mut fields: HashMap<(Option<&str>, &str), &str> = HashMap::new();
    for r in &spec.relations {
        if r.child_documents {
            continue;
        }
        if let Some(other) = fields.insert((r.parent.as_deref(), &r.field), r.name()) {
            return err(
                Some(r.name()),
                format!(
                    "relation {other:?} writes the same field {:?} of the same parent",
                    r.field
                ),
            );
        }
    }
    Ok(())
}

fn check_relation(doc: &str, r: &RelationSpec) -> Result<()> {
    let name = r.name();
    let err = |m: String| Err(DenormalError::definition(doc, Some(name), m));
    match r.kind {
        RelationKind::ManyToMany => {
            let Some(t) = &r.through else {
                return err("a many_to_many relation needs `through = { table = \"..\", foreign_key = [..], target_key = [..] }` (the join table)".into());
            };
            if !r.foreign_key.is_empty() {
                return err("for many_to_many, name the join table's columns in `through.foreign_key` (and `through.target_key`), not in `foreign_key`".into());
            }
            if t.table.trim().is_empty() || t.foreign_key.is_empty() || t.target_key.is_empty() {
                return err("through: name the join table and its columns referencing the parent (`foreign_key`) and the related table (`target_key`)".into());
            }
            if !r.references.is_empty() && r.references.len() != t.foreign_key.len() {
                return err(format!(
                    "references has {} column(s) but through.foreign_key has {}",
                    r.references.len(),
                    t.foreign_key.len()
                ));
            }
            if !t.target_references.is_empty() && t.target_references.len() != t.target_key.len() {
                return err(format!(
                    "through.target_references has {} column(s) but through.target_key has {}",
                    t.target_references.len(),
                    t.target_key.len()
                ));
            }
        }
        _ => {
            if r.through.is_some() {
                return err(format!(
                    "`through` is for many_to_many relations, not {}",
                    r.kind.name()
                ));
            }
            if r.foreign_key.is_empty() {
                let on = match r.kind {
                    RelationKind::ManyToOne => "the parent's columns referencing the related table",
                    _ => "the related table's columns referencing the parent",
                };
                return err(format!("foreign_key: name {on}"));
            }
            if !r.references.is_empty() && r.references.len() != r.foreign_key.len() {
                return err(format!(
                    "references has {} column(s) but foreign_key has {}",
                    r.references.len(),
                    r.foreign_key.len()
                ));
            }
        }
    }
    if r.child_documents {
        if r.kind != RelationKind::OneToMany {
            return err(format!(
                "child_documents works for one_to_many relations, not {}",
                r.kind.name()
            ));
        }
        if r.scalar.is_some() || r.nested {
            return err(
                "child_documents writes separate documents: `scalar` and `nested` do not apply"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Every relation's chain of parents must reach the root; a chain that comes back to a
/// relation is a cycle, reported with its members.
fn check_cycles(spec: &DocumentSpec, by_name: &HashMap<&str, usize>) -> Result<()> {
    for start in 0..spec.relations.len() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(p) = spec.relations[at].parent.as_deref() {
            let Some(&next) = by_name.get(p) else { break };
            if let Some(pos) = path.iter().position(|&x| x == next) {
                let mut names: Vec<&str> = path[pos..]
                    .iter()
                    .map(|&i| spec.relations[i].name())
                    .collect();
                names.push(spec.relations[next].name());
                return Err(DenormalError::definition(
                    &spec.name,
                    Some(spec.relations[next].name()),
                    format!(
                        "the relations' parents form a cycle ({}): every chain of parents must end at the root",
                        names.join(" -> parent ")
                    ),
                ));
            }
            path.push(next);
            at = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> DocumentSpec {
        DocumentSpec::new("orders", "orders")
            .relation(RelationSpec::many_to_one(
                "customer",
                "customers",
                ["customer_id"],
            ))
            .relation(RelationSpec::one_to_many("items", "order_items", ["order_id"]).nested())
            .relation(
                RelationSpec::many_to_one("product", "products", ["product_id"]).under("items"),
            )
    }

    #[test]
    fn denormal_a_good_spec_passes() {
        shop().check().unwrap();
    }

    #[test]
    fn denormal_numbers_out_of_range_are_named_with_their_range() {
        let mut s = shop();
        s.batch_size = 1_000_000_000_000;
        let e = s.check().unwrap_err().to_string();
        assert!(
            e.contains("batch_size = 1000000000000 is out of range: use a value from 1 to 100000"),
            "{e}"
        );
        let mut s = shop();
        s.window_ms = u64::MAX;
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("window_ms") && e.contains("0 to 600000"), "{e}");
        let mut s = shop();
        s.rebuild_concurrency = usize::MAX;
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("rebuild_concurrency"), "{e}");
        let mut s = shop();
        s.max_fan_out = u64::MAX;
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("max_fan_out"), "{e}");
        let mut s = shop();
        s.batch_size = 0;
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("batch_size = 0"), "{e}");
    }

    #[test]
    fn denormal_cycles_are_named() {
        let spec = DocumentSpec::new("d", "t")
            .relation(RelationSpec::one_to_many("a", "ta", ["x"]).under("c"))
            .relation(RelationSpec::one_to_many("b", "tb", ["x"]).under("a"))
            .relation(RelationSpec::one_to_many("c", "tc", ["x"]).under("b"));
        let e = spec.check().unwrap_err().to_string();
        assert!(e.starts_with("document d, relation "), "{e}");
        assert!(
            e.contains("form a cycle (a -> parent c -> parent b -> parent a)"),
            "{e}"
        );
    }

    #[test]
    fn denormal_unknown_parents_and_kinds_are_named() {
        let e = shop()
            .relation(RelationSpec::one_to_many("x", "t", ["a"]).under("itemz"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("relation x: parent \"itemz\" is not a relation"),
            "{e}"
        );
        let mut r = RelationSpec::one_to_many("x", "t", ["a"]);
        r.foreign_key.clear();
        let e = shop().relation(r).check().unwrap_err().to_string();
        assert!(
            e.contains("relation x: foreign_key: name the related table's columns"),
            "{e}"
        );
        let mut r = RelationSpec::many_to_many("tags", "tags", "pt", ["p"], ["t"]);
        r.through = None;
        let e = shop().relation(r).check().unwrap_err().to_string();
        assert!(
            e.contains("relation tags: a many_to_many relation needs `through"),
            "{e}"
        );
        let e = shop()
            .relation(RelationSpec::many_to_one("c", "t", ["a"]).child_documents())
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("child_documents works for one_to_many"), "{e}");
        let e = shop()
            .relation(RelationSpec::one_to_many("items", "t", ["a"]).named("items2"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("writes the same field \"items\""), "{e}");
        let e = shop()
            .relation(RelationSpec::one_to_many("items", "t", ["a"]))
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("two relations are named \"items\""), "{e}");
    }

    #[test]
    fn denormal_scalars_have_no_children() {
        let e = shop()
            .relation(RelationSpec::one_to_many("codes", "codes", ["order_id"]).scalar("code"))
            .relation(RelationSpec::one_to_many("x", "t", ["code_id"]).under("codes"))
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("relation x: its parent \"codes\" is a scalar"),
            "{e}"
        );
    }
}
