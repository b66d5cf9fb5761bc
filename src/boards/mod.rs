//! Boards of saved answers: a user pins a question they asked to a personal
//! board, or to a shared one every signed-in user may open. A board keeps
//! questions, never answers: each pin is asked again when the board is
//! opened, **under the viewer's grants** (a shared board shows each viewer
//! only what they may see), served from the result cache while it is fresh,
//! and shown with its as-of time. This covers the dashboard use of a chat
//! tool without a dashboard builder.
//!
//! Only a board's owner pins to it or removes pins; the owner or an admin
//! deletes it. A personal board is visible to its owner only; to anyone
//! else it does not exist (404). Tables: migration 0011.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::policy::Principal;
use crate::session::SessionStore;

/// Most boards one user may own.
pub const MAX_BOARDS_PER_USER: i64 = 50;
/// Most pins on one board.
pub const MAX_PINS_PER_BOARD: i64 = 24;
/// Longest board name, in characters.
pub const MAX_NAME_CHARS: usize = 80;

/// A board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Board {
    /// Random id (32 hex digits).
    pub id: String,
    /// The steward user who owns it.
    pub owner: String,
    /// Its name, 1–[`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Every signed-in user may open it (each sees it under their own grants).
    pub shared: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// How many pins it holds.
    pub pins: i64,
}

/// A pinned question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// Random id (32 hex digits).
    pub id: String,
    /// Its board.
    pub board_id: String,
    /// The question, asked again on every open.
    pub question: String,
    /// Who pinned it (the board's owner).
    pub pinned_by: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A board as requested.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBoard {
    /// Its name.
    pub name: String,
    /// Shared with every signed-in user (default personal).
    #[serde(default)]
    pub shared: bool,
}

/// Why a board operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// No such board or pin, or not one the caller may see.
    #[error("no such board or pin")]
    NotFound,
    /// The caller may see it but not change it.
    #[error("only the board's owner may change it")]
    Forbidden,
    /// A bad name or question, or a limit reached (the text says which).
    #[error("{0}")]
    Invalid(String),
    /// steward's database failed.
    #[error("steward's database failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Boards and pins in steward's database.
#[derive(Clone)]
pub struct BoardStore {
    db: SessionStore,
}

fn board_of(row: &AnyRow) -> Result<Board, sqlx::Error> {
    Ok(Board {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        shared: row.try_get::<i64, _>("shared")? != 0,
        created_at: row.try_get("created_at")?,
        pins: row.try_get("pins")?,
    })
}

fn pin_of(row: &AnyRow) -> Result<Pin, sqlx::Error> {
    Ok(Pin {
        id: row.try_get("id")?,
        board_id: row.try_get("board_id")?,
        question: row.try_get("question")?,
        pinned_by: row.try_get("pinned_by")?,
        created_at: row.try_get("created_at")?,
    })
}

const BOARD_COLUMNS: &str = "b.id, b.owner, b.name, b.shared, b.created_at, \
     (SELECT COUNT(*) FROM pins p WHERE p.board_id = b.id) AS pins";

/// Only a board's owner changes it.
fn owner_only(b: &Board, viewer: &Principal) -> Result<(), BoardError> {
    if b.owner == viewer.user {
        Ok(())
    } else {
        Err(BoardError::Forbidden)
    }
}

impl BoardStore {
    /// The store in steward's database.
    pub fn new(db: SessionStore) -> BoardStore {
        BoardStore { db }
    }

    /// Creates a board owned by `owner` at `now`.
    ///
    /// # Errors
    /// [`BoardError::Invalid`] for an empty or over-long name (after
    /// trimming) or too many boards; database failures.
    pub async fn create(
        &self,
        owner: &Principal,
        req: NewBoard,
        now: i64,
    ) -> Result<Board, BoardError> {
        let name = req.name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(BoardError::Invalid(format!(
                "a board's name is 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        // The count and the insert are one serialized transaction, so parallel
        // requests cannot each see room for one more.
        let mut tx = self
            .db
            .begin_serialized(&format!("boards:{}", owner.user))
            .await?;
        let owned: i64 = sqlx::query(
            self.db
                .sql("SELECT COUNT(*) AS n FROM boards WHERE owner = $1"),
        )
        .bind(&owner.user)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if owned >= MAX_BOARDS_PER_USER {
            return Err(BoardError::Invalid(format!(
                "at most {MAX_BOARDS_PER_USER} boards per user"
            )));
        }
        let board = Board {
            id: crate::audit::new_id(),
            owner: owner.user.clone(),
            name,
            shared: req.shared,
            created_at: now,
            pins: 0,
        };
        sqlx::query(self.db.sql(
            "INSERT INTO boards (id, owner, name, shared, created_at) VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(&board.id)
        .bind(&board.owner)
        .bind(&board.name)
        .bind(i64::from(board.shared))
        .bind(board.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(board)
    }

    /// The boards `viewer` may open: their own, then shared ones, each
    /// group oldest first (at most 500).
    ///
    /// # Errors
    /// Database failures.
    pub async fn visible(&self, viewer: &Principal) -> Result<Vec<Board>, BoardError> {
        let rows = sqlx::query(self.db.sql(&format!(
            "SELECT {BOARD_COLUMNS} FROM boards b WHERE b.owner = $1 OR b.shared = 1 \
             ORDER BY CASE WHEN b.owner = $1 THEN 0 ELSE 1 END, b.created_at, b.id LIMIT 500"
        )))
        .bind(&viewer.user)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows.iter().map(board_of).collect::<Result<_, _>>()?)
    }

    /// Board `id` if `viewer` may open it.
    ///
    /// # Errors
    /// [`BoardError::NotFound`] when there is none or it is someone else's
    /// personal board; database failures.
    pub async fn open(&self, viewer: &Principal, id: &str) -> Result<Board, BoardError> {
        if !crate::audit::is_id(id) {
            return Err(BoardError::NotFound);
        }
        let row = sqlx::query(self.db.sql(&format!(
            "SELECT {BOARD_COLUMNS} FROM boards b WHERE b.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        match row.as_ref().map(board_of).transpose()? {
            Some(b) if b.shared || b.owner == viewer.user => Ok(b),
            _ => Err(BoardError::NotFound),
        }
    }

    /// Board `id` if `viewer` may change it (its owner).
    async fn owned(&self, viewer: &Principal, id: &str) -> Result<Board, BoardError> {
        let b = self.open(viewer, id).await?;
        owner_only(&b, viewer)?;
        Ok(b)
    }

    /// Deletes board `id` and its pins: its owner, or an admin
    /// (`is_admin`) for a board they may see.
    ///
    /// # Errors
    /// [`BoardError::NotFound`], [`BoardError::Forbidden`]; database failures.
    pub async fn delete(
        &self,
        viewer: &Principal,
        id: &str,
        is_admin: bool,
    ) -> Result<(), BoardError> {
        let b = self.open(viewer, id).await?;
        if b.owner != viewer.user && !is_admin {
            return Err(BoardError::Forbidden);
        }
        let mut tx = self.db.pool().begin().await?;
        sqlx::query(self.db.sql("DELETE FROM pins WHERE board_id = $1"))
            .bind(&b.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(self.db.sql("DELETE FROM boards WHERE id = $1"))
            .bind(&b.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pins of a board `viewer` may open, in the order they were pinned.
    ///
    /// # Errors
    /// [`BoardError::NotFound`]; database failures.
    pub async fn pins(
        &self,
        viewer: &Principal,
        id: &str,
    ) -> Result<(Board, Vec<Pin>), BoardError> {
        let b = self.open(viewer, id).await?;
        let rows = sqlx::query(self.db.sql(
            "SELECT id, board_id, question, pinned_by, created_at FROM pins WHERE board_id = $1 \
             ORDER BY position, created_at, id",
        ))
        .bind(&b.id)
        .fetch_all(self.db.pool())
        .await?;
        let pins = rows.iter().map(pin_of).collect::<Result<_, _>>()?;
        Ok((b, pins))
    }

    /// One pin of a board `viewer` may open.
    ///
    /// # Errors
    /// [`BoardError::NotFound`]; database failures.
    pub async fn pin(&self, viewer: &Principal, board: &str, pin: &str) -> Result<Pin, BoardError> {
        let (_, pins) = self.pins(viewer, board).await?;
        pins.into_iter()
            .find(|p| p.id == pin)
            .ok_or(BoardError::NotFound)
    }

    /// Pins `question` (already checked as a question) to board `id`, which
    /// `viewer` must own.
    ///
    /// # Errors
    /// [`BoardError::NotFound`], [`BoardError::Forbidden`],
    /// [`BoardError::Invalid`] when the board is full or already holds the
    /// question; database failures.
    pub async fn add_pin(
        &self,
        viewer: &Principal,
        id: &str,
        question: &str,
        now: i64,
    ) -> Result<Pin, BoardError> {
        let b = self.owned(viewer, id).await?;
        // Counted and inserted in one serialized transaction (see `create`).
        let mut tx = self.db.begin_serialized(&format!("pins:{}", b.id)).await?;
        let rows = sqlx::query(self.db.sql("SELECT question FROM pins WHERE board_id = $1"))
            .bind(&b.id)
            .fetch_all(&mut *tx)
            .await?;
        if rows.len() as i64 >= MAX_PINS_PER_BOARD {
            return Err(BoardError::Invalid(format!(
                "a board holds at most {MAX_PINS_PER_BOARD} answers"
            )));
        }
        for row in &rows {
            if row.try_get::<String, _>("question")? == question {
                return Err(BoardError::Invalid(
                    "that question is already on the board".into(),
                ));
            }
        }
        let pin = Pin {
            id: crate::audit::new_id(),
            board_id: b.id,
            question: question.to_owned(),
            pinned_by: viewer.user.clone(),
            created_at: now,
        };
        sqlx::query(self.db.sql(
            "INSERT INTO pins (id, board_id, question, pinned_by, created_at, position) \
             VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(position), 0) + 1 FROM pins WHERE board_id = $2))",
        ))
        .bind(&pin.id)
        .bind(&pin.board_id)
        .bind(&pin.question)
        .bind(&pin.pinned_by)
        .bind(pin.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(pin)
    }

    /// Removes pin `pin` from board `id`, which `viewer` must own.
    ///
    /// # Errors
    /// [`BoardError::NotFound`], [`BoardError::Forbidden`]; database failures.
    pub async fn remove_pin(
        &self,
        viewer: &Principal,
        id: &str,
        pin: &str,
    ) -> Result<(), BoardError> {
        let b = self.owned(viewer, id).await?;
        let done = sqlx::query(
            self.db
                .sql("DELETE FROM pins WHERE board_id = $1 AND id = $2"),
        )
        .bind(&b.id)
        .bind(pin)
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(BoardError::NotFound);
        }
        Ok(())
    }
}
