//! The schema a text-to-SQL prompt shows: readable tables as `CREATE TABLE`
//! text the way the database declares them.
//!
//! The whole readable schema goes in when it fits the budget; only a
//! schema too large for it is cut down to the linked tables
//! ([`super::link::link`]). Measured on Spider (docs/benchmarks.md, issue
//! 28), a small model given only the linked tables plus join paths and
//! sample values joined tables the question did not need, and scored
//! below the same model given every table's plain DDL.
//!
//! Each table shows its readable columns with their declared types (the
//! sampled kind when the catalogue declares none), its primary key when
//! every key column is readable, and its keys to the other tables shown
//! ([`super::link::join_keys`]). Comments carry the policy's descriptions,
//! a mark on masked columns, and the values the question names in a
//! column: the one kind of sample value that tells the model which column
//! to filter on.

use std::collections::BTreeSet;

use super::link::{LinkedTable, SchemaSample, TableInfo, ValueKind};
use crate::policy::ForeignKey;

/// The schema part of a text-to-SQL prompt.
#[derive(Debug, Clone, Default)]
pub struct PromptSchema {
    /// `CREATE TABLE` text.
    pub text: String,
    /// The tables it shows, in order.
    pub tables: Vec<String>,
}

/// What a table's text carries besides names, types and keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Descriptions, masked marks and the question's values as comments.
    Annotated,
    /// Nothing else: the database's own DDL (the benchmark baseline).
    Plain,
}

/// The prompt schema for a question: every readable table, in the order
/// given, when all of them fit in `budget` characters; otherwise the
/// `linked` tables, best first, while they fit (always at least one).
/// Values come from `linked` (what the question names in each table).
pub fn prompt_schema(
    tables: &[TableInfo],
    linked: &[LinkedTable],
    keys: &[ForeignKey],
    sample: &SchemaSample,
    budget: usize,
) -> PromptSchema {
    let values = |name: &str| {
        linked
            .iter()
            .find(|l| l.name == name)
            .map_or(&[][..], |l| l.values.as_slice())
    };
    let everything: Vec<&TableInfo> = tables.iter().collect();
    let whole = render(&everything, keys, sample, Detail::Annotated, &values);
    if whole.text.len() <= budget {
        return whole;
    }
    let chosen: Vec<&TableInfo> = linked
        .iter()
        .filter_map(|l| tables.iter().find(|t| t.name == l.name))
        .collect();
    let mut out = PromptSchema::default();
    for n in 1..=chosen.len() {
        let next = render(&chosen[..n], keys, sample, Detail::Annotated, &values);
        if n > 1 && next.text.len() > budget {
            break;
        }
        out = next;
    }
    out
}

/// Every readable table as plain DDL: declared types, primary keys and
/// keys, no comments (the benchmark baseline's prompt).
pub fn plain_schema(tables: &[TableInfo], keys: &[ForeignKey], sample: &SchemaSample) -> String {
    let all: Vec<&TableInfo> = tables.iter().collect();
    render(&all, keys, sample, Detail::Plain, &|_| &[][..]).text
}

/// `tables` as `CREATE TABLE` text; keys are shown only between them.
fn render<'a>(
    tables: &[&TableInfo],
    keys: &[ForeignKey],
    sample: &SchemaSample,
    detail: Detail,
    values: &dyn Fn(&str) -> &'a [(String, String)],
) -> PromptSchema {
    let shown: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let mut out = PromptSchema::default();
    for t in tables {
        out.text.push_str(&create_table(
            t,
            keys,
            &shown,
            sample,
            detail,
            values(&t.name),
        ));
        out.tables.push(t.name.clone());
    }
    out
}

/// One table's `CREATE TABLE` text (module docs). `values` are the
/// question's `(column, value)` matches in it.
fn create_table(
    t: &TableInfo,
    keys: &[ForeignKey],
    shown: &BTreeSet<&str>,
    sample: &SchemaSample,
    detail: Detail,
    values: &[(String, String)],
) -> String {
    let declared = sample.catalog.get(&t.name);
    let name_of = |c: &str| {
        declared
            .and_then(|d| d.names.get(c))
            .map_or(c, String::as_str)
            .to_owned()
    };
    let table_name = declared
        .map(|d| d.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(&t.name);
    let annotated = detail == Detail::Annotated;
    let mut text = String::new();
    if annotated && !t.about.is_empty() {
        text.push_str(&format!("-- {}\n", short(&t.about, 100)));
    }
    text.push_str(&format!("CREATE TABLE {table_name} (\n"));
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for c in &t.columns {
        let mut code = format!("  {}", name_of(&c.name));
        let kind = declared
            .and_then(|d| d.types.get(&c.name))
            .map(String::as_str)
            .or_else(|| sample.column(&t.name, &c.name).and_then(|v| v.kind.sql()));
        if let Some(kind) = kind {
            code.push(' ');
            code.push_str(kind);
        }
        let mut notes = Vec::new();
        if annotated {
            if c.masked {
                notes.push("masked".to_owned());
            }
            if !c.about.is_empty() {
                notes.push(short(&c.about, 60));
            }
            let named: Vec<String> = values
                .iter()
                .filter(|(col, _)| c.show_values && *col == c.name)
                .map(|(_, v)| format!("'{}'", v.replace('\'', "''").replace('\n', " ")))
                .collect();
            if !named.is_empty() {
                notes.push(format!("holds {}", named.join(", ")));
            }
        }
        lines.push((code, notes));
    }
    let readable = |c: &str| t.columns.iter().any(|x| x.name == c);
    if let Some(pk) = declared.map(|d| &d.primary_key)
        && !pk.is_empty()
        && pk.iter().all(|c| readable(c))
    {
        let names: Vec<String> = pk.iter().map(|c| name_of(c)).collect();
        lines.push((format!("  PRIMARY KEY ({})", names.join(", ")), Vec::new()));
    }
    for k in keys
        .iter()
        .filter(|k| k.table == t.name && shown.contains(k.ref_table.as_str()))
    {
        let target = sample.catalog.get(&k.ref_table);
        let ref_table = target
            .map(|d| d.name.as_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(&k.ref_table);
        let ref_column = target
            .and_then(|d| d.names.get(&k.ref_column))
            .unwrap_or(&k.ref_column);
        lines.push((
            format!(
                "  FOREIGN KEY ({}) REFERENCES {ref_table} ({ref_column})",
                name_of(&k.column)
            ),
            Vec::new(),
        ));
    }
    // A comment ends at the line break, so separators go before it.
    for (i, (code, notes)) in lines.iter().enumerate() {
        let sep = if i + 1 < lines.len() { "," } else { "" };
        if notes.is_empty() {
            text.push_str(&format!("{code}{sep}\n"));
        } else {
            text.push_str(&format!("{code}{sep} -- {}\n", notes.join("; ")));
        }
    }
    text.push_str(");\n");
    text
}

impl ValueKind {
    /// The SQL type shown for a sampled kind, when there is one.
    fn sql(self) -> Option<&'static str> {
        match self {
            ValueKind::Integer => Some("INTEGER"),
            ValueKind::Real => Some("REAL"),
            ValueKind::Text => Some("TEXT"),
            ValueKind::Unknown => None,
        }
    }
}

fn short(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::super::link::{join_keys, link, tests::concerts};
    use super::*;
    use crate::warehouse::catalog::TableCatalog;

    fn singers_sample() -> SchemaSample {
        let mut sample = SchemaSample::default();
        sample.add_rows(
            "singer",
            &["singer_id".into(), "country".into(), "age".into()],
            &[
                vec![1.into(), "France".into(), 30.into()],
                vec![2.into(), "Netherlands".into(), 41.into()],
                vec![3.into(), "France".into(), 29.into()],
                vec![4.into(), "France".into(), 52.into()],
            ],
        );
        sample
    }

    #[test]
    fn a_schema_that_fits_is_shown_whole_with_kinds_keys_and_the_named_values() {
        let tables = concerts();
        let sample = singers_sample();
        let keys = join_keys(&tables, &[], &sample);
        let question = "singers in a concert from france";
        let linked = link(question, None, &tables, &keys, &sample);
        let schema = prompt_schema(&tables, &linked, &keys, &sample, 10_000);
        // Every table, in the schema's order, not the linker's.
        assert_eq!(
            schema.tables,
            ["singer", "concert", "singer_in_concert", "stadium"]
        );
        let text = schema.text;
        assert!(
            text.contains("CREATE TABLE singer (\n  singer_id INTEGER,\n  name,\n"),
            "{text}"
        );
        // Only the value the question names, which says which column to filter.
        assert!(text.contains("country TEXT, -- holds 'France'\n"), "{text}");
        assert!(!text.contains("Netherlands"), "{text}");
        assert!(
            text.contains("FOREIGN KEY (singer_id) REFERENCES singer (singer_id)"),
            "{text}"
        );
        // Past the budget, the linked tables while they fit: at least one.
        let tight = prompt_schema(&tables, &linked, &keys, &sample, 10);
        assert_eq!(tight.tables, [linked[0].name.clone()], "{tight:?}");
        assert_eq!(tight.text.matches("CREATE TABLE").count(), 1, "{tight:?}");
        let some = prompt_schema(&tables, &linked, &keys, &sample, text.len() - 1);
        assert!(
            !some.tables.is_empty() && some.tables.len() < tables.len(),
            "{some:?}"
        );
        assert!(some.text.len() < text.len(), "{some:?}");
    }

    #[test]
    fn declared_types_and_keys_are_shown_as_declared_and_only_for_readable_columns() {
        let mut tables = vec![
            TableInfo::plain("airlines", &["uid", "airline"]),
            TableInfo::plain("flights", &["airline", "flightno", "sourceairport"]),
        ];
        let mut sample = SchemaSample::default();
        let declare = |name: &str, cols: &[(&str, &str)], pk: &[&str]| TableCatalog {
            name: name.into(),
            names: cols
                .iter()
                .map(|(c, _)| (c.to_lowercase(), (*c).to_owned()))
                .collect(),
            types: cols
                .iter()
                .map(|(c, t)| (c.to_lowercase(), (*t).to_owned()))
                .collect(),
            primary_key: pk.iter().map(|c| (*c).to_owned()).collect(),
            foreign_keys: Vec::new(),
        };
        sample.catalog.insert(
            "airlines".into(),
            declare(
                "airlines",
                &[("uid", "BIGINT"), ("Airline", "TEXT"), ("secret", "TEXT")],
                &["uid"],
            ),
        );
        let mut flights = declare(
            "Flights",
            &[
                ("Airline", "BIGINT"),
                ("FlightNo", "BIGINT"),
                ("SourceAirport", "TEXT"),
            ],
            &["airline", "flightno"],
        );
        flights.foreign_keys.push(ForeignKey {
            table: "flights".into(),
            column: "airline".into(),
            ref_table: "airlines".into(),
            ref_column: "uid".into(),
        });
        sample.catalog.insert("flights".into(), flights);
        let keys = join_keys(&tables, &[], &sample);
        let text = plain_schema(&tables, &keys, &sample);
        assert_eq!(
            text,
            "CREATE TABLE airlines (\n  uid BIGINT,\n  Airline TEXT,\n  PRIMARY KEY (uid)\n);\n\
             CREATE TABLE Flights (\n  Airline BIGINT,\n  FlightNo BIGINT,\n  SourceAirport TEXT,\n  \
             PRIMARY KEY (Airline, FlightNo),\n  FOREIGN KEY (Airline) REFERENCES airlines (uid)\n);\n"
        );
        // A primary key or a foreign key naming a column the asker may not
        // read is not shown: it would name that column.
        tables[0].columns.retain(|c| c.name != "uid");
        let keys = join_keys(&tables, &[], &sample);
        let text = plain_schema(&tables, &keys, &sample);
        assert!(!text.contains("uid"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains("FOREIGN KEY"), "{text}");
    }

    #[test]
    fn masked_columns_and_descriptions_are_comments_only_when_annotated() {
        let mut t = TableInfo::plain("customers", &["id", "email"]);
        t.about = "One row per paying customer".into();
        t.columns[1].masked = true;
        t.columns[1].about = "Work email".into();
        let sample = SchemaSample::default();
        let annotated = prompt_schema(&[t.clone()], &[], &[], &sample, 10_000).text;
        assert_eq!(
            annotated,
            "-- One row per paying customer\nCREATE TABLE customers (\n  id,\n  email -- masked; Work email\n);\n"
        );
        assert_eq!(
            plain_schema(&[t], &[], &sample),
            "CREATE TABLE customers (\n  id,\n  email\n);\n"
        );
    }
}
