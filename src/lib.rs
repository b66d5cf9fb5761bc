//! steward: a self-hosted analytics chatbot with governed data access.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view. The flow of one question:
//! `http` → `auth` (principal) → `orchestrator` (plan) → `semantic` / `retrieval`
//! → `sql` (the guard, producing `ValidatedSql`) → `warehouse` → answer.

pub mod policy;
pub mod semantic;
pub mod sql;
