//! SQLite enforces the policy too: per-role `TEMP` views and an authorizer.
//!
//! SQLite has no roles, so the engine's side of the policy is built per
//! connection ([`crate::policy::enforce::sqlite_views`]): before a statement
//! runs, the connection holds the `TEMP` views of the role the guard
//! validated it under, in two layers: an *inner* view per table, under a
//! name holding a random token drawn when the warehouse opens, whose body
//! reads `main` (the role's columns, masks and row filter), and an *outer*
//! view named like the table (so it shadows `main`) that selects from the
//! inner one. An authorizer (<https://sqlite.org/c3ref/set_authorizer.html>)
//! is installed for the statement's preparation that allows only
//! - `SELECT`, and `WITH RECURSIVE` (and reads of the statement's own CTEs
//!   and subqueries, which name no schema);
//! - reads of a column of one of the role's outer views (by the statement,
//!   its CTEs or subqueries), and of an inner view by its outer view;
//! - reads of `main` by one of the role's inner views. SQLite reports a
//!   read inside a CTE as a read "through" a view of the CTE's name, so a
//!   CTE named like a table must not pass for its view: only the inner
//!   views' unguessable names may read `main`. (And a read of no column of
//!   a table the role reads every row of: what a flattened view's
//!   `count(*)` is reported as, and what it reveals, the row count, is the
//!   role's to know.)
//! - calls of functions on the guard's allow-list.
//!
//! Everything else (`PRAGMA`, `ATTACH`, writes, transactions, …) is denied.
//! So a statement the guard wrongly allowed still cannot read a column the
//! role may not read (the view has no such column), rows outside the role's
//! filter (the view has none), or a masked value (the view holds the mask).
//!
//! The only `unsafe` code in steward is here: the C API's callback and its
//! installation, each with its safety argument.
#![allow(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::{Arc, Mutex};

use sqlx::SqliteConnection;
use sqlx::sqlite::LockedSqliteHandle;

use crate::policy::Policy;
use crate::policy::enforce::sqlite_views;
use crate::sql::Dialect;

/// steward's marker of the role whose views a connection holds.
const MARKER: &str = "steward_installed_role";

/// Each role's views and what they expose, from one policy.
#[derive(Debug)]
pub(super) struct Enforcement {
    roles: BTreeMap<String, Arc<RoleRules>>,
    /// Every view name any role has, both layers (dropped before another
    /// role's are made).
    names: BTreeSet<String>,
}

/// One role's views: outer view (table) name → columns (lower case), the
/// inner views' names (lower case), and the definitions of both layers.
#[derive(Debug)]
pub(super) struct RoleRules {
    role: String,
    views: BTreeMap<String, BTreeSet<String>>,
    inner: BTreeSet<String>,
    /// Tables the role reads every row of.
    unfiltered: BTreeSet<String>,
    creates: Vec<String>,
}

impl Enforcement {
    /// The views of every role of `policy` (and steward's catalogue reader).
    pub(super) fn new(policy: &Policy) -> Enforcement {
        let token = format!("steward_{:032x}_", rand::random::<u128>());
        let q = |t: &str| Dialect::Sqlite.quote_ident(t);
        let mut names = BTreeSet::new();
        let roles = sqlite_views(policy)
            .into_iter()
            .map(|r| {
                let mut rules = RoleRules {
                    role: r.role.clone(),
                    views: BTreeMap::new(),
                    inner: BTreeSet::new(),
                    unfiltered: BTreeSet::new(),
                    creates: Vec::new(),
                };
                for v in r.views {
                    let inner = format!("{token}{}", v.table);
                    let columns: Vec<String> = v.columns.iter().map(|c| q(c)).collect();
                    rules
                        .creates
                        .push(format!("CREATE TEMP VIEW {} AS {}", q(&inner), v.select));
                    rules.creates.push(format!(
                        "CREATE TEMP VIEW {} AS SELECT {} FROM temp.{}",
                        q(&v.table),
                        columns.join(", "),
                        q(&inner)
                    ));
                    rules.views.insert(
                        v.table.to_ascii_lowercase(),
                        v.columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
                    );
                    rules.inner.insert(inner.to_ascii_lowercase());
                    if !v.filtered {
                        rules.unfiltered.insert(v.table.to_ascii_lowercase());
                    }
                    names.insert(v.table);
                    names.insert(inner);
                }
                (r.role, Arc::new(rules))
            })
            .collect();
        Enforcement { roles, names }
    }

    /// The rules of `role`; `None` for a role the policy does not define
    /// (the statement is refused, never run without views).
    pub(super) fn rules(&self, role: &str) -> Option<Arc<RoleRules>> {
        self.roles.get(role).cloned()
    }

    /// Makes `conn` hold `rules`' views, unless it already does.
    ///
    /// # Errors
    /// The database's error; the connection must then not be reused.
    pub(super) async fn install(
        &self,
        conn: &mut SqliteConnection,
        rules: &RoleRules,
    ) -> Result<(), sqlx::Error> {
        // A statement future dropped during an earlier install may have left
        // its transaction open or `query_only` off: then install again.
        if in_transaction(conn).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        }
        let current: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT role FROM temp.{MARKER} WHERE (SELECT query_only FROM pragma_query_only) = 1"
        )))
        .fetch_optional(&mut *conn)
        .await
        .unwrap_or(None);
        if current.as_deref() == Some(rules.role.as_str()) {
            return Ok(());
        }
        let q = |t: &str| Dialect::Sqlite.quote_ident(t);
        let mut script = vec!["PRAGMA query_only = OFF".to_owned(), "BEGIN".to_owned()];
        script.extend(
            self.names
                .iter()
                .map(|t| format!("DROP VIEW IF EXISTS temp.{}", q(t))),
        );
        script.extend(rules.creates.iter().cloned());
        script.push(format!(
            "CREATE TEMP TABLE IF NOT EXISTS {MARKER} (role TEXT NOT NULL)"
        ));
        script.push(format!("DELETE FROM temp.{MARKER}"));
        script.push(format!(
            "INSERT INTO temp.{MARKER} (role) VALUES ({})",
            crate::sql::quote_literal(&rules.role)
        ));
        script.push("COMMIT".to_owned());
        let mut result = Ok(());
        for s in &script {
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone()))
                .execute(&mut *conn)
                .await
            {
                result = Err(e);
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                break;
            }
        }
        let restored = sqlx::raw_sql("PRAGMA query_only = ON")
            .execute(&mut *conn)
            .await
            .map(drop);
        result.and(restored)
    }
}

/// What the authorizer checks one statement's preparation against, and the
/// first thing it denied (for the error message).
pub(super) struct Authorizer {
    rules: Arc<RoleRules>,
    denied: Mutex<Option<String>>,
}

impl Authorizer {
    pub(super) fn new(rules: Arc<RoleRules>) -> Arc<Authorizer> {
        Arc::new(Authorizer {
            rules,
            denied: Mutex::new(None),
        })
    }

    /// The first action denied, in words.
    pub(super) fn denied(&self) -> Option<String> {
        self.denied.lock().ok().and_then(|d| d.clone())
    }

    fn decide(
        &self,
        action: c_int,
        a1: Option<&str>,
        a2: Option<&str>,
        db: Option<&str>,
        view: Option<&str>,
    ) -> Result<(), String> {
        use libsqlite3_sys::{SQLITE_FUNCTION, SQLITE_READ, SQLITE_RECURSIVE, SQLITE_SELECT};
        let lower = |s: Option<&str>| s.unwrap_or_default().to_ascii_lowercase();
        match action {
            SQLITE_SELECT | SQLITE_RECURSIVE => Ok(()),
            SQLITE_FUNCTION => {
                let name = lower(a2);
                if crate::sql::function_allowed(&name) {
                    Ok(())
                } else {
                    Err(format!("function {name}"))
                }
            }
            // A read with no schema is of a CTE or subquery of the statement
            // itself (SQLite reports a recursive CTE's reference to itself
            // so), whose rows come from reads authorized where they happen;
            // every table read names its schema.
            SQLITE_READ if db.is_none() => Ok(()),
            SQLITE_READ => {
                let (table, column, db) = (lower(a1), lower(a2), lower(db));
                let view = view.map(str::to_ascii_lowercase);
                let outer = |t: &str| self.rules.views.contains_key(t);
                let inner = |t: &str| self.rules.inner.contains(t);
                let allowed = match db.as_str() {
                    // An outer view, from anywhere: it holds only the role's data.
                    "temp" if outer(&table) => self.rules.views[&table]
                        .iter()
                        .any(|c| column.is_empty() || *c == column),
                    // An inner view, by its outer view.
                    "temp" if inner(&table) => view.as_deref().is_some_and(outer),
                    // A base table, only by one of the role's inner views;
                    // or, for a table the role reads every row of, with no
                    // column: SQLite flattens views into the statement and
                    // authorizes a flattened table none of whose columns is
                    // used (`SELECT count(*) FROM t`) as the statement's
                    // own read of `main`, and its row count is the view's.
                    "main" if column.is_empty() && view.is_none() => {
                        self.rules.unfiltered.contains(&table)
                    }
                    "main" => view.as_deref().is_some_and(inner),
                    _ => false,
                };
                if allowed {
                    Ok(())
                } else {
                    Err(match view {
                        Some(v) => format!("a read of {db}.{table}.{column} through {v}"),
                        None => format!("a read of {db}.{table}.{column}"),
                    })
                }
            }
            other => Err(format!("action {other}")),
        }
    }
}

/// An authorizer while it may be installed on a connection. Dropped before
/// [`Installed::removed`] (the statement's future was cancelled, or the
/// connection could not be locked to remove it), it is leaked, never freed,
/// so the pointer SQLite holds stays valid until the connection's next
/// statement replaces the callback ([`remove_authorizer`] runs first).
pub(super) struct Installed(Option<Arc<Authorizer>>);

impl Installed {
    pub(super) fn new(auth: Arc<Authorizer>) -> Installed {
        Installed(Some(auth))
    }

    pub(super) fn get(&self) -> &Arc<Authorizer> {
        self.0.as_ref().expect("present until removed")
    }

    /// The authorizer, once [`remove_authorizer`] has run.
    pub(super) fn removed(mut self) -> Arc<Authorizer> {
        self.0.take().expect("present until removed")
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if let Some(auth) = self.0.take() {
            std::mem::forget(auth);
        }
    }
}

/// Installs `auth` as the connection's authorizer. The caller keeps `auth`
/// alive until [`remove_authorizer`] (or, if that cannot run, forever:
/// [`Installed`]).
pub(super) fn set_authorizer(handle: &mut LockedSqliteHandle<'_>, auth: &Arc<Authorizer>) {
    // SAFETY: the locked handle gives exclusive use of a live connection;
    // the callback only reads `auth`, which outlives its installation.
    unsafe {
        libsqlite3_sys::sqlite3_set_authorizer(
            handle.as_raw_handle().as_ptr(),
            Some(authorize),
            Arc::as_ptr(auth).cast_mut().cast(),
        );
    }
}

/// Caps the size of any string or blob the connection makes at `bytes`
/// (`SQLITE_LIMIT_LENGTH`, <https://sqlite.org/c3ref/limit.html>), so a value
/// the guard would have bounded (`printf('%.900000000f', 1)`) fails in
/// SQLite too instead of filling memory.
pub(super) fn limit_length(handle: &mut LockedSqliteHandle<'_>, bytes: i32) {
    // SAFETY: the locked handle gives exclusive use of a live connection.
    unsafe {
        libsqlite3_sys::sqlite3_limit(
            handle.as_raw_handle().as_ptr(),
            libsqlite3_sys::SQLITE_LIMIT_LENGTH,
            bytes,
        );
    }
}

/// SQLite's own reading of `sql`, prepared under the installed authorizer:
/// exactly one statement, read-only (<https://sqlite.org/c3ref/stmt_readonly.html>),
/// and no `EXPLAIN` (<https://sqlite.org/c3ref/stmt_isexplain.html>), which
/// shows the engine's internals rather than data. A statement SQLite cannot
/// prepare passes here and fails where it runs, with SQLite's error.
///
/// # Errors
/// What makes it something other than one plain read-only statement.
pub(super) fn one_read_only_statement(
    handle: &mut LockedSqliteHandle<'_>,
    sql: &str,
) -> Result<(), String> {
    use libsqlite3_sys::{SQLITE_OK, sqlite3_finalize, sqlite3_prepare_v2};
    let text = std::ffi::CString::new(sql).map_err(|_| "a NUL character".to_owned())?;
    let db = handle.as_raw_handle().as_ptr();
    let prepare = |from: *const c_char| {
        let mut stmt = std::ptr::null_mut();
        let mut tail = std::ptr::null();
        // SAFETY: the locked handle gives exclusive use of a live
        // connection; `from` points into `text`, NUL-terminated, which
        // outlives the call; SQLite sets `tail` inside it.
        let rc = unsafe { sqlite3_prepare_v2(db, from, -1, &mut stmt, &mut tail) };
        (rc, stmt, tail)
    };
    let (rc, stmt, tail) = prepare(text.as_ptr());
    if rc != SQLITE_OK || stmt.is_null() {
        // SAFETY: finalizing NULL is a no-op; a failed prepare may leave one.
        unsafe { sqlite3_finalize(stmt) };
        return Ok(());
    }
    // SAFETY: `stmt` is a live prepared statement, finalized once below.
    let (explain, read_only) = unsafe {
        (
            libsqlite3_sys::sqlite3_stmt_isexplain(stmt) != 0,
            libsqlite3_sys::sqlite3_stmt_readonly(stmt) != 0,
        )
    };
    // SAFETY: as above; not used after.
    unsafe { sqlite3_finalize(stmt) };
    // What follows the first statement must be empty or comments only.
    let (_, next, _) = prepare(tail);
    let more = !next.is_null();
    // SAFETY: finalizing NULL is a no-op.
    unsafe { sqlite3_finalize(next) };
    match (more, explain, read_only) {
        (true, _, _) => Err("more than one statement".into()),
        (_, true, _) => Err("EXPLAIN".into()),
        (_, _, false) => Err("a statement that is not read-only".into()),
        _ => Ok(()),
    }
}

/// Whether the connection is inside a transaction
/// (<https://sqlite.org/c3ref/get_autocommit.html>).
async fn in_transaction(conn: &mut SqliteConnection) -> bool {
    let Ok(mut handle) = conn.lock_handle().await else {
        return true;
    };
    // SAFETY: the locked handle gives exclusive use of a live connection.
    unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) == 0 }
}

/// Removes the connection's authorizer.
pub(super) fn remove_authorizer(handle: &mut LockedSqliteHandle<'_>) {
    // SAFETY: as in `set_authorizer`; a NULL callback removes it.
    unsafe {
        libsqlite3_sys::sqlite3_set_authorizer(
            handle.as_raw_handle().as_ptr(),
            None,
            std::ptr::null_mut(),
        );
    }
}

/// The C callback: `data` is an `Authorizer` that outlives the statement's
/// preparation (installed and removed around it). Never unwinds.
unsafe extern "C" fn authorize(
    data: *mut c_void,
    action: c_int,
    a1: *const c_char,
    a2: *const c_char,
    db: *const c_char,
    view: *const c_char,
) -> c_int {
    let text = |p: *const c_char| {
        // SAFETY: SQLite passes NULL or a NUL-terminated string valid for the call.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("\u{fffd}"))
    };
    let decided = std::panic::catch_unwind(|| {
        // SAFETY: `data` is the `Authorizer` the warehouse keeps alive while installed.
        let auth = unsafe { &*data.cast::<Authorizer>() };
        match auth.decide(action, text(a1), text(a2), text(db), text(view)) {
            Ok(()) => libsqlite3_sys::SQLITE_OK,
            Err(why) => {
                if let Ok(mut d) = auth.denied.lock()
                    && d.is_none()
                {
                    *d = Some(why);
                }
                libsqlite3_sys::SQLITE_DENY
            }
        }
    });
    decided.unwrap_or(libsqlite3_sys::SQLITE_DENY)
}
