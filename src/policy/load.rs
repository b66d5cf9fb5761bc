//! Loading policy files with errors that name the file, the line and the reason.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::entity::{ForeignKey, effective_filters};
use super::{Access, Policy, RoleDef, Schema};

/// A policy or metric file that cannot be used, with where and why.
///
/// Displays as `path:line: reason` (or `path: reason` when no line applies), the
/// shape compilers use, so editors can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The offending file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, in one sentence.
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}

/// A YAML file read into memory, kept so later validation can point at lines.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its full text.
    pub text: String,
}

impl SourceFile {
    /// Reads a file; a missing or unreadable file is a [`PolicyError`].
    pub fn read(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: path.to_owned(),
            line: None,
            reason: format!("cannot read file: {e}"),
        })?;
        Ok(SourceFile {
            path: path.to_owned(),
            text,
        })
    }

    /// Parses the YAML into `T`; syntax and shape errors carry their line.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PolicyError> {
        serde_yaml_ng::from_str(&self.text).map_err(|e| PolicyError {
            file: self.path.clone(),
            line: e.location().map(|l| l.line()),
            reason: strip_location(&e.to_string()),
        })
    }

    /// An error at the first line that mentions `needle` as a whole word, or
    /// without a line if none does.
    pub fn error_at(&self, needle: &str, reason: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.path.clone(),
            line: self.line_of(needle),
            reason: reason.into(),
        }
    }

    /// 1-based line of the first occurrence of `needle` as a whole word.
    pub fn line_of(&self, needle: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|line| contains_word(line, needle))
            .map(|i| i + 1)
    }
}

fn contains_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// serde_yaml appends " at line X column Y"; we print the line ourselves.
pub(crate) fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    #[serde(default = "default_max_rows")]
    max_rows: u64,
    #[serde(default = "default_timeout_ms")]
    statement_timeout_ms: u64,
    roles: BTreeMap<String, RoleDef>,
}

fn default_max_rows() -> u64 {
    1000
}

fn default_timeout_ms() -> u64 {
    10_000
}

impl Policy {
    /// Loads `schema.yaml` and `roles.yaml` from a policy directory.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the file, line and reason when a file is missing,
    /// is not valid YAML, has an unknown key, or is inconsistent (a `display`
    /// column that is not listed, a role without any class, a zero row limit).
    pub fn load(dir: &Path) -> Result<Policy, PolicyError> {
        let schema_file = SourceFile::read(&dir.join("schema.yaml"))?;
        let mut schema: Schema = schema_file.parse()?;
        normalize_schema(&mut schema, &schema_file)?;

        let roles_file = SourceFile::read(&dir.join("roles.yaml"))?;
        let mut roles: RolesFile = roles_file.parse()?;
        for role in roles.roles.values_mut() {
            role.row_filters = std::mem::take(&mut role.row_filters)
                .into_iter()
                .map(|(t, p)| (t.to_ascii_lowercase(), p))
                .collect();
        }
        if roles.max_rows == 0 {
            return Err(roles_file.error_at("max_rows", "max_rows must be at least 1"));
        }
        if roles.statement_timeout_ms == 0 {
            return Err(roles_file.error_at(
                "statement_timeout_ms",
                "statement_timeout_ms must be at least 1",
            ));
        }
        for (name, role) in &roles.roles {
            if !role.columns.values().any(|a| *a == Access::Allow) && !role.can.is_empty() {
                return Err(roles_file.error_at(
                    name,
                    format!(
                        "role {name} may read no column class; give it at least `public: allow`"
                    ),
                ));
            }
            for (table, predicate) in &role.row_filters {
                check_row_filter(&schema, table, predicate).map_err(|reason| {
                    roles_file.error_at(table, format!("role {name}: {reason}"))
                })?;
            }
        }
        let foreign_keys = schema_keys(&schema, &schema_file)?;
        let mut policy = Policy::from_parts(
            schema,
            roles.roles,
            roles.max_rows,
            roles.statement_timeout_ms,
        );
        policy
            .add_foreign_keys(foreign_keys)
            .map_err(|(role, table, reason)| {
                roles_file.error_at(&table, format!("role {role}: {reason}"))
            })?;
        Ok(policy)
    }

    /// A policy from parts already checked (tools and tests), with no keys
    /// between tables: each role's row filters apply to their own tables only.
    pub fn from_parts(
        schema: Schema,
        roles: BTreeMap<String, RoleDef>,
        max_rows: u64,
        statement_timeout_ms: u64,
    ) -> Policy {
        let effective_filters = roles
            .iter()
            .map(|(name, role)| {
                let own = role
                    .row_filters
                    .iter()
                    .map(|(t, p)| (t.to_ascii_lowercase(), format!("({p})")))
                    .collect();
                (name.clone(), own)
            })
            .collect();
        Policy {
            schema,
            roles,
            max_rows,
            statement_timeout_ms,
            foreign_keys: Vec::new(),
            effective_filters,
        }
    }

    /// Role `role`'s row filters (keys followed, as [`super::RoleGrants`] holds them)
    /// with every table a key subquery reads spelled by `qualify`: SQLite's
    /// per-role views name `main."t"`, which no view or CTE can replace.
    /// Empty for an unknown role.
    pub fn row_filters_spelled(
        &self,
        role: &str,
        qualify: &dyn Fn(&str) -> String,
    ) -> BTreeMap<String, String> {
        let Some(def) = self.roles.get(role) else {
            return BTreeMap::new();
        };
        let own = def
            .row_filters
            .iter()
            .map(|(t, p)| (t.to_ascii_lowercase(), p.clone()))
            .collect();
        effective_filters(
            self.schema.tables.keys().cloned(),
            &self.foreign_keys,
            &own,
            qualify,
        )
    }

    /// Adds keys between allow-listed tables (e.g. from the semantic models'
    /// entities) and recomputes every role's row filters along them. Keys
    /// naming tables or columns outside the allow-list are ignored.
    ///
    /// # Errors
    /// `(role, table, reason)` when a filter that follows the keys would not
    /// parse as SQL in every dialect steward speaks (the policy is unchanged).
    pub fn add_foreign_keys(
        &mut self,
        keys: impl IntoIterator<Item = ForeignKey>,
    ) -> Result<(), (String, String, String)> {
        let mut all = self.foreign_keys.clone();
        for k in keys {
            let known = self.schema.column(&k.table, &k.column).is_some()
                && self.schema.column(&k.ref_table, &k.ref_column).is_some();
            if known && !all.contains(&k) {
                all.push(k);
            }
        }
        all.sort();
        let mut effective = BTreeMap::new();
        for (name, role) in &self.roles {
            let filters = effective_filters(
                self.schema.tables.keys().cloned(),
                &all,
                &role.row_filters,
                &|t| t.to_owned(),
            );
            for (table, predicate) in &filters {
                check_filtered_read(&self.schema, table, predicate)
                    .map_err(|reason| (name.clone(), table.clone(), reason))?;
            }
            effective.insert(name.clone(), filters);
        }
        self.foreign_keys = all;
        self.effective_filters = effective;
        Ok(())
    }
}

/// The keys `schema.yaml` declares with `references: table.column`.
fn schema_keys(schema: &Schema, file: &SourceFile) -> Result<Vec<ForeignKey>, PolicyError> {
    let mut keys = Vec::new();
    for (table, def) in &schema.tables {
        for (column, col) in &def.columns {
            let Some(target) = &col.references else {
                continue;
            };
            let lower = target.to_ascii_lowercase();
            let Some((ref_table, ref_column)) = lower
                .split_once('.')
                .filter(|(t, c)| schema.column(t, c).is_some())
            else {
                return Err(file.error_at(
                    target,
                    format!(
                        "{table}.{column} references {target}, which is not a listed `table.column`"
                    ),
                ));
            };
            keys.push(ForeignKey {
                table: table.clone(),
                column: column.clone(),
                ref_table: ref_table.to_owned(),
                ref_column: ref_column.to_owned(),
            });
        }
    }
    Ok(keys)
}

/// The guard replaces a filtered table with `SELECT <columns> FROM t WHERE
/// <predicate>`; that statement must parse in every dialect, or the filter
/// could not be applied (and the statement would have to be refused).
fn check_filtered_read(schema: &Schema, table: &str, predicate: &str) -> Result<(), String> {
    use crate::sql::Dialect;
    let Some((_, def)) = schema.table(table) else {
        return Err(format!("row filter on unknown table {table}"));
    };
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake] {
        let columns: Vec<String> = def.columns.keys().map(|c| dialect.quote_ident(c)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {predicate}",
            columns.join(", "),
            dialect.quote_ident(table)
        );
        let parser = dialect.parser();
        sqlparser::parser::Parser::new(parser.as_ref())
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_query())
            .map_err(|e| {
                format!("the row filter on {table} does not parse as {dialect} SQL: {e}")
            })?;
    }
    Ok(())
}

/// Lower-cases names and synonyms and checks cross-references inside the schema.
fn normalize_schema(schema: &mut Schema, file: &SourceFile) -> Result<(), PolicyError> {
    let tables = std::mem::take(&mut schema.tables);
    for (name, mut table) in tables {
        if !is_identifier(&name) {
            return Err(file.error_at(
                &name,
                format!("table name {name:?} is not a plain identifier"),
            ));
        }
        if table.columns.is_empty() {
            return Err(file.error_at(&name, format!("table {name} lists no columns")));
        }
        table.columns = std::mem::take(&mut table.columns)
            .into_iter()
            .map(|(c, mut def)| {
                def.synonyms.iter_mut().for_each(|s| *s = s.to_lowercase());
                (c.to_ascii_lowercase(), def)
            })
            .collect();
        for c in table.columns.keys() {
            if !is_identifier(c) {
                return Err(
                    file.error_at(c, format!("column name {c:?} is not a plain identifier"))
                );
            }
        }
        for d in &table.display {
            if !table.columns.contains_key(&d.to_ascii_lowercase()) {
                return Err(file.error_at(
                    d,
                    format!("display column {d} is not a listed column of table {name}"),
                ));
            }
        }
        table
            .synonyms
            .iter_mut()
            .for_each(|s| *s = s.to_lowercase());
        schema.tables.insert(name.to_ascii_lowercase(), table);
    }
    if schema.tables.is_empty() {
        return Err(PolicyError {
            file: file.path.clone(),
            line: None,
            reason: "the schema allow-list names no tables".into(),
        });
    }
    Ok(())
}

/// A row filter must name an allow-listed table and be one SQL predicate over
/// that table's allow-listed columns, with no subquery.
fn check_row_filter(schema: &Schema, table: &str, predicate: &str) -> Result<(), String> {
    use sqlparser::ast::{Expr, visit_expressions};
    use std::ops::ControlFlow;
    let Some((_, def)) = schema.table(table) else {
        return Err(format!(
            "row filter on {table}, which is not in the schema allow-list"
        ));
    };
    let dialect = sqlparser::dialect::GenericDialect {};
    let expr = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(predicate)
        .and_then(|mut p| {
            let e = p.parse_expr()?;
            p.expect_token(&sqlparser::tokenizer::Token::EOF)?;
            Ok(e)
        })
        .map_err(|e| format!("row filter on {table} is not one SQL predicate: {e}"))?;
    let mut problem = None;
    let _ = visit_expressions(&expr, |e| {
        let bad = match e {
            Expr::Identifier(id) if id.quote_style.is_none() && is_reserved(&id.value) => {
                Some(format!(
                    "row filter on {table} uses the reserved word {}; quote it as \"{}\"",
                    id.value, id.value
                ))
            }
            Expr::Identifier(id) if !def.columns.contains_key(&id.value.to_ascii_lowercase()) => {
                Some(format!(
                    "row filter on {table} uses {}, which is not a listed column of it",
                    id.value
                ))
            }
            Expr::CompoundIdentifier(_) => {
                Some(format!("row filter on {table} must use bare column names"))
            }
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                Some(format!("row filter on {table} may not contain a subquery"))
            }
            _ => None,
        };
        match bad {
            Some(b) => {
                problem = Some(b);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    });
    problem.map_or(Ok(()), Err)
}

/// Words no dialect takes as a bare column name (`from`, `select`, …).
fn is_reserved(word: &str) -> bool {
    use sqlparser::keywords::{ALL_KEYWORDS, ALL_KEYWORDS_INDEX, RESERVED_FOR_COLUMN_ALIAS};
    let upper = word.to_ascii_uppercase();
    ALL_KEYWORDS
        .iter()
        .position(|k| *k == upper)
        .is_some_and(|i| RESERVED_FOR_COLUMN_ALIAS.contains(&ALL_KEYWORDS_INDEX[i]))
}

/// `[A-Za-z_][A-Za-z0-9_]*`: the names policy files may use.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    const ROLES: &str = "roles:\n  analyst:\n    can: [sql]\n    columns: {public: allow}\n";

    #[test]
    fn syntax_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "schema.yaml",
            "tables:\n  t:\n    columns:\n      a: {class: public\n",
        );
        write(dir.path(), "roles.yaml", ROLES);
        let err = Policy::load(dir.path()).unwrap_err();
        assert!(err.file.ends_with("schema.yaml"));
        assert!(err.line.is_some(), "{err}");
    }

    #[test]
    fn unknown_column_class_is_rejected_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "schema.yaml",
            "tables:\n  t:\n    columns:\n      a: {class: secret}\n",
        );
        write(dir.path(), "roles.yaml", ROLES);
        let err = Policy::load(dir.path()).unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.reason.contains("secret"), "{err}");
    }

    #[test]
    fn display_column_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "schema.yaml",
            "tables:\n  t:\n    display: [nope]\n    columns:\n      a: {class: public}\n",
        );
        write(dir.path(), "roles.yaml", ROLES);
        let err = Policy::load(dir.path()).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn unknown_keys_in_roles_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "schema.yaml",
            "tables:\n  t:\n    columns:\n      a: {class: public}\n",
        );
        write(dir.path(), "roles.yaml", "roles:\n  r:\n    cann: [sql]\n");
        let err = Policy::load(dir.path()).unwrap_err();
        assert!(
            err.file.ends_with("roles.yaml") && err.line == Some(3),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let err = Policy::load(dir.path()).unwrap_err();
        assert!(err.reason.contains("cannot read"), "{err}");
    }
}
