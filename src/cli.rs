//! The `iam-sentinel` command line: the same app as the Lambda, on event files and the account.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::app::{AppError, Outcome, RunOptions};
use crate::aws::{CallCounter, Endpoint};
use crate::config::Config;
use crate::finding::Severity;
use crate::output::{Format, render};
use crate::runtime::{AwsApp, Deployment};

mod journal;
mod scan;

/// Exit statuses and environment, shown by `--help`.
const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  the run failed: an AWS call, remediation or publishing failed (findings may have been printed)
  2  bad input or configuration: a malformed event file, a bad or missing variable, no region,
     no credentials, an invalid --endpoint-url, FINDINGS_TOPIC_ARN unset without --no-publish
  3  scan --fail-on: a finding of that severity or worse exists

AWS: the usual SDK variables and files (AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, ...);
AWS_ENDPOINT_URL or --endpoint-url points every call at a local emulator.";

/// Keeps IAM users compliant: judges IAM changes against the approvals registry,
/// checks keys and MFA, publishes findings to SNS, removes unapproved exception tags.
#[derive(Debug, Parser)]
#[command(name = "iam-sentinel", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Handle one EventBridge event from a file, exactly as the Lambda would.
    #[command(after_help = variables_help())]
    Handle {
        /// The event JSON (see events/).
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Scan the whole account (as the daily schedule does) with bulk calls only.
    #[command(after_help = variables_help())]
    Scan {
        #[command(flatten)]
        common: Common,
        /// Exit with status 3 when a finding of this severity or worse exists (critical, high, medium, low, info).
        #[arg(long, value_parser = parse_severity)]
        fail_on: Option<Severity>,
        /// Benchmark baseline: read every user with per-user calls instead of the bulk reads.
        #[arg(long, hide = true)]
        per_user: bool,
        /// Print the AWS calls made and where the time went (phases), as JSON on stderr.
        #[arg(long)]
        stats: bool,
        /// Scan every active account of the organization (organization mode, whatever
        /// ORGANIZATION_MODE says): each through its member role, then the organization-level
        /// checks and the organization digest.
        #[arg(long, conflicts_with = "per_user")]
        organization: bool,
        /// With --organization: at most this many accounts are scanned at once.
        #[arg(long, value_name = "N", default_value_t = 20, requires = "organization",
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        max_concurrency: u16,
    },
    /// Reverse the action the journal (STATE_TABLE) holds for a finding (reactivate a key,
    /// re-tag an approved user), only if the current state is still what the action left.
    /// Runs with your credentials; the undo is journaled too.
    #[command(after_help = AFTER_HELP)]
    Undo {
        /// The finding's `id` (in every message and in `history`).
        finding_id: String,
        /// Optional: a file holding the finding (the SNS message, or `--format json` output). It
        /// is only a pointer: every field of its record must match the journal, or nothing is done.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// The account the finding is about (default: the account of your credentials).
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
        /// Check and say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// AWS endpoint (for a local emulator); AWS_ENDPOINT_URL works too.
        #[arg(long)]
        endpoint_url: Option<String>,
        /// AWS region.
        #[arg(long)]
        region: Option<String>,
    },
    /// List what the function did to a user, and every undo, oldest first (from the journal
    /// in STATE_TABLE).
    #[command(after_help = AFTER_HELP)]
    History {
        /// The IAM user name.
        user: String,
        /// The account (default: the account of your credentials).
        #[arg(long, value_name = "ACCOUNT_ID")]
        account: Option<String>,
        /// `table` (default) or `json` (one entry per line).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// AWS endpoint (for a local emulator); AWS_ENDPOINT_URL works too.
        #[arg(long)]
        endpoint_url: Option<String>,
        /// AWS region.
        #[arg(long)]
        region: Option<String>,
    },
}

/// The environment variables both commands read, then the exit statuses.
fn variables_help() -> String {
    let vars = crate::config::VARIABLES.iter().fold(String::new(), |mut out, (name, what)| {
        let _ = writeln!(out, "  {name:<21} {what}");
        out
    });
    format!("Environment:\n{vars}\n{AFTER_HELP}")
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
    /// Longest time one AWS call may take, retries included, before the command gives up
    /// saying which endpoint did not answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=900))]
    call_timeout: u64,
    /// Evaluate as of this time (RFC 3339) instead of now, e.g. to see what will be due.
    /// Never remediates: a hypothetical time implies --dry-run.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<DateTime<Utc>>,
}

impl Common {
    fn options(&self) -> RunOptions {
        RunOptions {
            now: self.as_of.unwrap_or_else(Utc::now),
            // Untagging on a hypothetical "now" would remove tags whose approvals are still valid.
            dry_run: self.dry_run || self.as_of.is_some(),
            publish: !self.no_publish,
            stop_by: None,
            already_sent: std::sync::Arc::default(),
        }
    }

    /// Configuration, endpoint, region and credentials, all checked before any call is made.
    async fn prepare(&self) -> Result<(AwsApp, CallCounter, Endpoint), Failed> {
        let (config, sdk, endpoint) = self.sdk(false).await?;
        let (app, counter) = crate::runtime::build_app_with(config, &sdk);
        Ok((app, counter, endpoint))
    }

    /// As [`Common::prepare`], for the whole deployment (organization mode reaches members);
    /// `organization` turns organization mode on whatever `ORGANIZATION_MODE` says.
    async fn deployment(&self, organization: bool) -> Result<(Deployment, Endpoint), Failed> {
        let (config, sdk, endpoint) = self.sdk(organization).await?;
        let deployment = Deployment::build(config, &sdk)
            .await
            .map_err(|e| Failed { code: 1, message: format!("organization mode: {e}") })?;
        Ok((deployment, endpoint))
    }

    /// The configuration (organization mode forced on by `organization`, as `scan
    /// --organization` asks), the SDK's and the endpoint.
    async fn sdk(&self, organization: bool) -> Result<(Config, aws_config::SdkConfig, Endpoint), Failed> {
        let config = if organization {
            Config::from_lookup(|name| {
                if name == "ORGANIZATION_MODE" { Some("true".to_owned()) } else { std::env::var(name).ok() }
            })
        } else {
            Config::from_env()
        }
        .map_err(|e| Failed::config(e.to_string()))?;
        if !self.no_publish && config.findings_topic_arn.is_none() {
            return Err(Failed::config(AppError::NoTopic.to_string()));
        }
        let url =
            self.endpoint_url.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok().filter(|u| !u.is_empty()));
        if let Some(url) = &url {
            crate::aws::validate_endpoint_url(url).map_err(Failed::config)?;
        }
        let call_timeout = std::time::Duration::from_secs(self.call_timeout);
        let endpoint = Endpoint { url, region: self.region.clone(), call_timeout: Some(call_timeout) };
        let sdk = crate::aws::load_sdk_config(&endpoint).await;
        if sdk.region().is_none() {
            return Err(Failed::config(
                "no AWS region: set AWS_REGION (IAM events arrive in us-east-1) or pass --region".into(),
            ));
        }
        check_credentials(&sdk).await.map_err(Failed::config)?;
        Ok((config, sdk, endpoint))
    }
}

/// Resolves credentials once, bounded, so a missing profile is one clear line, not a dump.
async fn check_credentials(sdk: &aws_config::SdkConfig) -> Result<(), String> {
    use aws_sdk_iam::config::ProvideCredentials;
    let missing = "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
    let provider = sdk.credentials_provider().ok_or_else(|| missing.to_owned())?;
    match tokio::time::timeout(std::time::Duration::from_secs(10), provider.provide_credentials()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err(missing.to_owned()),
        Err(_) => Err(format!("{missing} (looking them up took more than 10 s)")),
    }
}

/// Why the command stops, and its exit status.
struct Failed {
    code: u8,
    message: String,
}

impl Failed {
    fn config(message: String) -> Failed {
        Failed { code: 2, message }
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
        Command::Scan { common, fail_on, organization: true, max_concurrency, stats, .. } => {
            Box::pin(scan::organization(&common, fail_on, usize::from(max_concurrency), stats)).await
        }
        Command::Scan { common, fail_on, per_user, stats, .. } => {
            Box::pin(scan::account(&common, fail_on, per_user, stats)).await
        }
        Command::Undo { finding_id, from, account, dry_run, endpoint_url, region } => {
            let common = Common {
                format: Format::Table,
                dry_run,
                no_publish: true,
                endpoint_url,
                region,
                call_timeout: 30,
                as_of: None,
            };
            Box::pin(journal::undo(&finding_id, from.as_deref(), account, &common)).await
        }
        Command::History { user, account, format, endpoint_url, region } => {
            let common =
                Common { format, dry_run: true, no_publish: true, endpoint_url, region, call_timeout: 30, as_of: None };
            Box::pin(journal::history(&user, account, &common)).await
        }
    }
}

/// An error of a run that had started; says which endpoint did not answer, when one did not.
fn run_failed(e: &AppError, endpoint: &Endpoint) -> ExitCode {
    let code = match e {
        AppError::Event(_) | AppError::NoTopic => 2,
        _ => 1,
    };
    let mut message = e.to_string();
    if message.contains("no answer") {
        let target = endpoint.url.as_deref().unwrap_or("AWS");
        let secs = endpoint.call_timeout.unwrap_or_default().as_secs();
        let _ = write!(message, " (no answer from {target} within {secs} s: is it up? see --call-timeout)");
    }
    fail(code, &message)
}

async fn handle(file: &std::path::Path, common: &Common) -> ExitCode {
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
    let (deployment, endpoint) = match common.deployment(false).await {
        Ok(prepared) => prepared,
        Err(f) => return fail(f.code, &f.message),
    };
    match crate::org::run::request(&event) {
        Err(e) => return fail(2, &format!("malformed event: {e}")),
        Ok(Some(request)) => {
            // A step of the organization scan's state machine: print what the function returns.
            return match Box::pin(crate::lambda::org_step(&deployment, request, &common.options())).await {
                Ok(out) => {
                    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(if e.error_type == "MalformedEvent" { 2 } else { 1 }, &e.message),
            };
        }
        Ok(None) => {}
    }
    let counter = deployment.counter.clone();
    let account = event.get("account").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let app = match deployment.app_for(&account, None, false, common.options().now).await {
        Ok(app) => app,
        Err(e) => return fail(1, &format!("account {account}: {e}")),
    };
    let report = match Box::pin(app.handle(event, &common.options())).await {
        Ok(r) => r,
        Err(e) => return run_failed(&e, &endpoint),
    };
    print!("{}", render(&report.findings, report.scan.as_ref(), common.format));
    let calls = counter.snapshot();
    match &report.outcome {
        Outcome::Ignored(reason) => note(&format!("ignored: {reason}")),
        Outcome::UserGone(reason) => note(&format!("user gone: {reason}")),
        Outcome::Processed => note(&format!(
            "{}: {} finding(s), {} published, {} AWS call(s)",
            report.trigger,
            report.findings.len(),
            report.published,
            calls.total_calls()
        )),
    }
    match &report.failure {
        Some(f) => fail(1, f),
        None => ExitCode::SUCCESS,
    }
}

/// Writes `line` to stderr in one write, after what is printed on stdout: `eprintln!` writes
/// an unbuffered stderr piece by piece, so a terminal showing both streams (stdout through a
/// pipe) could split the line around rows of the table.
fn note(line: &str) {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().lock().write_all(format!("{line}\n").as_bytes());
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("iam-sentinel: error: {message}");
    ExitCode::from(code)
}
