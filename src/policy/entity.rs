//! Row filters by entity: a filter on one table restricts every table that
//! reaches it through keys.
//!
//! A row filter such as `customers: region = 'EMEA'` restricts an entity (a
//! customer). Tables that refer to that entity by a foreign key (invoices,
//! tickets, users, and through users their events) hold rows *of* those
//! customers, so they are filtered as well:
//! `customer_id IN (SELECT customer_id FROM customers WHERE (region = 'EMEA'))`.
//! Keys come from `references:` in `schema.yaml` and from the semantic
//! models' entities (a foreign entity points at the model whose primary
//! entity has the same name).

use std::collections::{BTreeMap, BTreeSet};

/// A key from one allow-listed table to another: `table.column` refers to
/// `ref_table.ref_column`. Names are lower case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    /// The referring table.
    pub table: String,
    /// Its key column.
    pub column: String,
    /// The referenced table.
    pub ref_table: String,
    /// The referenced (usually primary key) column.
    pub ref_column: String,
}

/// The effective filters of one role: its own predicates, each AND-ed with
/// the predicates its keys lead to (`fk IN (SELECT pk FROM t WHERE …)`).
///
/// Paths that would revisit a table are not followed (a self-reference such
/// as `parent_id → customers` or a cycle of keys), so the result is finite;
/// every table's own predicate still applies to it directly. `qualify`
/// spells the tables the key subqueries read (unqualified for the guard,
/// so the search path decides; `main."t"` inside SQLite's per-role views).
pub(crate) fn effective_filters(
    tables: impl Iterator<Item = String>,
    keys: &[ForeignKey],
    own: &BTreeMap<String, String>,
    qualify: &dyn Fn(&str) -> String,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for table in tables {
        let mut path = BTreeSet::new();
        if let Some(p) = filter_of(&table, keys, own, qualify, &mut path) {
            out.insert(table, p);
        }
    }
    out
}

fn filter_of(
    table: &str,
    keys: &[ForeignKey],
    own: &BTreeMap<String, String>,
    qualify: &dyn Fn(&str) -> String,
    path: &mut BTreeSet<String>,
) -> Option<String> {
    path.insert(table.to_owned());
    let mut parts: Vec<String> = own
        .get(table)
        .map(|p| format!("({p})"))
        .into_iter()
        .collect();
    let mut seen = BTreeSet::new();
    for k in keys.iter().filter(|k| k.table == table) {
        if path.contains(&k.ref_table) || !seen.insert((&k.column, &k.ref_table, &k.ref_column)) {
            continue;
        }
        if let Some(p) = filter_of(&k.ref_table, keys, own, qualify, path) {
            parts.push(format!(
                "({} IN (SELECT {} FROM {} WHERE {p}))",
                k.column,
                k.ref_column,
                qualify(&k.ref_table)
            ));
        }
    }
    path.remove(table);
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str, c: &str, rt: &str, rc: &str) -> ForeignKey {
        ForeignKey {
            table: t.into(),
            column: c.into(),
            ref_table: rt.into(),
            ref_column: rc.into(),
        }
    }

    fn plain(t: &str) -> String {
        t.to_owned()
    }

    fn tables() -> impl Iterator<Item = String> {
        ["customers", "users", "events", "tickets", "regions"]
            .into_iter()
            .map(String::from)
    }

    #[test]
    fn filters_follow_keys_transitively() {
        let keys = [
            key("users", "customer_id", "customers", "customer_id"),
            key("events", "user_id", "users", "user_id"),
        ];
        let own = BTreeMap::from([("customers".to_owned(), "region = 'EMEA'".to_owned())]);
        let f = effective_filters(tables(), &keys, &own, &plain);
        assert_eq!(f["customers"], "(region = 'EMEA')");
        assert_eq!(
            f["users"],
            "(customer_id IN (SELECT customer_id FROM customers WHERE (region = 'EMEA')))"
        );
        assert!(
            f["events"].starts_with("(user_id IN (SELECT user_id FROM users WHERE (customer_id IN")
        );
        assert!(!f.contains_key("tickets") && !f.contains_key("regions"));
        let q = effective_filters(tables(), &keys, &own, &|t| format!("main.\"{t}\""));
        assert!(
            q["events"].contains("FROM main.\"users\" WHERE"),
            "{}",
            q["events"]
        );
        assert!(
            q["events"].contains("FROM main.\"customers\" WHERE"),
            "{}",
            q["events"]
        );
    }

    #[test]
    fn own_filters_and_inherited_ones_both_apply() {
        let keys = [key("tickets", "customer_id", "customers", "customer_id")];
        let own = BTreeMap::from([
            ("customers".to_owned(), "region = 'EMEA'".to_owned()),
            ("tickets".to_owned(), "priority <> 'low'".to_owned()),
        ]);
        let f = effective_filters(tables(), &keys, &own, &plain);
        assert!(f["tickets"].starts_with("(priority <> 'low') AND (customer_id IN"));
    }

    #[test]
    fn cycles_and_self_references_terminate() {
        let keys = [
            key("customers", "parent_id", "customers", "customer_id"),
            key("customers", "region_id", "regions", "region_id"),
            key("regions", "hq_customer", "customers", "customer_id"),
        ];
        let own = BTreeMap::from([("regions".to_owned(), "name = 'EMEA'".to_owned())]);
        let f = effective_filters(tables(), &keys, &own, &plain);
        assert_eq!(
            f["customers"],
            "(region_id IN (SELECT region_id FROM regions WHERE (name = 'EMEA')))"
        );
        assert_eq!(f["regions"], "(name = 'EMEA')");
    }
}
