//! The e-mail rendering: plain text a person reads. A finding is one line of what
//! happened, then who, where, the evidence, what remediation did and what to do; the daily
//! digest is the scan's facts and counts, then an aligned table grouped by severity.
//! Subjects are printable ASCII under 100 characters (SNS's rule for e-mail subjects).

use std::fmt::Write as _;

use super::chat::DigestPart;
use super::text::{evidence, next_step, one_line, remediation, truncate, who};
use crate::finding::{Finding, FindingState, Severity};

/// One evidence value in a finding's e-mail: longer values are cut (the JSON has them whole).
pub const EVIDENCE_VALUE_MAX: usize = 1_000;
/// The evidence of one digest row.
pub const DIGEST_EVIDENCE_MAX: usize = 300;
/// Users named in a digest's lists before `… and N more`.
const USERS_LISTED: usize = 20;
/// A digest column is at most this wide; longer values overflow their column.
const COLUMN_MAX: usize = 40;

/// Printable ASCII without line breaks, under 100 characters.
#[must_use]
pub fn clean_subject(mut s: String) -> String {
    s.retain(|c| c.is_ascii() && !c.is_ascii_control());
    s.truncate(99);
    s
}

/// `[HIGH] exception-unapproved: alice`, or `Resolved: [HIGH] …` for a resolution.
#[must_use]
pub fn subject(f: &Finding) -> String {
    let head = format!("[{}] {}: {}", f.severity.as_str().to_ascii_uppercase(), f.check, who(f));
    clean_subject(match f.state {
        FindingState::Open => head,
        FindingState::Resolved => format!("Resolved: {head}"),
    })
}

/// The e-mail body for one finding (open or resolved).
#[must_use]
pub fn finding(f: &Finding) -> String {
    let mut out = String::new();
    let sev = f.severity.as_str().to_ascii_uppercase();
    let _ = match f.state {
        FindingState::Open => writeln!(out, "{sev} {}: {}", f.check, one_line(&f.message)),
        FindingState::Resolved => writeln!(
            out,
            "RESOLVED {sev} {}: no longer found for {}. It was: {}",
            f.check,
            one_line(who(f)),
            one_line(&f.message)
        ),
    };
    out.push('\n');
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<12} {value}");
    };
    match &f.user {
        Some(user) => field("User:", &format!("{} ({})", one_line(user), one_line(&f.principal))),
        None => field("Principal:", &one_line(&f.principal)),
    }
    let account = match &f.account_name {
        Some(name) => format!("{} {} ({})", one_line(&f.account), one_line(name), one_line(&f.region)),
        None => format!("{} ({})", one_line(&f.account), one_line(&f.region)),
    };
    field("Account:", &account);
    if let Some(resource) = &f.resource {
        field("Key:", &one_line(resource));
    }
    field("Observed:", &format!("{} ({})", f.observed_at.format("%Y-%m-%d %H:%M:%S UTC"), one_line(&f.trigger)));
    let lines = evidence(f);
    if lines.is_empty() {
        field("Evidence:", "none");
    } else {
        out.push_str("Evidence:\n");
        let width = lines.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0).min(COLUMN_MAX);
        for (k, v) in &lines {
            let cut = truncate(v, EVIDENCE_VALUE_MAX);
            let note = if cut.len() < v.len() {
                format!(" (cut: {} characters in the JSON message)", v.chars().count())
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {k:<width$}  {cut}{note}");
        }
    }
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<12} {value}");
    };
    field("Remediation:", &remediation(f));
    field("What to do:", next_step(f));
    out.push('\n');
    let _ = writeln!(out, "Finding id {} (the same condition on other days: {})", f.id, f.thread_id());
    out
}

/// The column widths of a digest's table, the same in every part.
#[derive(Debug, Clone, Copy)]
pub struct Columns {
    check: usize,
    who: usize,
    resource: usize,
    remediation: usize,
}

fn status(f: &Finding) -> String {
    f.remediation.as_ref().map_or_else(|| "-".to_owned(), |r| format!("{} {}", r.action, r.status.as_str()))
}

impl Columns {
    /// Widths that fit every finding of the scan (up to a maximum).
    #[must_use]
    pub fn of(findings: &[Finding]) -> Columns {
        let w = |f: &dyn Fn(&Finding) -> usize, header: &str| {
            findings.iter().map(f).max().unwrap_or(0).max(header.len()).min(COLUMN_MAX)
        };
        Columns {
            check: w(&|f| f.check.as_str().len(), "CHECK"),
            who: w(&|f| who(f).chars().count(), "USER"),
            resource: w(&|f| f.resource.as_deref().map_or(1, |r| r.chars().count()), "KEY"),
            remediation: w(&|f| status(f).len(), "REMEDIATION"),
        }
    }

    fn header(self) -> String {
        let Columns { check, who, resource, remediation } = self;
        format!(
            "  {:<check$}  {:<who$}  {:<resource$}  {:<remediation$}  MESSAGE\n",
            "CHECK", "USER", "KEY", "REMEDIATION"
        )
    }

    /// One finding's row, and its evidence on an indented line below.
    #[must_use]
    pub fn row(self, f: &Finding) -> String {
        let Columns { check, who: who_w, resource, remediation } = self;
        let mut row = format!(
            "  {:<check$}  {:<who_w$}  {:<resource$}  {:<remediation$}  {}\n",
            f.check.as_str(),
            one_line(who(f)),
            one_line(f.resource.as_deref().unwrap_or("-")),
            status(f),
            one_line(&f.message),
        );
        let lines = evidence(f);
        if !lines.is_empty() {
            let text: Vec<String> = lines.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(row, "      evidence: {}", truncate(&text.join("; "), DIGEST_EVIDENCE_MAX));
        }
        row
    }
}

fn users(names: &[String]) -> String {
    let mut listed: Vec<String> = names.iter().take(USERS_LISTED).map(|n| one_line(n)).collect();
    if names.len() > USERS_LISTED {
        listed.push(format!("… and {} more (the JSON message lists them all)", names.len() - USERS_LISTED));
    }
    listed.join(", ")
}

/// The e-mail body of one digest part: the scan's facts, counts by severity and by check
/// (for the whole scan), then this part's findings as a table grouped by severity.
#[must_use]
pub fn digest(p: &DigestPart<'_>, columns: Columns) -> String {
    let s = p.summary;
    let part = if p.parts > 1 { format!(" (part {}/{})", p.part, p.parts) } else { String::new() };
    let mut out = format!(
        "iam-sentinel daily scan of {} at {}: {}{part}\n\n",
        s.account,
        s.observed_at.format("%Y-%m-%d %H:%M UTC"),
        super::text::summary(p.all)
    );
    let mut field = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:<24} {value}");
    };
    field("Account:", &format!("{} ({})", s.account, one_line(&s.region)));
    field("Users scanned:", &s.users_scanned.to_string());
    field(
        "Credential report:",
        &s.credential_report_generated_at.map_or_else(
            || "generation time unknown".to_owned(),
            |t| format!("generated {}", t.format("%Y-%m-%d %H:%M UTC")),
        ),
    );
    if !s.exceptions.is_empty() {
        field("Exceptions in force:", &s.exceptions.len().to_string());
        for e in &s.exceptions {
            let last =
                e.last_used.map_or_else(|| "never used".to_owned(), |t| format!("last used {}", t.format("%Y-%m-%d")));
            field(
                "",
                &format!(
                    "{} · {} · approved by {} · until {} · {last}",
                    one_line(&e.user),
                    one_line(&e.ticket),
                    one_line(&e.approved_by),
                    e.expires.format("%Y-%m-%d")
                ),
            );
        }
    }
    if let Some(changed) = s.registry_last_changed_at {
        // Info, not a finding: a change by an approver is expected; one by anybody else was
        // already reported as registry-changed-by-non-approver when it happened.
        field("Approvals registry:", &format!("last changed {}", changed.format("%Y-%m-%d %H:%M UTC")));
    }
    if !s.users_not_in_report.is_empty() {
        field(
            "Not yet in the report:",
            &format!("{} (tag checks only): {}", s.users_not_in_report.len(), users(&s.users_not_in_report)),
        );
    }
    if !s.users_deleted_since_report.is_empty() {
        field(
            "Deleted since the report:",
            &format!("{}: {}", s.users_deleted_since_report.len(), users(&s.users_deleted_since_report)),
        );
    }
    if p.parts > 1 {
        field(
            "This part:",
            &format!(
                "{} of {}: findings {}-{} of {}",
                p.part,
                p.parts,
                p.first + 1,
                p.first + p.findings.len(),
                p.all.len()
            ),
        );
    }
    let counts = |out: &mut String, title: &str, rows: Vec<(String, usize)>| {
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let _ = writeln!(out, "\n{title}");
        for (k, n) in rows {
            let _ = writeln!(out, "  {k:<width$}  {n:>6}");
        }
    };
    let by_severity = p.by_severity().into_iter().map(|(s, n)| (s.as_str().to_owned(), n)).collect();
    counts(&mut out, "Findings by severity", by_severity);
    counts(&mut out, "Findings by check", p.by_check().into_iter().map(|(c, n)| (c.to_owned(), n)).collect());
    for sev in Severity::ALL_DESCENDING {
        let group: Vec<&Finding> = p.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{} ({})", sev.as_str().to_ascii_uppercase(), group.len());
        out.push_str(&columns.header());
        for f in group {
            out.push_str(&columns.row(f));
        }
    }
    if p.all.is_empty() {
        out.push_str("\nNo findings.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::chat::tests::alice;
    use serde_json::json;

    #[test]
    fn a_finding_reads_as_text_with_every_fact() {
        let f = alice();
        let body = finding(&f);
        let first = body.lines().next().unwrap();
        assert_eq!(
            first,
            "HIGH exception-unapproved: alice carries AccessException=True with no approval in the registry"
        );
        for line in [
            "User:        alice (arn:aws:iam::123456789012:user/alice)",
            "Account:     123456789012 (us-east-1)",
            "Observed:    2026-11-23 10:00:00 UTC (event:TagUser)",
            "  tag_value  True",
            "  tagged_by  arn:aws:iam::123456789012:user/bob",
            "Remediation: untag: applied (the exception tag was removed)",
        ] {
            assert!(body.lines().any(|l| l == line), "{line:?} missing from\n{body}");
        }
        assert!(body.contains("What to do:  Remove the AccessException tag"), "{body}");
        assert!(body.contains(&f.id));
        assert_eq!(subject(&f), "[HIGH] exception-unapproved: alice");
    }

    #[test]
    fn a_resolution_says_so_in_the_subject_and_first_line() {
        let mut f = alice();
        f.state = FindingState::Resolved;
        assert_eq!(subject(&f), "Resolved: [HIGH] exception-unapproved: alice");
        let body = finding(&f);
        assert!(
            body.starts_with("RESOLVED HIGH exception-unapproved: no longer found for alice. It was: alice carries")
        );
        assert!(body.contains("What to do:  Nothing: the condition no longer holds."), "{body}");
    }

    #[test]
    fn subjects_stay_printable_ascii_under_100_characters() {
        let mut f = alice();
        f.user = Some(format!("ü{}\n\u{7}", "a".repeat(200)));
        let s = subject(&f);
        assert!(s.len() < 100 && s.chars().all(|c| c.is_ascii() && !c.is_ascii_control()), "{s}");
    }

    #[test]
    fn a_long_evidence_value_is_cut_and_no_value_forges_a_line() {
        let mut f = alice();
        f.evidence = json!({"policy": "x".repeat(50_000), "tag_value": "True\nRemediation: none"});
        let body = finding(&f);
        assert!(
            body.contains(&format!("  policy     {}… (cut: 50000 characters in the JSON message)", "x".repeat(999)))
        );
        assert!(!body.contains(&"x".repeat(1_001)));
        assert_eq!(body.lines().filter(|l| l.starts_with("Remediation:")).count(), 1, "{body}");
    }

    #[test]
    fn the_digest_is_counts_first_then_an_aligned_table_by_severity() {
        let summary = crate::message::tests::summary();
        let mut all = vec![alice(), alice()];
        all[1].check = crate::finding::CheckId::AccessKeyStale;
        all[1].severity = Severity::Medium;
        all[1].user = Some("a-much-longer-user-name".into());
        all[1].resource = Some("access_key_1 created 2026-05-07".into());
        all[1].remediation = None;
        all[1].message = "the key is stale".into();
        let columns = Columns::of(&all);
        let p = DigestPart { summary: &summary, all: &all, findings: &all, first: 0, part: 1, parts: 1 };
        let body = digest(&p, columns);
        let pos = |s: &str| body.find(s).unwrap_or_else(|| panic!("{s:?} missing from\n{body}"));
        assert!(pos("Findings by severity") < pos("Findings by check"));
        assert!(pos("Findings by check") < pos("HIGH (1)"));
        assert!(pos("HIGH (1)") < pos("MEDIUM (1)"));
        assert!(body.contains("\n  high         1\n  medium       1\n"), "{body}");
        // Aligned: every row's message starts in the same column as the header's.
        let at = |needle: &str| body.lines().find(|l| l.contains(needle)).unwrap().find(needle).unwrap();
        let message_col = at("MESSAGE");
        assert_eq!(at("alice carries"), message_col);
        assert_eq!(at("the key is stale"), message_col);
        assert!(body.contains("      evidence: tag_key=AccessException; tag_value=True;"), "{body}");
        assert!(!body.contains("Approvals registry:"), "no line when the last change is unknown");
        let changed = crate::message::ScanSummary {
            registry_last_changed_at: Some("2026-11-22T16:05:00Z".parse().unwrap()),
            ..summary.clone()
        };
        let p = DigestPart { summary: &changed, ..p };
        assert!(digest(&p, Columns::of(&all)).contains("Approvals registry:      last changed 2026-11-22 16:05 UTC\n"));
    }

    #[test]
    fn the_digest_lists_the_exceptions_in_force_for_the_approver() {
        let mut summary = crate::message::tests::summary();
        summary.exceptions = vec![crate::message::ActiveException {
            user: "svc-legacy-erp".into(),
            approved_by: "sec-lead@example.com".into(),
            ticket: "SEC-1042".into(),
            expires: "2027-01-31T00:00:00Z".parse().unwrap(),
            last_used: None,
        }];
        let all = vec![alice()];
        let p = DigestPart { summary: &summary, all: &all, findings: &all, first: 0, part: 1, parts: 1 };
        let body = digest(&p, Columns::of(&all));
        assert!(body.contains("Exceptions in force:     1\n"), "{body}");
        assert!(
            body.contains(
                "svc-legacy-erp · SEC-1042 · approved by sec-lead@example.com · until 2027-01-31 · never used"
            ),
            "{body}"
        );
    }
}
