//! FROM items: tables (allow-list, row filters), derived tables, CTE
//! references, joins and the columns `USING` and `NATURAL` merge.

use sqlparser::ast::*;

use super::*;

impl Binder<'_> {
    pub(super) fn table_with_joins(&mut self, item: &mut TableWithJoins) -> Result<(), Rejection> {
        let start = self.top().visible.len();
        self.factor(&mut item.relation)?;
        for join in &mut item.joins {
            only(!join.global, || "GLOBAL JOIN".into())?;
            let constraint = match &mut join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c) => c,
                other => return Err(unsupported(format!("the join {other:?}"))),
            };
            let right_start = self.top().visible.len();
            self.factor(&mut join.relation)?;
            match constraint {
                JoinConstraint::On(e) => self.expr(e)?,
                JoinConstraint::Using(names) => {
                    let mut merged = Vec::new();
                    for n in names.iter() {
                        let [ObjectNamePart::Identifier(id)] = n.0.as_slice() else {
                            return Err(unsupported(format!("USING ({n})")));
                        };
                        merged.push(self.canon(id));
                    }
                    self.merge(start, right_start, &merged)?;
                }
                JoinConstraint::Natural => self.natural(start, right_start)?,
                JoinConstraint::None => {}
            }
        }
        Ok(())
    }

    /// `USING (names)`: each name must be one column on the left (entries
    /// `start..right_start`) and one on the right; both are read, unmasked,
    /// and replaced by one merged column placed first, as PostgreSQL orders them.
    pub(super) fn merge(
        &mut self,
        start: usize,
        right_start: usize,
        names: &[String],
    ) -> Result<(), Rejection> {
        for (i, name) in names.iter().enumerate() {
            let level = self.levels.last().expect("a level is open");
            let find = |range: std::ops::Range<usize>| -> Result<usize, Rejection> {
                let hits: Vec<usize> = range.filter(|&k| level.visible[k].name == *name).collect();
                match hits.as_slice() {
                    [one] => Ok(*one),
                    [] => Err(Rejection::UnknownColumn(format!("{name} (in USING)"))),
                    _ => Err(unbound(format!("column {name} in USING is ambiguous"))),
                }
            };
            let l = find(start..right_start)?;
            let r = find(right_start..level.visible.len())?;
            let mut refs = level.visible[l].refs.clone();
            refs.extend(level.visible[r].refs.iter().copied());
            let bases: Vec<BaseColumn> = refs
                .iter()
                .filter_map(|&(rel, col)| level.relations[rel].columns[col].base.clone())
                .collect();
            for base in bases {
                if self.read(&base)? != Access::Allow {
                    return Err(unbound(format!(
                        "a join USING {name} would compare {}.{} unmasked; join with ON instead",
                        base.table, base.column
                    )));
                }
            }
            let visible = &mut self.top().visible;
            visible.remove(r);
            visible.remove(l);
            visible.insert(
                start + i,
                Visible {
                    name: name.clone(),
                    refs,
                },
            );
        }
        Ok(())
    }

    /// `NATURAL JOIN` joins on every column the two sides share, including
    /// columns of a table that are not in the allow-list and so unknown
    /// here: allowed only between derived tables and CTEs.
    pub(super) fn natural(&mut self, start: usize, right_start: usize) -> Result<(), Rejection> {
        let level = self.levels.last().expect("a level is open");
        let reads_table = level.visible[start..].iter().any(|v| {
            v.refs
                .iter()
                .any(|&(rel, col)| level.relations[rel].columns[col].base.is_some())
        });
        if reads_table {
            return Err(unbound(
                "a NATURAL JOIN with a table joins on columns nobody named; name them with ON or USING",
            ));
        }
        let left: BTreeSet<&String> = level.visible[start..right_start]
            .iter()
            .map(|v| &v.name)
            .collect();
        let mut common: Vec<String> = Vec::new();
        for v in &level.visible[right_start..] {
            if left.contains(&v.name) && !common.contains(&v.name) {
                common.push(v.name.clone());
            }
        }
        self.merge(start, right_start, &common)
    }

    // Grows the stack on the heap when it runs low (stacker), as sqlparser
    // does for its own recursion.
    #[recursive::recursive]
    pub(super) fn factor(&mut self, factor: &mut TableFactor) -> Result<(), Rejection> {
        match factor {
            TableFactor::Table { .. } => self.table_factor(factor),
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                only(sample.is_none(), || "TABLESAMPLE".into())?;
                if let Some(a) = alias {
                    // `(SELECT … FROM customers WHERE …) AS customers`, the
                    // guard's own filtered read, may keep its table's name
                    // (re-runs validate stored statements again).
                    let own = sole_table(subquery).map(|t| self.canon(t));
                    self.not_a_table_name(&a.name, "a derived table", own.as_deref())?;
                }
                let hide = !*lateral;
                self.top().hidden = hide;
                let outputs = self.query(subquery);
                self.top().hidden = false;
                let outputs = outputs?;
                let (name, ident, columns) = match alias {
                    Some(a) => (
                        Some(self.canon(&a.name)),
                        Some(a.name.clone()),
                        rename(outputs, a, self.dialect)?,
                    ),
                    None => (None, None, outputs),
                };
                self.add_relation(Relation {
                    name,
                    ident,
                    table: None,
                    columns: columns
                        .into_iter()
                        .map(|name| Column { name, base: None })
                        .collect(),
                });
                Ok(())
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                only(alias.is_none(), || {
                    "an alias on a parenthesized join".into()
                })?;
                self.table_with_joins(table_with_joins)
            }
            other => Err(Rejection::NotReadOnly(format!(
                "the table expression {}",
                other.to_string().chars().take(40).collect::<String>()
            ))),
        }
    }

    pub(super) fn add_relation(&mut self, relation: Relation) {
        let level = self.top();
        let index = level.relations.len();
        for (k, c) in relation.columns.iter().enumerate() {
            if let Some(name) = &c.name {
                level.visible.push(Visible {
                    name: name.clone(),
                    refs: vec![(index, k)],
                });
            }
        }
        level.relations.push(relation);
    }

    pub(super) fn table_factor(&mut self, factor: &mut TableFactor) -> Result<(), Rejection> {
        let TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_hints,
        } = factor
        else {
            unreachable!("called for TableFactor::Table only");
        };
        if args.is_some() {
            return Err(Rejection::NotReadOnly(format!("table function {name}")));
        }
        only(
            with_hints.is_empty()
                && version.is_none()
                && !*with_ordinality
                && partitions.is_empty()
                && json_path.is_none()
                && sample.is_none()
                && index_hints.is_empty(),
            || format!("this way of reading {name}"),
        )?;
        let parts = self.name_parts(name)?;
        // A one-part name may be a CTE in scope (innermost WITH first).
        if let [single] = parts.as_slice()
            && let Some(cte) = self
                .ctes
                .iter()
                .rev()
                .flat_map(|f| f.iter().rev())
                .find(|c| c.name == *single)
                .cloned()
        {
            let Some(columns) = cte.columns else {
                return Err(unbound(format!(
                    "the columns of CTE {single} are not known here; name them in WITH {single}(…)"
                )));
            };
            if let Some(a) = alias {
                self.not_a_table_name(&a.name, "the alias of a CTE", None)?;
            }
            let (rel_name, ident, columns) = match alias {
                Some(a) => (
                    self.canon(&a.name),
                    a.name.clone(),
                    rename(columns, a, self.dialect)?,
                ),
                None => (
                    cte.name.clone(),
                    Ident::with_quote('"', cte.name.clone()),
                    columns,
                ),
            };
            self.add_relation(Relation {
                name: Some(rel_name),
                ident: Some(ident),
                table: None,
                columns: columns
                    .into_iter()
                    .map(|name| Column { name, base: None })
                    .collect(),
            });
            return Ok(());
        }
        let shown = name.to_string();
        let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
        if lower
            .iter()
            .any(|p| SYSTEM_CATALOGS.contains(&p.as_str()) || p.starts_with("pg_"))
        {
            return Err(Rejection::SystemCatalog(lower.join(".")));
        }
        let table_part = match parts.as_slice() {
            [t] => t,
            [s, t]
                if DEFAULT_SCHEMAS
                    .iter()
                    .any(|d| self.dialect.canonical_name(d) == *s) =>
            {
                t
            }
            _ => return Err(Rejection::UnknownTable(shown)),
        };
        let Some((table, def)) = self
            .schema
            .tables
            .iter()
            .find(|(t, _)| self.dialect.canonical_name(t) == *table_part)
        else {
            return Err(Rejection::UnknownTable(shown));
        };
        if let Some(a) = alias {
            let own = self.dialect.canonical_name(table);
            self.not_a_table_name(&a.name, "the alias of another table", Some(&own))?;
        }
        if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
            return Err(unbound(format!(
                "renaming the columns of table {table} by position (AS t(a, b, …)); alias the columns you select instead"
            )));
        }
        self.out.tables.insert(table.clone());
        // Spelled without its (default) schema, so the search path decides:
        // the base table, or the role's views where the database enforces
        // the policy too.
        if let Some(ObjectNamePart::Identifier(last)) = name.0.last().cloned() {
            *name = ObjectName(vec![ObjectNamePart::Identifier(last)]);
        }
        let columns: Vec<Column> = def
            .columns
            .iter()
            .map(|(c, col)| {
                let mut access = self.role.access(col.class);
                if access == Access::Hash && self.dialect == Dialect::Sqlite {
                    access = Access::Deny;
                }
                Column {
                    name: Some(self.dialect.canonical_name(c)),
                    base: Some(BaseColumn {
                        table: table.clone(),
                        column: c.clone(),
                        class: col.class,
                        access,
                    }),
                }
            })
            .collect();
        let (rel_name, ident, unaliased) = match alias {
            Some(a) => (self.canon(&a.name), a.name.clone(), None),
            None => (
                self.dialect.canonical_name(table),
                self.dialect.ident(table),
                Some(table.clone()),
            ),
        };
        if let Some(predicate) = self.role.row_filter(table) {
            let readable: Vec<String> = columns
                .iter()
                .filter_map(|c| c.base.as_ref())
                .filter(|b| b.access != Access::Deny)
                .map(|b| self.dialect.quote_ident(&b.column))
                .collect();
            let sql = format!(
                "SELECT {} FROM {} WHERE {predicate}",
                readable.join(", "),
                self.dialect.quote_ident(table)
            );
            let parser = self.dialect.parser();
            let subquery = Parser::new(parser.as_ref())
                .try_with_sql(&sql)
                .and_then(|mut p| p.parse_query())
                .map_err(|_| Rejection::RowFilter(table.clone()))?;
            self.out.row_filters.insert(format!("{table}: {predicate}"));
            *factor = TableFactor::Derived {
                lateral: false,
                subquery,
                alias: Some(TableAlias {
                    explicit: true,
                    name: ident.clone(),
                    columns: Vec::new(),
                    at: None,
                }),
                sample: None,
            };
        }
        self.add_relation(Relation {
            name: Some(rel_name),
            ident: Some(ident),
            table: unaliased,
            columns,
        });
        Ok(())
    }

    /// Canonical parts of an object name; function-style parts are refused.
    pub(super) fn name_parts(&self, name: &ObjectName) -> Result<Vec<String>, Rejection> {
        name.0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(id) => Ok(self.canon(id)),
                ObjectNamePart::Function(_) => Err(unsupported(format!("the name {name}"))),
            })
            .collect()
    }
}

/// The one table a derived table's body reads, when it is a single SELECT
/// over exactly one unqualified (or default-schema) table with no join:
/// the shape of a filtered read.
fn sole_table(q: &Query) -> Option<&Ident> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let [TableWithJoins { relation, joins }] = s.from.as_slice() else {
        return None;
    };
    match relation {
        TableFactor::Table {
            name, alias: None, ..
        } if joins.is_empty() && q.with.is_none() => match name.0.last() {
            Some(ObjectNamePart::Identifier(id)) => Some(id),
            _ => None,
        },
        _ => None,
    }
}
