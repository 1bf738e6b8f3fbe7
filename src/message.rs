//! What goes on the topic: one message per finding, and the scan's digest split into
//! parts under SNS's 256 KB limit. Every message carries `severity`, `check`, `account`.
//!
//! A message is published with `MessageStructure=json`: one document with a rendering per
//! SNS protocol. `default` is the JSON finding (or digest part), which SNS gives every
//! protocol without a key of its own — `sqs`, `lambda`, `firehose`, `http`, `email-json` —
//! so machines keep their contract without the JSON being sent several times over; `email`
//! is plain text ([`crate::render::email`]); `https` is the Amazon Q Developer custom
//! notification ([`crate::render::chat`]), since Amazon Q Developer subscribes over HTTPS.

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::domain::message::{ActiveException, DIGEST_CHECK, Message, ScanSummary};
use crate::finding::{Finding, Severity};
use crate::render::{chat, email};

/// SNS's message limit is 262,144 bytes including attributes and subject; the whole
/// structured message (every rendering, JSON-escaped) stays under this, leaving a margin.
pub const MAX_BODY_BYTES: usize = 250_000;

/// The `MessageStructure=json` document: one key per protocol that gets its own rendering.
#[derive(Serialize)]
struct Structured<'a> {
    default: &'a str,
    email: &'a str,
    https: &'a str,
}

/// The length of `s` once written as a JSON string, quotes excluded (serde_json's escapes).
fn escaped_len(s: &str) -> usize {
    s.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if u32::from(c) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

impl Message {
    /// The message for one finding, open or resolved: `[HIGH] exception-unapproved: alice`.
    #[must_use]
    pub fn finding(f: &Finding) -> Message {
        Message {
            subject: email::subject(f),
            body: serde_json::to_string_pretty(f).unwrap_or_default(),
            email: email::finding(f),
            chat: chat::finding(f).to_json(),
            severity: f.severity,
            check: f.check.as_str().to_owned(),
            account: f.account.clone(),
            id: f.id.clone(),
        }
    }

    /// The `Message` SNS gets with `MessageStructure=json`.
    #[must_use]
    pub fn structured(&self) -> String {
        serde_json::to_string(&Structured { default: &self.body, email: &self.email, https: &self.chat })
            .unwrap_or_default()
    }

    /// `structured().len()`, without building it: what counts against SNS's limits.
    #[must_use]
    pub fn structured_len(&self) -> usize {
        // {"default":"…","email":"…","https":"…"}
        const FRAME: usize = r#"{"default":"","email":"","https":""}"#.len();
        FRAME + escaped_len(&self.body) + escaped_len(&self.email) + escaped_len(&self.chat)
    }
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
/// parts so that no structured message (all renderings together) exceeds `max_bytes`.
#[must_use]
pub fn digest(summary: &ScanSummary, findings: &[Finding], max_bytes: usize) -> Vec<Message> {
    let columns = email::Columns::of(findings);
    // What each finding adds to a part: its JSON and its e-mail rows, escaped. The chat
    // rendering lists only what fits its 8,000 characters, so it counts in the header.
    let cost: Vec<usize> = findings
        .iter()
        .map(|f| escaped_len(&serde_json::to_string(f).unwrap_or_default()) + escaped_len(&columns.row(f)) + 2)
        .collect();
    let header = render(summary, findings, std::slice::from_ref(&(0..0)), columns)
        .first()
        .map_or(0, Message::structured_len)
        // Part numbers, digits of counts, and the chat's list of findings (8,000 characters,
        // escaped twice: into the chat document, then into the structured message).
        + 256
        + 2 * chat::DESCRIPTION_MAX;
    let mut budget = max_bytes;
    loop {
        let parts = render(summary, findings, &split(&cost, budget.saturating_sub(header)), columns);
        let largest = parts.iter().map(Message::structured_len).max().unwrap_or(0);
        // The estimate is close but not exact (multi-byte text, escapes): measure, and split
        // finer by the excess until every part fits (a single finding larger than the limit
        // cannot be split; SNS then rejects its part, which fails the invocation loudly).
        if largest <= max_bytes || budget <= header {
            return parts;
        }
        budget = budget.saturating_sub(largest - max_bytes + 1024);
    }
}

/// Consecutive ranges whose costs add up to at most `budget` (at least one item each).
pub(crate) fn split(cost: &[usize], budget: usize) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, c) in cost.iter().enumerate() {
        if i > start && size + c > budget {
            chunks.push(start..i);
            (start, size) = (i, 0);
        }
        size += c;
    }
    chunks.push(start..cost.len());
    chunks
}

fn render(
    summary: &ScanSummary,
    findings: &[Finding],
    chunks: &[std::ops::Range<usize>],
    columns: email::Columns,
) -> Vec<Message> {
    let mut by_severity = BTreeMap::new();
    let mut by_check = BTreeMap::new();
    for f in findings {
        *by_severity.entry(f.severity.as_str()).or_insert(0) += 1;
        *by_check.entry(f.check.as_str()).or_insert(0) += 1;
    }
    let parts = chunks.len();
    let worst = findings.iter().map(|f| f.severity).max().unwrap_or(Severity::Info);
    chunks
        .iter()
        .enumerate()
        .map(|(i, range)| {
            let header = DigestHeader {
                summary,
                findings_total: findings.len(),
                counts_by_severity: by_severity.clone(),
                counts_by_check: by_check.clone(),
                part: i + 1,
                parts,
            };
            let body = DigestBody { digest: header, findings: &findings[range.clone()] };
            let part = chat::DigestPart {
                summary,
                all: findings,
                findings: &findings[range.clone()],
                first: range.start,
                part: i + 1,
                parts,
            };
            Message {
                subject: email::clean_subject(format!("[iam-sentinel] {}", part.headline())),
                body: serde_json::to_string(&body).unwrap_or_default(),
                email: email::digest(&part, columns),
                chat: chat::digest(&part).to_json(),
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
pub(crate) mod tests {
    use chrono::Utc;

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
                f.id = format!("{i:032x}");
                f
            })
            .collect()
    }

    pub(crate) fn summary() -> ScanSummary {
        ScanSummary {
            changes: None,
            account: "123456789012".into(),
            region: "us-east-1".into(),
            observed_at: Utc::now(),
            credential_report_generated_at: None,
            users_scanned: 5,
            exceptions_active: Some(1),
            exceptions: Vec::new(),
            users_not_in_report: vec![],
            users_deleted_since_report: vec![],
            registry_last_changed_at: None,
        }
    }

    /// Checks each part's size and subject, and that the parts together carry exactly the ids
    /// of `all`, each once (a multiset: a duplicate and an omission do not cancel out).
    fn check_parts(msgs: &[Message], all: &[Finding]) {
        let total = all.len();
        let mut seen: Vec<String> = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let structured = m.structured();
            assert_eq!(structured.len(), m.structured_len(), "part {i}: the length is computed exactly");
            assert!(structured.len() <= MAX_BODY_BYTES, "part {i}: {} bytes", structured.len());
            if msgs.len() > 1 {
                assert!(m.subject.ends_with(&format!("(part {}/{})", i + 1, msgs.len())), "{}", m.subject);
            }
            assert!(m.subject.len() < 100, "{}", m.subject);
            let v: serde_json::Value = serde_json::from_str(&m.body).unwrap();
            assert_eq!(v["digest"]["findings_total"], total);
            for f in v["findings"].as_array().unwrap() {
                assert!(m.email.contains(f["user"].as_str().unwrap()), "the e-mail lists every finding of its part");
                seen.push(f["id"].as_str().unwrap().to_owned());
            }
            crate::render::chat::tests::assert_valid(&m.chat);
        }
        let mut expected: Vec<String> = all.iter().map(|f| f.id.clone()).collect();
        assert_eq!(expected.len(), expected.iter().collect::<std::collections::BTreeSet<_>>().len(), "distinct ids");
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "every finding is in exactly one part");
    }

    #[test]
    fn a_large_digest_splits_into_numbered_parts_under_the_limit() {
        let all = findings(3000);
        let msgs = digest(&summary(), &all, MAX_BODY_BYTES);
        assert!(msgs.len() > 1);
        check_parts(&msgs, &all);
        let v: serde_json::Value = serde_json::from_str(&msgs[0].body).unwrap();
        assert_eq!(v["digest"]["counts_by_check"]["access-key-stale"], 3000);
    }

    #[test]
    fn every_rendering_counts_against_the_limit_even_with_escapes_and_multibyte_text() {
        // Quotes, backslashes, line breaks and 3-byte characters grow when escaped twice.
        let mut all = findings(2000);
        for (i, f) in all.iter_mut().enumerate() {
            f.evidence = serde_json::json!({ "policy": format!("\"{}\\\n{}", "é€".repeat(150), i) });
            f.message = format!("{} \"{}\"", "€".repeat(100), i);
        }
        let msgs = digest(&summary(), &all, MAX_BODY_BYTES);
        check_parts(&msgs, &all);
        let small = digest(&summary(), &all, 60_000);
        assert!(small.len() > msgs.len());
        check_parts(&small, &all);
        assert!(small.iter().all(|m| m.structured_len() <= 60_000));
    }

    #[test]
    fn a_message_has_a_rendering_per_protocol_and_machines_get_the_json() {
        let f = crate::render::chat::tests::alice();
        let m = Message::finding(&f);
        let structured: serde_json::Value = serde_json::from_str(&m.structured()).unwrap();
        let mut keys: Vec<&String> = structured.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["default", "email", "https"]);
        // SNS gives `default` to every protocol without its own key: sqs, lambda, firehose.
        let default: Finding = serde_json::from_str(structured["default"].as_str().unwrap()).unwrap();
        assert_eq!(default, Finding { action: None, ..f.clone() });
        assert_eq!(structured["default"].as_str().unwrap(), serde_json::to_string_pretty(&f).unwrap());
        assert_eq!(structured["email"].as_str().unwrap(), crate::render::email::finding(&f));
        crate::render::chat::tests::assert_valid(structured["https"].as_str().unwrap());
        assert_eq!(m.structured_len(), m.structured().len());
    }

    #[test]
    fn a_resolved_finding_is_a_resolution_in_every_rendering() {
        let mut f = crate::render::chat::tests::alice();
        f.state = crate::finding::FindingState::Resolved;
        let m = Message::finding(&f);
        let json: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(json["state"], "resolved");
        assert!(m.subject.starts_with("Resolved: "), "{}", m.subject);
        assert!(m.email.starts_with("RESOLVED "), "{}", m.email);
        let chat: serde_json::Value = serde_json::from_str(&m.chat).unwrap();
        assert_eq!(chat["metadata"]["threadId"], f.thread_id());
        assert!(chat["content"]["title"].as_str().unwrap().contains("Resolved"));
    }

    #[test]
    fn an_over_long_evidence_value_is_whole_in_the_json_and_cut_for_people() {
        let mut f = crate::render::chat::tests::alice();
        let long = "p".repeat(100_000);
        f.evidence = serde_json::json!({ "policy": long });
        let m = Message::finding(&f);
        let json: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(json["evidence"]["policy"].as_str().unwrap().len(), 100_000);
        assert!(!m.email.contains(&"p".repeat(crate::render::email::EVIDENCE_VALUE_MAX + 1)));
        assert!(!m.chat.contains(&"p".repeat(crate::render::chat::EVIDENCE_VALUE_MAX + 1)));
        assert!(m.structured_len() < MAX_BODY_BYTES);
    }

    #[test]
    fn an_empty_scan_still_sends_one_digest() {
        let msgs = digest(&summary(), &[], MAX_BODY_BYTES);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].severity, Severity::Info);
        assert!(msgs[0].subject.ends_with("no findings"));
    }
}
