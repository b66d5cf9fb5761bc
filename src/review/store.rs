//! The review loop's tables in steward's database (migration 0008):
//! `feedback`, `review_candidates` and the versioned `verified_queries`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Candidate, Feedback, Rating};
use crate::orchestrator::verified::VerifiedQuery;
use crate::session::SessionStore;

/// Feedback, candidates and approved verified queries.
#[derive(Clone)]
pub struct ReviewStore {
    db: SessionStore,
}

const CANDIDATE_COLUMNS: &str = "id, question, sql, proposed_by, feedback_id, event_id, seen, status, reviewed_by, reviewed_at, review_note, created_at";

fn candidate_of(row: &AnyRow) -> Result<Candidate, sqlx::Error> {
    let seen: String = row.try_get("seen")?;
    Ok(Candidate {
        id: row.try_get("id")?,
        question: row.try_get("question")?,
        sql: row.try_get("sql")?,
        proposed_by: row.try_get("proposed_by")?,
        feedback_id: row.try_get("feedback_id")?,
        event_id: row.try_get("event_id")?,
        seen: serde_json::from_str(&seen).unwrap_or_default(),
        status: row.try_get("status")?,
        reviewed_by: row.try_get("reviewed_by")?,
        reviewed_at: row.try_get("reviewed_at")?,
        review_note: row.try_get("review_note")?,
        created_at: row.try_get("created_at")?,
    })
}

fn verified_of(row: &AnyRow) -> Result<VerifiedQuery, sqlx::Error> {
    let approved_at: i64 = row.try_get("approved_at")?;
    let mut q = VerifiedQuery::new(
        row.try_get::<String, _>("question")?,
        row.try_get::<String, _>("sql")?,
    );
    q.owner = Some(row.try_get("owner")?);
    q.role = Some(row.try_get("role")?);
    q.version = Some(row.try_get("version")?);
    q.approved_at = chrono::DateTime::from_timestamp(approved_at, 0).map(|t| t.to_rfc3339());
    Ok(q)
}

impl ReviewStore {
    /// The store in steward's database.
    pub fn new(db: SessionStore) -> ReviewStore {
        ReviewStore { db }
    }

    /// Stores feedback.
    ///
    /// # Errors
    /// Database failures.
    pub async fn add_feedback(&self, f: &Feedback) -> Result<(), sqlx::Error> {
        sqlx::query(self.db.sql(
            "INSERT INTO feedback (id, event_id, user_id, rating, comment, corrected_sql, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(&f.id)
        .bind(&f.event_id)
        .bind(&f.user)
        .bind(f.rating.as_str())
        .bind(f.comment.clone())
        .bind(f.corrected_sql.clone())
        .bind(f.created_at)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    /// The newest feedback first, at most `limit`; only `user`'s when given.
    ///
    /// # Errors
    /// Database failures.
    pub async fn feedback(
        &self,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Feedback>, sqlx::Error> {
        let rows = sqlx::query(self.db.sql(
            "SELECT id, event_id, user_id, rating, comment, corrected_sql, created_at FROM feedback \
             WHERE ($1 = '' OR user_id = $1) ORDER BY created_at DESC, id LIMIT $2",
        ))
        .bind(user.unwrap_or_default())
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Feedback {
                    id: r.try_get("id")?,
                    event_id: r.try_get("event_id")?,
                    user: r.try_get("user_id")?,
                    rating: Rating::parse(&r.try_get::<String, _>("rating")?),
                    comment: r.try_get("comment")?,
                    corrected_sql: r.try_get("corrected_sql")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Stores a candidate.
    ///
    /// # Errors
    /// Database failures.
    pub async fn add_candidate(&self, c: &Candidate) -> Result<(), sqlx::Error> {
        sqlx::query(self.db.sql(
            "INSERT INTO review_candidates (id, question, sql, proposed_by, feedback_id, event_id, seen, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ))
        .bind(&c.id)
        .bind(&c.question)
        .bind(&c.sql)
        .bind(&c.proposed_by)
        .bind(&c.feedback_id)
        .bind(&c.event_id)
        .bind(c.seen.to_string())
        .bind(&c.status)
        .bind(c.created_at)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    /// Candidates with `status` (all when `None`), oldest first, at most 500.
    ///
    /// # Errors
    /// Database failures.
    pub async fn candidates(&self, status: Option<&str>) -> Result<Vec<Candidate>, sqlx::Error> {
        let sql = format!(
            "SELECT {CANDIDATE_COLUMNS} FROM review_candidates WHERE ($1 = '' OR status = $1) ORDER BY created_at, id LIMIT 500"
        );
        let rows = sqlx::query(self.db.sql(&sql))
            .bind(status.unwrap_or_default())
            .fetch_all(self.db.pool())
            .await?;
        rows.iter().map(candidate_of).collect()
    }

    /// One candidate.
    ///
    /// # Errors
    /// Database failures.
    pub async fn candidate(&self, id: &str) -> Result<Option<Candidate>, sqlx::Error> {
        let sql = format!("SELECT {CANDIDATE_COLUMNS} FROM review_candidates WHERE id = $1");
        let row = sqlx::query(self.db.sql(&sql))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(candidate_of).transpose()
    }

    /// Marks a pending candidate `status` (`rejected`); `false` when it was
    /// not pending.
    ///
    /// # Errors
    /// Database failures.
    pub async fn decide(
        &self,
        id: &str,
        status: &str,
        by: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(self.db.sql(
            "UPDATE review_candidates SET status = $1, reviewed_by = $2, reviewed_at = $3, review_note = $4 \
             WHERE id = $5 AND status = 'pending'",
        ))
        .bind(status)
        .bind(by)
        .bind(now)
        .bind(note.map(str::to_owned))
        .bind(id)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// In one transaction: marks the pending candidate approved, stores
    /// `pair` as the next version (checked under `pair.role`), and marks
    /// earlier versions for the same question superseded. Returns the
    /// version. `baseline` is the latest version the regression run
    /// compared against: if another approval landed since, on any instance,
    /// nothing is stored (its run did not see this one, nor this run that).
    ///
    /// # Errors
    /// [`super::ReviewError::Conflict`] when the candidate is no longer
    /// pending, another approval landed after `baseline`, or the version was
    /// taken; `Store` for database failures.
    pub async fn approve(
        &self,
        candidate: &str,
        pair: &VerifiedQuery,
        owner: &str,
        note: Option<&str>,
        now: i64,
        baseline: i64,
    ) -> Result<i64, super::ReviewError> {
        let conflict = |what: &str| super::ReviewError::Conflict(what.to_owned());
        let mut tx = self.db.pool().begin().await?;
        let marked = sqlx::query(self.db.sql(
            "UPDATE review_candidates SET status = 'approved', reviewed_by = $1, reviewed_at = $2, review_note = $3 \
             WHERE id = $4 AND status = 'pending'",
        ))
        .bind(owner)
        .bind(now)
        .bind(note.map(str::to_owned))
        .bind(candidate)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            return Err(conflict("the candidate was decided meanwhile"));
        }
        let latest: i64 = sqlx::query(
            self.db
                .sql("SELECT COALESCE(MAX(version), 0) AS v FROM verified_queries"),
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get("v")?;
        if latest != baseline {
            return Err(conflict(
                "another verified query was approved meanwhile; approve again to re-run the regression with it",
            ));
        }
        let version = latest + 1;
        let key = crate::text::question_key(&pair.question);
        sqlx::query(self.db.sql(
            "UPDATE verified_queries SET superseded_by = $1 WHERE question_key = $2 AND superseded_by IS NULL",
        ))
        .bind(version)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.db.sql(
            "INSERT INTO verified_queries (version, question, question_key, sql, role, owner, approved_at, candidate_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ))
        .bind(version)
        .bind(&pair.question)
        .bind(&key)
        .bind(&pair.sql)
        .bind(pair.role.clone().unwrap_or_default())
        .bind(owner)
        .bind(now)
        .bind(candidate)
        .execute(&mut *tx)
        .await
        .map_err(|_| conflict("another approval took that version; try again"))?;
        tx.commit().await?;
        Ok(version)
    }

    /// The latest version (0 when none).
    ///
    /// # Errors
    /// Database failures.
    pub async fn max_version(&self) -> Result<i64, sqlx::Error> {
        sqlx::query(
            self.db
                .sql("SELECT COALESCE(MAX(version), 0) AS v FROM verified_queries"),
        )
        .fetch_one(self.db.pool())
        .await?
        .try_get("v")
    }

    /// The approved pairs in force (not superseded), newest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn approved(&self) -> Result<Vec<VerifiedQuery>, sqlx::Error> {
        let rows = sqlx::query(self.db.sql(
            "SELECT version, question, sql, role, owner, approved_at FROM verified_queries \
             WHERE superseded_by IS NULL ORDER BY version DESC",
        ))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(verified_of).collect()
    }
}
