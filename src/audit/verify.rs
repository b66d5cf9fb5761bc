//! [`AuditLog::verify`]: the chain recomputed from its first remaining event.

use sqlx::Row;

use super::{AuditError, AuditEvent, AuditLog, COLUMNS, EventKind, GENESIS, VerifyReport};
use super::{chain_hash, tables_column};
use secrecy::ExposeSecret;

impl AuditLog {
    /// Checks that the key reproduces the newest event's hash, so a lost or
    /// replaced key (a new one generated in its place) stops start-up instead
    /// of silently breaking the chain from the next event on. An empty trail
    /// passes.
    ///
    /// # Errors
    /// [`AuditError::Key`] when the key does not match; database failures.
    pub async fn check_key(&self) -> Result<(), AuditError> {
        let row = sqlx::query(
            "SELECT seq, body, prev_hash, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(());
        };
        let seq: i64 = row.try_get("seq")?;
        let body: String = row.try_get("body")?;
        let prev_hash: String = row.try_get("prev_hash")?;
        let hash: String = row.try_get("hash")?;
        if chain_hash(self.key.expose_secret(), &prev_hash, seq, &body) == hash {
            Ok(())
        } else {
            Err(AuditError::Key(format!(
                "the audit key does not match the trail (event {seq} was chained with another key): \
                 restore the key file ({}) or STEWARD_AUDIT_KEY; a new key would break the chain",
                self.settings.key_file.display()
            )))
        }
    }

    /// Recomputes the whole chain.
    ///
    /// # Errors
    /// Database failures (a broken chain is a report, not an error).
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events ORDER BY seq"
        )))
        .fetch_all(self.db.pool())
        .await?;
        let mut report = VerifyReport {
            events: rows.len() as u64,
            first_seq: None,
            last_seq: None,
            head: GENESIS.to_owned(),
            problems: Vec::new(),
        };
        let mut problem = |p: String| {
            if report.problems.len() < 50 {
                report.problems.push(p);
            }
        };
        // Anchors recorded by purges: (seq, hash) of the last event each deleted.
        let mut anchors = Vec::new();
        let mut prev: Option<(i64, String)> = None;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let body: String = row.try_get("body")?;
            let prev_hash: String = row.try_get("prev_hash")?;
            let hash: String = row.try_get("hash")?;
            if chain_hash(self.key.expose_secret(), &prev_hash, seq, &body) != hash {
                problem(format!("event {seq}: hash does not match its contents"));
            }
            match &prev {
                Some((p_seq, p_hash)) => {
                    if seq != p_seq + 1 {
                        problem(format!("events {}..{} are missing", p_seq + 1, seq - 1));
                    } else if &prev_hash != p_hash {
                        problem(format!("event {seq}: does not chain from event {p_seq}"));
                    }
                }
                None => report.first_seq = Some(seq),
            }
            match serde_json::from_str::<AuditEvent>(&body) {
                Ok(e) => {
                    let columns_agree = e.seq == seq
                        && e.id == row.try_get::<String, _>("id")?
                        && e.at_ms == row.try_get::<i64, _>("at_ms")?
                        && e.kind.as_str() == row.try_get::<String, _>("kind")?
                        && e.parent == row.try_get::<Option<String>, _>("parent_id")?
                        && e.principal == row.try_get::<String, _>("principal")?
                        && e.channel.as_str() == row.try_get::<String, _>("channel")?
                        && e.outcome == row.try_get::<String, _>("outcome")?
                        && tables_column(&e.tables) == row.try_get::<String, _>("tables")?;
                    if !columns_agree {
                        problem(format!("event {seq}: columns differ from its contents"));
                    }
                    if e.kind == EventKind::Purge
                        && let Some(d) = &e.detail
                        && let (Some(s), Some(h)) =
                            (d["anchor_seq"].as_i64(), d["anchor_hash"].as_str())
                    {
                        anchors.push((s, h.to_owned()));
                    }
                }
                Err(_) => problem(format!("event {seq}: contents unreadable")),
            }
            prev = Some((seq, hash));
        }
        if let (Some(first), Some(row)) = (report.first_seq, rows.first()) {
            let prev_hash: String = row.try_get("prev_hash")?;
            let anchored = (first == 1 && prev_hash == GENESIS)
                || anchors
                    .iter()
                    .any(|(s, h)| *s == first - 1 && *h == prev_hash);
            if !anchored {
                problem(format!(
                    "event {first}: the events before it were removed without a purge record"
                ));
            }
        }
        if let Some((seq, hash)) = prev {
            report.last_seq = Some(seq);
            report.head = hash;
        }
        Ok(report)
    }
}
