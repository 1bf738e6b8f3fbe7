//! What goes on the topic: one message per finding, and the scan's digest split into
//! parts under SNS's 256 KB limit. Every message carries `severity`, `check`, `account`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::finding::{Finding, Severity};

/// SNS's message limit is 262,144 bytes including attributes and subject; keep a margin.
pub const MAX_BODY_BYTES: usize = 250_000;

/// The `check` attribute of digest messages.
pub const DIGEST_CHECK: &str = "digest";

/// One SNS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Under 100 printable ASCII characters.
    pub subject: String,
    /// JSON.
    pub body: String,
    /// `severity` attribute.
    pub severity: Severity,
    /// `check` attribute (a check id, or `digest`).
    pub check: String,
    /// `account` attribute.
    pub account: String,
    /// `finding_id` attribute: the finding's stable id (digest parts: account, day, part).
    pub id: String,
}

fn clean_subject(mut s: String) -> String {
    // Subjects must be printable ASCII without line breaks, under 100 characters.
    s.retain(|c| c.is_ascii() && !c.is_ascii_control());
    s.truncate(99);
    s
}

impl Message {
    /// The message for one finding: `[HIGH] exception-unapproved: alice`.
    #[must_use]
    pub fn finding(f: &Finding) -> Message {
        let who = f.user.as_deref().unwrap_or(&f.principal);
        Message {
            subject: clean_subject(format!("[{}] {}: {who}", f.severity.as_str().to_ascii_uppercase(), f.check)),
            body: serde_json::to_string_pretty(f).unwrap_or_default(),
            severity: f.severity,
            check: f.check.as_str().to_owned(),
            account: f.account.clone(),
            id: f.id.clone(),
        }
    }
}

/// The facts of a scan that head every digest part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanSummary {
    /// Account scanned.
    pub account: String,
    /// Region the scan ran in.
    pub region: String,
    /// "Now" of the scan.
    pub observed_at: DateTime<Utc>,
    /// When AWS generated the credential report (it can be up to 4 hours old).
    pub credential_report_generated_at: Option<DateTime<Utc>>,
    /// Users checked.
    pub users_scanned: usize,
    /// Users in GetAccountAuthorizationDetails but not yet in the credential report
    /// (created after it was generated): tag checks ran, key and MFA checks did not.
    pub users_not_in_report: Vec<String>,
    /// Users in the report that no longer exist (deleted since): skipped.
    pub users_deleted_since_report: Vec<String>,
}

#[derive(Serialize)]
struct DigestHeader<'a> {
    #[serde(flatten)]
    summary: &'a ScanSummary,
    findings_total: usize,
    counts_by_severity: BTreeMap<&'static str, usize>,
    counts_by_check: BTreeMap<&'static str, usize>,
    part: usize,
    parts: usize,
}

#[derive(Serialize)]
struct DigestBody<'a> {
    digest: DigestHeader<'a>,
    findings: &'a [Finding],
}

/// The digest: counts by severity and check, then every finding, split into numbered
/// parts so that no body exceeds `max_bytes`.
#[must_use]
pub fn digest(summary: &ScanSummary, findings: &[Finding], max_bytes: usize) -> Vec<Message> {
    let mut by_severity = BTreeMap::new();
    let mut by_check = BTreeMap::new();
    for f in findings {
        *by_severity.entry(f.severity.as_str()).or_insert(0) += 1;
        *by_check.entry(f.check.as_str()).or_insert(0) += 1;
    }
    let header = |part, parts| DigestHeader {
        summary,
        findings_total: findings.len(),
        counts_by_severity: by_severity.clone(),
        counts_by_check: by_check.clone(),
        part,
        parts,
    };
    // The header with the largest part numbers bounds what every part spends on it.
    let header_bytes = serde_json::to_string(&header(usize::MAX, usize::MAX)).map_or(0, |s| s.len()) + 32;
    let mut chunks: Vec<std::ops::Range<usize>> = Vec::new();
    let (mut start, mut size) = (0, header_bytes);
    for (i, f) in findings.iter().enumerate() {
        let len = serde_json::to_string(f).map_or(0, |s| s.len()) + 1;
        if i > start && size + len > max_bytes {
            chunks.push(start..i);
            (start, size) = (i, header_bytes);
        }
        size += len;
    }
    chunks.push(start..findings.len());
    let parts = chunks.len();
    let worst = findings.iter().map(|f| f.severity).max().unwrap_or(Severity::Info);
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, range)| {
            let body = DigestBody { digest: header(i + 1, parts), findings: &findings[range] };
            let part = if parts > 1 { format!(" (part {}/{parts})", i + 1) } else { String::new() };
            Message {
                subject: clean_subject(format!(
                    "[iam-sentinel] daily scan of {}: {}{part}",
                    summary.account,
                    crate::output::summary(findings)
                )),
                body: serde_json::to_string(&body).unwrap_or_default(),
                severity: worst,
                check: DIGEST_CHECK.to_owned(),
                account: summary.account.clone(),
                id: crate::finding::stable_id(&[
                    &summary.account,
                    DIGEST_CHECK,
                    &summary.observed_at.format("%Y-%m-%d").to_string(),
                    &format!("{}/{parts}", i + 1),
                ]),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{CheckId, Scope};

    fn findings(n: usize) -> Vec<Finding> {
        let scope = Scope {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            trigger: "schedule".into(),
            now: Utc::now(),
        };
        (0..n)
            .map(|i| {
                let mut f = scope.finding(
                    CheckId::AccessKeyStale,
                    &format!("arn:aws:iam::123456789012:user/u{i}"),
                    "x".repeat(200),
                );
                f.user = Some(format!("u{i}"));
                f
            })
            .collect()
    }

    fn summary() -> ScanSummary {
        ScanSummary {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            observed_at: Utc::now(),
            credential_report_generated_at: None,
            users_scanned: 5,
            users_not_in_report: vec![],
            users_deleted_since_report: vec![],
        }
    }

    #[test]
    fn a_large_digest_splits_into_numbered_parts_under_the_limit() {
        let all = findings(3000);
        let msgs = digest(&summary(), &all, MAX_BODY_BYTES);
        assert!(msgs.len() > 1);
        let mut seen = 0;
        for (i, m) in msgs.iter().enumerate() {
            assert!(m.body.len() <= MAX_BODY_BYTES, "part {i}: {}", m.body.len());
            assert!(
                m.subject.len() < 100 && m.subject.ends_with(&format!("(part {}/{})", i + 1, msgs.len())),
                "{}",
                m.subject
            );
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            assert_eq!(v["digest"]["findings_total"], 3000);
            assert_eq!(v["digest"]["counts_by_check"]["access-key-stale"], 3000);
            seen += v["findings"].as_array().unwrap().len();
        }
        assert_eq!(seen, 3000, "every finding is in exactly one part");
    }

    #[test]
    fn an_empty_scan_still_sends_one_digest() {
        let msgs = digest(&summary(), &[], MAX_BODY_BYTES);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].severity, Severity::Info);
        assert!(msgs[0].subject.ends_with("no findings"));
    }
}
