//! The `iam-sentinel` command line: the same app as the Lambda, on event files and the account.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::app::{Outcome, RunOptions};
use crate::aws::Endpoint;
use crate::config::Config;
use crate::output::{Format, render};

/// Keeps IAM users compliant: judges IAM changes against the approvals registry,
/// checks keys and MFA, publishes findings to SNS, removes unapproved exception tags.
#[derive(Debug, Parser)]
#[command(name = "iam-sentinel", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Handle one EventBridge event from a file, exactly as the Lambda would.
    Handle {
        /// The event JSON (see events/).
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// How to print findings.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Report what remediation would do without changing IAM.
    #[arg(long)]
    dry_run: bool,
    /// Print findings only; do not publish to FINDINGS_TOPIC_ARN.
    #[arg(long)]
    no_publish: bool,
    /// AWS endpoint (for a local emulator); AWS_ENDPOINT_URL works too.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// AWS region.
    #[arg(long)]
    region: Option<String>,
    /// Evaluate as of this time (RFC 3339) instead of now, e.g. to see what will be due.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
}

fn parse_as_of(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2027-01-01T00:00:00Z ({e})"))
}

/// Exit status: 0 success, 1 the run failed (findings may have been printed), 2 bad input or configuration.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    match cli.command {
        Command::Handle { file, common } => Box::pin(handle(&file, &common)).await,
    }
}

async fn handle(file: &std::path::Path, common: &Common) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            return fail(2, &format!("cannot read event file {}: {e}", file.display()));
        }
    };
    let event: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return fail(2, &format!("malformed event: {} is not JSON: {e}", file.display()));
        }
    };
    let endpoint = Endpoint { url: common.endpoint_url.clone(), region: common.region.clone() };
    let (app, counter) = crate::runtime::build_app(config, &endpoint).await;
    let opts =
        RunOptions { now: common.as_of.unwrap_or_else(Utc::now), dry_run: common.dry_run, publish: !common.no_publish };
    let report = match Box::pin(app.handle(event, &opts)).await {
        Ok(r) => r,
        Err(e @ crate::app::AppError::Event(_)) => return fail(2, &e.to_string()),
        Err(e) => return fail(1, &e.to_string()),
    };
    print!("{}", render(&report.findings, common.format));
    let calls = counter.snapshot();
    match &report.outcome {
        Outcome::Ignored(reason) => eprintln!("ignored: {reason}"),
        Outcome::UserGone(reason) => eprintln!("user gone: {reason}"),
        Outcome::Processed => eprintln!(
            "{}: {} finding(s), {} published, {} AWS call(s)",
            report.trigger,
            report.findings.len(),
            report.published,
            calls.total_calls()
        ),
    }
    match &report.failure {
        Some(f) => fail(1, f),
        None => ExitCode::SUCCESS,
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("iam-sentinel: error: {message}");
    ExitCode::from(code)
}
