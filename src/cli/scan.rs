//! `scan` and `scan --organization`: the account (or every account) read, judged and shown.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use crate::app::Report;
use crate::domain::timing::Phase;
use crate::finding::Severity;
use crate::output::{Format, render};

use super::{Common, fail, note, run_failed};

pub(super) async fn account(common: &Common, fail_on: Option<Severity>, per_user: bool, stats: bool) -> ExitCode {
    let origin = std::time::Instant::now();
    let (app, counter, endpoint) = match common.prepare().await {
        Ok(prepared) => prepared,
        Err(f) => return fail(f.code, &f.message),
    };
    let start_phase = Phase::since("start", origin);
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
        Err(e) => return run_failed(&e, &endpoint),
    };
    if common.format == Format::Table {
        print_scan_header(&report, opts.now);
    }
    if let Some(line) = memory_line(&report, app.state.is_some(), opts.publish) {
        if common.format == Format::Table {
            println!("{line}\n");
        } else {
            // Other formats keep stdout to their document: the memory line goes with the notes.
            note(&line);
        }
    }
    let rendering = std::time::Instant::now();
    let rendered = render(&report.findings, report.scan.as_ref(), common.format);
    let render_phase = Phase::since("render", rendering);
    print!("{rendered}");
    if stats {
        let phases: Vec<_> = std::iter::once(&start_phase)
            .chain(&report.phases)
            .chain(std::iter::once(&render_phase))
            .map(|p| serde_json::json!({ "phase": p.name, "start_ms": p.start_ms(origin), "ms": p.ms() }))
            .collect();
        eprintln!("{}", serde_json::json!({ "phases": phases, "total_ms": origin.elapsed().as_secs_f64() * 1000.0 }));
    }
    note(&format!(
        "scan: {} finding(s), {} message(s) published, {} AWS call(s)",
        report.findings.len(),
        report.published,
        calls.total_calls()
    ));
    if report.imported > 0 || !report.resolved.is_empty() {
        let who = |f: &crate::finding::Finding| f.user.clone().unwrap_or_else(|| f.principal.clone());
        let resolved: Vec<String> = report.resolved.iter().map(|f| format!("{} {}", f.check, who(f))).collect();
        eprintln!(
            "security hub: {} finding(s) imported; {} resolved{}{}",
            report.imported,
            resolved.len(),
            if resolved.is_empty() { "" } else { ": " },
            resolved.join(", ")
        );
    }
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

/// `scan --organization`: every account, the organization-level checks, the digest.
pub(super) async fn organization(
    common: &Common,
    fail_on: Option<Severity>,
    max_concurrency: usize,
    stats: bool,
) -> ExitCode {
    // The flag is organization mode: ORGANIZATION_MODE need not say it again.
    let (deployment, endpoint) = match common.deployment(true).await {
        Ok(prepared) => prepared,
        Err(f) => return fail(f.code, &f.message),
    };
    let opts = common.options();
    let keep = common.format == Format::Json || fail_on.is_some();
    let result = Box::pin(crate::org::run::scan_organization(&deployment, &opts, max_concurrency, keep)).await;
    let calls = deployment.counter.snapshot();
    if stats {
        eprintln!(
            "{}",
            serde_json::json!({ "aws_calls": calls.total_calls(), "by_action": calls.calls, "attempts": calls.attempts })
        );
    }
    let scan = match result {
        Ok(scan) => scan,
        Err(e) => {
            let message = e.to_string();
            let hint = if message.contains("no answer") { endpoint.url.as_deref().unwrap_or("AWS") } else { "" };
            return fail(1, &if hint.is_empty() { message } else { format!("{message} (endpoint {hint})") });
        }
    };
    match common.format {
        Format::Json => print!("{}", render(&scan.findings, None, Format::Json)),
        _ => print!("{}", crate::org::digest::text(&scan.summary, &scan.results)),
    }
    note(&format!(
        "scan --organization: {} account(s) scanned, {} failed, {} finding(s), {} digest message(s) published, {} AWS call(s)",
        scan.summary.accounts_scanned,
        scan.summary.accounts_failed,
        scan.summary.findings,
        scan.digest_published,
        calls.total_calls()
    ));
    if let Some(f) = &scan.summary.failure {
        return fail(1, f);
    }
    match fail_on {
        Some(threshold) if scan.findings.iter().any(|f| f.severity >= threshold) => {
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

/// What the state table decided: what changed since the previous scan, or why nothing was
/// remembered (no STATE_TABLE, or a run that publishes nothing).
fn memory_line(report: &Report, table: bool, publish: bool) -> Option<String> {
    let scan = report.scan.as_ref()?;
    let line = match (&scan.changes, table, publish) {
        (_, false, _) => {
            "Memory: off (STATE_TABLE not set): every high finding is announced again on every scan".to_owned()
        }
        (_, true, false) => "Memory: not consulted (--no-publish): nothing is announced, nothing remembered".to_owned(),
        (None, true, true) => {
            "Memory: the state table could not be read: announced as if stateless (see the error)".to_owned()
        }
        (Some(c), true, true) if !c.previous_scan => {
            format!("Memory: first scan with the state table: {} finding(s) are new", c.new)
        }
        (Some(c), true, true) => {
            let oldest = match (c.oldest_open_since, c.oldest_open_check) {
                (Some(t), Some(check)) => format!("; oldest open since {} ({check})", t.format("%Y-%m-%d")),
                _ => String::new(),
            };
            format!(
                "Since the previous scan: {} new, {} resolved, {} still open{oldest}",
                c.new, c.resolved, c.still_open
            )
        }
    };
    Some(line)
}

/// `42 min`, `5 h`, `12 days`.
pub(super) fn age(d: chrono::Duration) -> String {
    match d.num_minutes() {
        m if m < 120 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        _ => format!("{} days", d.num_days()),
    }
}
