//! Column references: resolution through the scopes, the role's access,
//! masks, and `*` expanded to the columns the role may read.

use sqlparser::ast::*;

use super::*;

impl Binder<'_> {
    /// Expands `*` (all FROM items of this level) or `t.*` to the columns the
    /// role may read, masks applied; denied columns are left out.
    pub(super) fn expand(
        &mut self,
        qualifier: Option<&ObjectName>,
        items: &mut Vec<SelectItem>,
        outputs: &mut Vec<Option<String>>,
    ) -> Result<(), Rejection> {
        let level = self.levels.last().expect("a level is open");
        // The relations the `*` covers, and their columns by bare name.
        let (relations, entries): (Vec<usize>, Vec<Visible>) = match qualifier {
            None if level.relations.is_empty() => {
                return Err(unbound("SELECT * without a FROM clause"));
            }
            None => ((0..level.relations.len()).collect(), level.visible.clone()),
            Some(name) => {
                let parts = self.name_parts(name)?;
                let hits: Vec<usize> = match parts.as_slice() {
                    [q] => (0..level.relations.len())
                        .filter(|&i| level.relations[i].name.as_deref() == Some(q.as_str()))
                        .collect(),
                    _ => Vec::new(),
                };
                let [rel] = hits.as_slice() else {
                    return Err(unbound(format!(
                        "{name}.* names no single table of this query"
                    )));
                };
                let entries = level.relations[*rel]
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(k, c)| Visible {
                        name: c.name.clone().unwrap_or_default(),
                        refs: vec![(*rel, k)],
                    })
                    .collect();
                (vec![*rel], entries)
            }
        };
        if relations
            .iter()
            .any(|&r| level.relations[r].columns.iter().any(|c| c.name.is_none()))
        {
            return Err(unbound(
                "* over a subquery column without a name; name it or list the columns",
            ));
        }
        for v in entries {
            let level = self.levels.last().expect("a level is open");
            let (rel, col) = v.refs[0];
            let relation = &level.relations[rel];
            let column = &relation.columns[col];
            if v.refs.len() == 1
                && let Some(base) = &column.base
                && base.access == Access::Deny
            {
                continue;
            }
            let col_ident = match &column.base {
                Some(b) => self.dialect.ident(&b.column),
                None => Ident::with_quote('"', v.name.clone()),
            };
            let unique = level.visible.iter().filter(|o| o.name == v.name).count() == 1;
            let mut expr = match (&relation.ident, v.refs.len()) {
                (Some(q), 1) => Expr::CompoundIdentifier(vec![q.clone(), col_ident.clone()]),
                _ if unique => Expr::Identifier(col_ident.clone()),
                _ => {
                    return Err(unbound(format!(
                        "SELECT * would read {} from a subquery without a name; alias the subquery",
                        v.name
                    )));
                }
            };
            let base = if v.refs.len() == 1 {
                column.base.clone()
            } else {
                None
            };
            outputs.push(Some(v.name.clone()));
            match base {
                Some(b) if b.access != Access::Allow => {
                    let access = self.read(&b)?;
                    expr = self.mask(&expr, access)?;
                    items.push(SelectItem::ExprWithAlias {
                        expr,
                        alias: col_ident,
                    });
                }
                Some(b) => {
                    self.read(&b)?;
                    items.push(SelectItem::UnnamedExpr(expr));
                }
                None => items.push(SelectItem::UnnamedExpr(expr)),
            }
        }
        Ok(())
    }

    // ----- names ---------------------------------------------------------

    /// Records a read of a table column; a denied one is the rejection.
    pub(super) fn read(&mut self, base: &BaseColumn) -> Result<Access, Rejection> {
        if base.access == Access::Deny {
            return Err(Rejection::ColumnDenied {
                column: format!("{}.{}", base.table, base.column),
                class: base.class,
                roles: self.role.phrase(),
            });
        }
        self.out.classes.insert(base.class);
        if base.access != Access::Allow {
            self.out
                .masked
                .insert(format!("{}.{}", base.table, base.column));
        }
        Ok(base.access)
    }

    /// Resolves a column reference and applies the policy, masking in place.
    pub(super) fn column_ref(&mut self, e: &mut Expr) -> Result<(), Rejection> {
        let parts: Vec<Ident> = match e {
            Expr::Identifier(id) => vec![id.clone()],
            Expr::CompoundIdentifier(parts) => parts.clone(),
            _ => unreachable!("called for identifiers only"),
        };
        let canon: Vec<String> = parts.iter().map(|p| self.canon(p)).collect();
        let shown = parts
            .iter()
            .map(|p| p.value.clone())
            .collect::<Vec<_>>()
            .join(".");
        let columns: Vec<BaseColumn> = match canon.as_slice() {
            [name] => match self.bare(name).map_err(|r| match r {
                // SQLite falls back to a string for such a name; say so.
                Rejection::UnknownColumn(_)
                    if parts[0].quote_style == Some('"')
                        && self.dialect == crate::sql::Dialect::Sqlite =>
                {
                    Rejection::QuotedValue(parts[0].value.clone())
                }
                other => other,
            })? {
                Bare::Columns(cols) => cols,
                Bare::Alias(expr) => {
                    *e = Expr::Nested(expr);
                    return Ok(());
                }
            },
            [q, c] => self.qualified(None, q, c, &shown)?,
            [s, q, c]
                if DEFAULT_SCHEMAS
                    .iter()
                    .any(|d| self.dialect.canonical_name(d) == *s) =>
            {
                let columns = self.qualified(Some(q), q, c, &shown)?;
                // The table is spelled without its schema now; so is the column.
                *e = Expr::CompoundIdentifier(parts[1..].to_vec());
                columns
            }
            _ => return Err(Rejection::UnknownColumn(shown)),
        };
        let mut accesses = Vec::new();
        for base in &columns {
            accesses.push(self.read(base)?);
        }
        match accesses.as_slice() {
            [] => Ok(()),
            [access] if *access != Access::Allow => {
                *e = self.mask(e, *access)?;
                Ok(())
            }
            many if many.iter().any(|a| *a != Access::Allow) => Err(unbound(format!(
                "{shown} merges columns of a JOIN USING that are masked; qualify it"
            ))),
            _ => Ok(()),
        }
    }

    /// A bare name: the base columns it reads, or the output alias it names.
    pub(super) fn bare(&self, name: &str) -> Result<Bare, Rejection> {
        for level in self.levels.iter().rev().filter(|l| !l.hidden) {
            let hits: Vec<&Visible> = level.visible.iter().filter(|v| v.name == name).collect();
            match hits.as_slice() {
                [] => continue,
                [one] => {
                    return Ok(Bare::Columns(
                        one.refs
                            .iter()
                            .filter_map(|&(r, c)| level.relations[r].columns[c].base.clone())
                            .collect(),
                    ));
                }
                _ => return Err(unbound(format!("column {name} is ambiguous; qualify it"))),
            }
        }
        let names_relation = self
            .levels
            .iter()
            .filter(|l| !l.hidden)
            .any(|l| l.relations.iter().any(|r| r.name.as_deref() == Some(name)));
        if names_relation {
            return Err(unbound(format!(
                "{name} is a whole-row reference to a table; name the columns"
            )));
        }
        let alias = self
            .levels
            .iter()
            .rev()
            .find(|l| !l.hidden)
            .and_then(|l| l.aliases.iter().find(|(a, _)| a == name));
        match alias {
            Some((_, Some(expr))) => Ok(Bare::Alias(Box::new(expr.clone()))),
            _ => Err(Rejection::UnknownColumn(name.to_owned())),
        }
    }

    /// `q.c` (or `schema.q.c` when `table` is given: q must be an unaliased table).
    pub(super) fn qualified(
        &self,
        table: Option<&String>,
        q: &str,
        c: &str,
        shown: &str,
    ) -> Result<Vec<BaseColumn>, Rejection> {
        for level in self.levels.iter().rev().filter(|l| !l.hidden) {
            let hits: Vec<&Relation> = level
                .relations
                .iter()
                .filter(|r| r.name.as_deref() == Some(q))
                .filter(|r| {
                    table.is_none_or(|t| {
                        r.table
                            .as_deref()
                            .map(|n| self.dialect.canonical_name(n))
                            .as_deref()
                            == Some(t.as_str())
                    })
                })
                .collect();
            match hits.as_slice() {
                [] => continue,
                [rel] => {
                    let cols: Vec<&Column> = rel
                        .columns
                        .iter()
                        .filter(|col| col.name.as_deref() == Some(c))
                        .collect();
                    return match cols.as_slice() {
                        [one] => Ok(one.base.clone().into_iter().collect()),
                        [] => Err(Rejection::UnknownColumn(shown.to_owned())),
                        _ => Err(unbound(format!("column {shown} is ambiguous"))),
                    };
                }
                _ => return Err(unbound(format!("{q} names several tables of this query"))),
            }
        }
        Err(Rejection::UnknownColumn(shown.to_owned()))
    }

    /// The masked form of an expression (`NULL`, a fixed mask, or a hash).
    pub(super) fn mask(&self, e: &Expr, access: Access) -> Result<Expr, Rejection> {
        let reference = e.to_string();
        let sql = match access {
            Access::Null => "NULL".to_owned(),
            Access::Mask => format!("CASE WHEN {reference} IS NULL THEN NULL ELSE '****' END"),
            Access::Hash => format!("md5(CAST({reference} AS TEXT))"),
            Access::Allow | Access::Deny => return Ok(e.clone()),
        };
        let parser = self.dialect.parser();
        Parser::new(parser.as_ref())
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_expr())
            .map_err(|_| Rejection::Unrenderable)
    }
}
