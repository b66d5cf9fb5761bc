//! Integration tests: the real binary's library on a real port, against a
//! freshly generated demo warehouse and the vendored Chinook database.

mod audit;
mod audit_store;
mod backchannel;
mod bad_input;
mod bearer;
mod chinook;
mod cli;
mod cli_retrieval;
mod conversations;
mod db_oracle;
mod grounding;
mod guard_corpus;
mod hardening;
mod helpers;
mod instances;
mod llm_agent;
mod llm_live;
mod llm_sqlgen;
mod load;
mod log_leaks;
mod metricflow;
mod metrics_api;
mod oidc_provider;
mod policy_rules;
mod postgres;
mod retrieval;
mod scripted_llm;
mod sessions;
mod six_questions;
mod slack;
mod sso;
mod streaming;
mod vector_store;
mod web_api;
mod web_e2e;
