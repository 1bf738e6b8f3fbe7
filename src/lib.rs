//! iam-sentinel keeps IAM users compliant: it judges IAM changes and the whole account
//! against the `AccessException` SCP policy, key and MFA hygiene, publishes findings to
//! SNS, and removes unapproved exception tags.

pub mod app;
pub mod approvals;
pub mod aws;
pub mod checks;
pub mod cli;
pub mod config;
pub mod credential_report;
pub mod domain;
pub mod event;
pub mod finding;
pub mod lambda;
pub mod message;
pub mod metrics;
pub mod org;
pub mod output;
pub mod ports;
pub mod remediate;
pub mod render;
pub mod runtime;
pub mod snapshot;
pub mod state;
