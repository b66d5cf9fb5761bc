//! steward: a self-hosted analytics chatbot with governed data access.
//!
//! See `ARCHITECTURE.md` for the bird's-eye view. The flow of one question:
//! `http` → `auth` (principal) → `orchestrator` (plan) → `semantic` /
//! `retrieval` (and, for what the planner cannot express, the `llm` agent) → `sql` (the guard, producing `ValidatedSql`) → `warehouse` →
//! answer.

pub mod audit;
pub mod auth;
pub mod boards;
pub mod cli;
pub mod dedupe;
pub mod demo;
pub mod eval;
pub mod http;
pub mod llm;
pub mod orchestrator;
pub mod policy;
pub mod prometheus;
pub mod redact;
pub mod retrieval;
pub mod review;
pub mod run;
pub mod semantic;
pub mod session;
pub mod settings;
pub mod slack;
pub mod sql;
pub mod startup;
pub mod subscriptions;
pub mod telemetry;
pub mod text;
pub mod warehouse;
