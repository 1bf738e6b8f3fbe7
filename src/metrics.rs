//! Posture as CloudWatch metrics: one Embedded Metric Format (EMF) document per invocation,
//! printed as one stdout line, from which CloudWatch Logs extracts the metrics (no
//! `PutMetricData` call, no extra permission).
//!
//! Written here rather than with `metrics_cloudwatch_embedded`: that crate is a recorder for
//! the `metrics` facade (a global recorder, counters accumulated between flushes) and writes
//! one document per label set, while an invocation's numbers are all known at once, from its
//! [`Report`], and belong on one line. The format is small and documented: `_aws.Timestamp`,
//! `_aws.CloudWatchMetrics[{Namespace, Dimensions, Metrics[{Name, Unit}]}]`, and each metric
//! and dimension a top-level member.
//!
//! An EMF document carries one value per member, so a `Check` or `Severity` *dimension*
//! would need one document per value. To keep one line, the check and severity are part
//! of the metric name (`Findings.check.access-key-stale`, `Findings.severity.high`) under
//! the single `Account` dimension: the same number of custom metrics, so the same cost.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::app::{Outcome, Report};
use crate::finding::{CheckId, RemediationStatus, Severity};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "IamSentinel";
/// The one dimension: the account the numbers are about.
pub const ACCOUNT_DIMENSION: &str = "Account";

/// Scan: every finding of the scan (the account's posture).
pub const FINDINGS: &str = "Findings";
/// Scan: users checked.
pub const USERS_SCANNED: &str = "UsersScanned";
/// Scan: users carrying the exception tag under a valid approval (the exceptions in force).
pub const EXCEPTIONS_ACTIVE: &str = "ExceptionsActive";
/// Scan: age of the credential report the scan judged, in seconds (AWS serves one up to 4 h old).
pub const CREDENTIAL_REPORT_AGE: &str = "CredentialReportAge";
/// Scan: how long the scan took, in milliseconds.
pub const SCAN_DURATION: &str = "ScanDuration";
/// Event: findings raised by one IAM change.
pub const EVENT_FINDINGS: &str = "EventFindings";
/// Every invocation: exception tags removed.
pub const REMEDIATIONS_APPLIED: &str = "RemediationsApplied";
/// Every invocation: untag calls that failed.
pub const REMEDIATIONS_FAILED: &str = "RemediationsFailed";

/// Every invocation that failed before it had a report (malformed event, an AWS read that
/// failed, the deadline): 1, with the invocation's `error_type` beside it.
pub const INVOCATIONS_FAILED: &str = "InvocationsFailed";

/// `Findings.severity.high`: the scan's findings of one severity.
#[must_use]
pub fn findings_by_severity(severity: Severity) -> String {
    format!("{FINDINGS}.severity.{severity}")
}

/// `Findings.check.access-key-stale`: the scan's findings of one check.
#[must_use]
pub fn findings_by_check(check: CheckId) -> String {
    format!("{FINDINGS}.check.{check}")
}

/// `EventFindings.severity.critical`: findings of one severity raised by IAM changes.
#[must_use]
pub fn event_findings_by_severity(severity: Severity) -> String {
    format!("{EVENT_FINDINGS}.severity.{severity}")
}

/// The EMF document for one invocation. A scan reports the account's posture (findings by
/// severity and by check, zeros included so a graph falls to zero when a problem is fixed,
/// users scanned, report age, duration); an event reports what that change raised, kept
/// apart so that a day's sum never mixes the two. Both report remediations.
///
/// `event_account` is the account the event named, for invocations with neither scan nor
/// findings; `now` is the invocation's time; `elapsed` how long it ran.
#[must_use]
pub fn document(report: &Report, event_account: Option<&str>, now: DateTime<Utc>, elapsed: Duration) -> Value {
    let account = report
        .scan
        .as_ref()
        .map(|s| s.account.as_str())
        .or_else(|| report.findings.first().map(|f| f.account.as_str()))
        .or(event_account)
        .unwrap_or("unknown");
    let mut doc = Document::default();
    let count = |severity: Option<Severity>, check: Option<CheckId>| {
        report
            .findings
            .iter()
            .filter(|f| severity.is_none_or(|s| f.severity == s) && check.is_none_or(|c| f.check == c))
            .count()
    };
    if let Some(scan) = &report.scan {
        doc.metric(FINDINGS, "Count", count(None, None));
        for severity in Severity::ALL_DESCENDING {
            doc.metric(&findings_by_severity(severity), "Count", count(Some(severity), None));
        }
        for &check in CheckId::ALL {
            doc.metric(&findings_by_check(check), "Count", count(None, Some(check)));
        }
        doc.metric(USERS_SCANNED, "Count", scan.users_scanned);
        if let Some(active) = scan.exceptions_active {
            doc.metric(EXCEPTIONS_ACTIVE, "Count", active);
        }
        if let Some(generated) = scan.credential_report_generated_at {
            doc.metric(CREDENTIAL_REPORT_AGE, "Seconds", (now - generated).num_seconds().max(0));
        }
        doc.metric(SCAN_DURATION, "Milliseconds", u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    } else {
        doc.metric(EVENT_FINDINGS, "Count", count(None, None));
        for severity in Severity::ALL_DESCENDING {
            doc.metric(&event_findings_by_severity(severity), "Count", count(Some(severity), None));
        }
    }
    let remediated =
        |status| report.findings.iter().filter(|f| f.remediation.as_ref().is_some_and(|r| r.status == status)).count();
    doc.metric(REMEDIATIONS_APPLIED, "Count", remediated(RemediationStatus::Applied));
    doc.metric(REMEDIATIONS_FAILED, "Count", remediated(RemediationStatus::Failed));

    let outcome = match &report.outcome {
        Outcome::Processed => "processed",
        Outcome::Ignored(_) => "ignored",
        Outcome::UserGone(_) => "user-gone",
    };
    finish(doc.members, &doc.definitions, account, &report.trigger, outcome, now)
}

/// The EMF document of an invocation that failed before it had a report: `InvocationsFailed`
/// = 1 under the event's account (`unknown` when the event names none), with its trigger,
/// `outcome: failed` and the `error_type` the invocation fails with.
#[must_use]
pub fn failure_document(
    trigger: &str,
    event_account: Option<&str>,
    error_type: &str,
    now: DateTime<Utc>,
    elapsed: Duration,
) -> Value {
    let mut doc = Document::default();
    doc.metric(INVOCATIONS_FAILED, "Count", 1);
    let mut root = doc.members;
    root.insert("error_type".into(), Value::String(error_type.to_owned()));
    root.insert("duration_ms".into(), Value::from(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)));
    finish(root, &doc.definitions, event_account.unwrap_or("unknown"), trigger, "failed", now)
}

/// Adds the dimension, the plain properties (trigger, outcome) and the `_aws` metadata.
fn finish(
    mut root: Map<String, Value>,
    definitions: &[Value],
    account: &str,
    trigger: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> Value {
    root.insert(ACCOUNT_DIMENSION.into(), Value::String(account.to_owned()));
    // Plain properties: searchable in Logs Insights, not metrics, no cost.
    root.insert("trigger".into(), Value::String(trigger.to_owned()));
    root.insert("outcome".into(), Value::String(outcome.to_owned()));
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[ACCOUNT_DIMENSION]],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root)
}

/// Every metric [`document`] can emit, with its unit: what the dashboard may plot.
#[must_use]
pub fn catalogue() -> Vec<(String, &'static str)> {
    let mut all = vec![(FINDINGS.to_owned(), "Count")];
    all.extend(Severity::ALL_DESCENDING.map(|s| (findings_by_severity(s), "Count")));
    all.extend(CheckId::ALL.iter().map(|&c| (findings_by_check(c), "Count")));
    all.extend([
        (USERS_SCANNED.to_owned(), "Count"),
        (EXCEPTIONS_ACTIVE.to_owned(), "Count"),
        (CREDENTIAL_REPORT_AGE.to_owned(), "Seconds"),
        (SCAN_DURATION.to_owned(), "Milliseconds"),
        (EVENT_FINDINGS.to_owned(), "Count"),
    ]);
    all.extend(Severity::ALL_DESCENDING.map(|s| (event_findings_by_severity(s), "Count")));
    all.extend([
        (REMEDIATIONS_APPLIED.to_owned(), "Count"),
        (REMEDIATIONS_FAILED.to_owned(), "Count"),
        (INVOCATIONS_FAILED.to_owned(), "Count"),
    ]);
    all
}

#[derive(Default)]
struct Document {
    members: Map<String, Value>,
    definitions: Vec<Value>,
}

impl Document {
    fn metric(&mut self, name: &str, unit: &str, value: impl Into<serde_json::Number>) {
        self.definitions.push(json!({ "Name": name, "Unit": unit }));
        self.members.insert(name.to_owned(), Value::Number(value.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_fits_one_document_and_names_each_metric_once() {
        let names: Vec<String> = catalogue().into_iter().map(|(name, _)| name).collect();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        // EMF: at most 100 metrics per directive; a scan emits every scan metric.
        assert!(names.len() <= 100, "{} metrics", names.len());
        assert!(names.iter().all(|n| !n.is_empty() && n.len() <= 255 && n.is_ascii()));
    }
}
