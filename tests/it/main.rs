//! One integration-test binary: every module shares the moto harness in `common` and links
//! the SDK once. Modules: the per-protocol renderings on the topic, the command line, the event path, the daily scan, faults, hostile input, the Lambda
//! end to end, load, remediation safety, the template and policies, the role's actions, Security Hub's finding lifecycle, stale-key deactivation and undo, the privileged paths (break-glass, the registry), and the organization scan's state machine executed by moto. (Secrets in logs has its own
//! end to end, load, remediation safety, the template and policies, the role's actions, Security Hub's finding lifecycle, stale-key deactivation and undo, and the privileged paths (break-glass, the registry), and the SCP coverage of an organization. (Secrets in logs has its own
//! binary: see tests/no_secrets.rs.)

#[path = "../common/mod.rs"]
mod common;

mod channels;
mod cli;
mod dashboard;
mod event_path;
mod faults;
mod hostile_input;
mod html_report;
mod infra;
mod lambda_e2e;
mod load;
mod memory;
mod metrics;
mod organization;
mod policies;
mod privileged;
mod remediation_safety;
mod role_actions;
mod root_access;
mod rotation;
mod rotation_safety;
mod scan;
mod scp_coverage;
mod security_hub;
mod stale_keys;
mod state_machine;
