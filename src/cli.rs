//! The `iam-sentinel` command line: the same app as the Lambda, on event files and the account.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::app::{Outcome, Report, RunOptions};
use crate::aws::Endpoint;
use crate::config::Config;
use crate::finding::Severity;
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
    /// Scan the whole account (as the daily schedule does) with bulk calls only.
    Scan {
        #[command(flatten)]
        common: Common,
        /// Exit with status 3 when a finding of this severity or worse exists (critical, high, medium, low, info).
        #[arg(long, value_parser = parse_severity)]
        fail_on: Option<Severity>,
        /// Benchmark baseline: read every user with per-user calls instead of the bulk reads.
        #[arg(long, hide = true)]
        per_user: bool,
        /// Print the AWS calls made, as JSON on stderr.
        #[arg(long)]
        stats: bool,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("{s:?} is not a severity: use critical, high, medium, low or info"))
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
    /// Never remediates: a hypothetical time implies --dry-run.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
}

impl Common {
    fn endpoint(&self) -> Endpoint {
        Endpoint { url: self.endpoint_url.clone(), region: self.region.clone() }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            now: self.as_of.unwrap_or_else(Utc::now),
            // Untagging on a hypothetical "now" would remove tags whose approvals are still valid.
            dry_run: self.dry_run || self.as_of.is_some(),
            publish: !self.no_publish,
            stop_by: None,
        }
    }
}

fn parse_as_of(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2027-01-01T00:00:00Z ({e})"))
}

/// Exit status: 0 success, 1 the run failed (findings may have been printed), 2 bad input or
/// configuration, 3 `--fail-on` threshold reached.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    match cli.command {
        Command::Handle { file, common } => Box::pin(handle(&file, &common)).await,
        Command::Scan { common, fail_on, per_user, stats } => Box::pin(scan(&common, fail_on, per_user, stats)).await,
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
    let (app, counter) = crate::runtime::build_app(config, &common.endpoint()).await;
    let report = match Box::pin(app.handle(event, &common.options())).await {
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

async fn scan(common: &Common, fail_on: Option<Severity>, per_user: bool, stats: bool) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(2, &e.to_string()),
    };
    let (app, counter) = crate::runtime::build_app(config, &common.endpoint()).await;
    let opts = common.options();
    let result =
        if per_user { Box::pin(app.scan_per_user(&opts)).await } else { Box::pin(app.scan(None, &opts)).await };
    let calls = counter.snapshot();
    if stats {
        eprintln!(
            "{}",
            serde_json::json!({ "aws_calls": calls.total_calls(), "by_action": calls.calls, "attempts": calls.attempts })
        );
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(1, &e.to_string()),
    };
    if common.format == Format::Table {
        print_scan_header(&report, opts.now);
    }
    print!("{}", render(&report.findings, common.format));
    eprintln!(
        "scan: {} finding(s), {} message(s) published, {} AWS call(s)",
        report.findings.len(),
        report.published,
        calls.total_calls()
    );
    if let Some(f) = &report.failure {
        return fail(1, f);
    }
    match fail_on {
        Some(threshold) if report.findings.iter().any(|f| f.severity >= threshold) => {
            eprintln!("iam-sentinel: findings of severity {threshold} or worse (--fail-on {threshold})");
            ExitCode::from(3)
        }
        _ => ExitCode::SUCCESS,
    }
}

fn print_scan_header(report: &Report, now: DateTime<Utc>) {
    let Some(scan) = &report.scan else { return };
    // The report's age is real time (the wall clock), even when --as-of moves "now".
    let wall = Utc::now();
    let age = scan.credential_report_generated_at.map_or_else(
        || "generation time unknown".to_owned(),
        |t| {
            let d = wall - t;
            let when = if d < chrono::Duration::zero() {
                format!("{} ahead of this machine's clock", age(-d))
            } else {
                format!("{} ago", age(d))
            };
            format!("generated {} ({when})", t.format("%Y-%m-%d %H:%M UTC"))
        },
    );
    println!("Account {} · {} users · credential report {age}", scan.account, scan.users_scanned);
    // GenerateCredentialReport replaces a report older than 4 hours, so AWS never serves an
    // older one; an endpoint that does (moto dates every report 2015-02-02) is not telling its age.
    if scan.credential_report_generated_at.is_some_and(|t| wall - t > chrono::Duration::hours(24)) {
        println!(
            "  (AWS regenerates credential reports older than 4 hours: this endpoint's date is not a real \
             generation time; local emulators such as moto date every report 2015-02-02)"
        );
    }
    if (now - wall).num_minutes().abs() >= 1 {
        println!(
            "Evaluated as of {} (--as-of): ages and expiries are counted to then",
            now.format("%Y-%m-%d %H:%M UTC")
        );
    }
    if !scan.users_not_in_report.is_empty() {
        println!(
            "Not yet in the credential report (tag checks only; key and MFA checks skipped): {}",
            scan.users_not_in_report.join(", ")
        );
    }
    if !scan.users_deleted_since_report.is_empty() {
        println!("Deleted since the report was generated (skipped): {}", scan.users_deleted_since_report.join(", "));
    }
    println!();
}

/// `42 min`, `5 h`, `12 days`.
fn age(d: chrono::Duration) -> String {
    match d.num_minutes() {
        m if m < 120 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        _ => format!("{} days", d.num_days()),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("iam-sentinel: error: {message}");
    ExitCode::from(code)
}
