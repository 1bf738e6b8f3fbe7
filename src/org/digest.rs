//! The organization digest: one message (in parts under SNS's limit) after every account was
//! scanned: accounts scanned and failed, findings by account × severity and by check, the worst
//! accounts first. Each account's own digest went out from its own scan; this one is the map.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::Report;
use crate::finding::{CheckId, Severity};
use crate::message::{DIGEST_CHECK, Message};

/// What one account's scan contributes to the organization digest (the `scan_account`
/// invocation's answer). Read from the named maps (`by_severity`, `by_check`) or from the
/// compact counts the state machine keeps ([`Compact`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawResult")]
pub struct AccountResult {
    /// The 12-digit account id.
    pub account: String,
    /// The account's name, when Organizations gave it (`null` otherwise: the state machine's
    /// result selector reads every field).
    #[serde(default)]
    pub account_name: Option<String>,
    /// Users the scan read.
    #[serde(default)]
    pub users_scanned: usize,
    /// Findings of the scan.
    #[serde(default)]
    pub findings: usize,
    /// Findings by severity (`critical` … `info`).
    #[serde(default)]
    pub by_severity: BTreeMap<String, usize>,
    /// Findings by check id.
    #[serde(default)]
    pub by_check: BTreeMap<String, usize>,
    /// Why the account could not be scanned; `None` when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The compact counts of one account, as the state machine keeps them: every byte of the
/// Distributed Map's results counts against Step Functions' 256 KB state. Severities in
/// [`Severity::ALL_DESCENDING`] order, checks in [`CheckId::ALL`] order (trailing zeros cut),
/// and `v`, the fingerprint of that order: a result of another build is refused, never misread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compact {
    /// Findings by severity, critical first.
    pub severity_counts: Vec<usize>,
    /// Findings by check, in [`CheckId::ALL`] order.
    pub check_counts: Vec<usize>,
    /// [`check_order_fingerprint`].
    pub v: String,
}

/// Eight hex digits naming the order of [`CheckId::ALL`].
#[must_use]
pub fn check_order_fingerprint() -> String {
    let ids: Vec<&str> = CheckId::ALL.iter().map(|c| c.as_str()).collect();
    crate::finding::stable_id(&ids).chars().take(8).collect()
}

/// A result as the state machine hands it over: the whole `scan_account` answer, or the
/// compact counts its result selector kept.
#[derive(Deserialize)]
struct RawResult {
    account: String,
    #[serde(default)]
    account_name: Option<String>,
    #[serde(default)]
    users_scanned: usize,
    #[serde(default)]
    findings: usize,
    #[serde(default)]
    by_severity: Option<BTreeMap<String, usize>>,
    #[serde(default)]
    by_check: Option<BTreeMap<String, usize>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    severity_counts: Option<Vec<usize>>,
    #[serde(default)]
    check_counts: Option<Vec<usize>>,
    #[serde(default)]
    v: Option<String>,
}

impl TryFrom<RawResult> for AccountResult {
    type Error = String;

    fn try_from(r: RawResult) -> Result<Self, String> {
        let account = r.account;
        let by_severity = match (r.by_severity, r.severity_counts) {
            (Some(named), _) => named,
            (None, Some(counts)) if counts.len() <= Severity::ALL_DESCENDING.len() => Severity::ALL_DESCENDING
                .iter()
                .zip(counts)
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
            (None, Some(_)) => return Err(format!("account {account}: more than five severity counts")),
            (None, None) => BTreeMap::new(),
        };
        let by_check = match (r.by_check, r.check_counts) {
            (Some(named), _) => named,
            (None, Some(counts)) => {
                let ours = check_order_fingerprint();
                if r.v.as_deref() != Some(ours.as_str()) || counts.len() > CheckId::ALL.len() {
                    return Err(format!(
                        "account {account}: check counts of another build (order {:?}, this build's is {ours:?})",
                        r.v.unwrap_or_default()
                    ));
                }
                CheckId::ALL
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(c, n)| (c.as_str().to_owned(), n))
                    .collect()
            }
            (None, None) => BTreeMap::new(),
        };
        // The compact form leaves the total out: it is the sum of the severities.
        let findings = if r.findings == 0 { by_severity.values().sum() } else { r.findings };
        Ok(AccountResult {
            account,
            account_name: r.account_name,
            users_scanned: r.users_scanned,
            findings,
            by_severity,
            by_check,
            error: r.error,
        })
    }
}

impl AccountResult {
    /// The counts as the state machine keeps them.
    #[must_use]
    pub fn compact(&self) -> Compact {
        let mut check_counts: Vec<usize> =
            CheckId::ALL.iter().map(|c| self.by_check.get(c.as_str()).copied().unwrap_or(0)).collect();
        while check_counts.last() == Some(&0) {
            check_counts.pop();
        }
        Compact {
            severity_counts: Severity::ALL_DESCENDING.iter().map(|s| self.count(*s)).collect(),
            check_counts,
            v: check_order_fingerprint(),
        }
    }

    /// Counts one more finding of this account (an organization-level one).
    pub fn add(&mut self, f: &crate::finding::Finding) {
        self.findings += 1;
        *self.by_severity.entry(f.severity.as_str().to_owned()).or_insert(0) += 1;
        *self.by_check.entry(f.check.as_str().to_owned()).or_insert(0) += 1;
    }

    /// The result of one account's scan report.
    #[must_use]
    pub fn of(account: &str, account_name: Option<String>, report: &Report) -> AccountResult {
        let mut by_severity = BTreeMap::new();
        let mut by_check = BTreeMap::new();
        for f in &report.findings {
            *by_severity.entry(f.severity.as_str().to_owned()).or_insert(0) += 1;
            *by_check.entry(f.check.as_str().to_owned()).or_insert(0) += 1;
        }
        AccountResult {
            account: account.to_owned(),
            account_name,
            users_scanned: report.scan.as_ref().map_or(0, |s| s.users_scanned),
            findings: report.findings.len(),
            by_severity,
            by_check,
            error: report.failure.clone(),
        }
    }

    /// An account that could not be scanned.
    #[must_use]
    pub fn failed(account: &str, account_name: Option<String>, error: String) -> AccountResult {
        AccountResult {
            account: account.to_owned(),
            account_name,
            users_scanned: 0,
            findings: 0,
            by_severity: BTreeMap::new(),
            by_check: BTreeMap::new(),
            error: Some(error),
        }
    }

    fn count(&self, severity: Severity) -> usize {
        self.by_severity.get(severity.as_str()).copied().unwrap_or(0)
    }

    /// Worst first: failed accounts, then by critical, high, medium, low findings; then by id.
    fn rank(&self) -> impl Ord + use<> {
        let severities = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];
        (self.error.is_some(), severities.map(|s| self.count(s)))
    }
}

/// The whole organization scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSummary {
    /// When the scan ran.
    pub observed_at: DateTime<Utc>,
    /// The region of the function.
    pub region: String,
    /// Active accounts the organization listed.
    pub accounts_listed: usize,
    /// Accounts scanned.
    pub accounts_scanned: usize,
    /// Accounts whose scan failed (each with the reason in `accounts`).
    pub accounts_failed: usize,
    /// Listed accounts the scan never reached (the run stopped early): named, never dropped.
    pub accounts_not_reached: Vec<String>,
    /// Why the run as a whole failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Users read across the organization.
    pub users_scanned: usize,
    /// Findings across the organization (organization-level checks included).
    pub findings: usize,
    /// Findings by severity.
    pub by_severity: BTreeMap<String, usize>,
    /// Findings by check id.
    pub by_check: BTreeMap<String, usize>,
}

impl OrgSummary {
    /// Totals from the listed accounts, their results and the organization-level findings
    /// (SCP coverage), counted once each.
    #[must_use]
    pub fn new(
        listed: &[String],
        results: &[AccountResult],
        org_findings: &[crate::finding::Finding],
        failure: Option<String>,
        observed_at: DateTime<Utc>,
        region: &str,
    ) -> OrgSummary {
        let mut by_severity: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_check: BTreeMap<String, usize> = BTreeMap::new();
        for r in results {
            for (k, v) in &r.by_severity {
                *by_severity.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &r.by_check {
                *by_check.entry(k.clone()).or_default() += v;
            }
        }
        for f in org_findings {
            *by_severity.entry(f.severity.as_str().to_owned()).or_default() += 1;
            *by_check.entry(f.check.as_str().to_owned()).or_default() += 1;
        }
        let reached: std::collections::BTreeSet<&str> = results.iter().map(|r| r.account.as_str()).collect();
        OrgSummary {
            observed_at,
            region: region.to_owned(),
            accounts_listed: listed.len(),
            accounts_scanned: results.iter().filter(|r| r.error.is_none()).count(),
            accounts_failed: results.iter().filter(|r| r.error.is_some()).count(),
            accounts_not_reached: listed.iter().filter(|a| !reached.contains(a.as_str())).cloned().collect(),
            failure,
            users_scanned: results.iter().map(|r| r.users_scanned).sum(),
            findings: results.iter().map(|r| r.findings).sum::<usize>() + org_findings.len(),
            by_severity,
            by_check,
        }
    }

    fn worst(&self) -> Severity {
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low]
            .into_iter()
            .find(|s| self.by_severity.get(s.as_str()).is_some_and(|n| *n > 0))
            .unwrap_or(Severity::Info)
    }

    /// `12 accounts scanned, 1 failed: 3 critical, 10 high, …`.
    #[must_use]
    pub fn headline(&self) -> String {
        let mut s = format!("organization: {} accounts scanned", self.accounts_scanned);
        if self.accounts_failed > 0 {
            let _ = write!(s, ", {} failed", self.accounts_failed);
        }
        if !self.accounts_not_reached.is_empty() {
            let _ = write!(s, ", {} not reached", self.accounts_not_reached.len());
        }
        let counts: Vec<String> = [Severity::Critical, Severity::High, Severity::Medium, Severity::Low]
            .iter()
            .filter_map(|sev| self.by_severity.get(sev.as_str()).filter(|n| **n > 0).map(|n| format!("{n} {sev}")))
            .collect();
        if !counts.is_empty() {
            let _ = write!(s, ": {}", counts.join(", "));
        }
        s
    }
}

#[derive(Serialize)]
struct Body<'a> {
    org_digest: &'a OrgSummary,
    part: usize,
    parts: usize,
    /// This part's accounts, worst first.
    accounts: &'a [&'a AccountResult],
}

/// The organization digest's messages: the summary in every part, the accounts (worst first)
/// split so that every part's structured message stays under `max_bytes`.
#[must_use]
pub fn messages(summary: &OrgSummary, results: &[AccountResult], max_bytes: usize) -> Vec<Message> {
    let mut ranked: Vec<&AccountResult> = results.iter().collect();
    ranked.sort_by(|a, b| b.rank().cmp(&a.rank()).then_with(|| a.account.cmp(&b.account)));
    // Each account costs its JSON (escaped into the structured message) and its e-mail line.
    let cost: Vec<usize> =
        ranked.iter().map(|r| 2 * serde_json::to_string(r).map_or(0, |s| s.len()) + email_line(r).len() + 8).collect();
    let header = 4 * serde_json::to_string(summary).map_or(0, |s| s.len()) + 4096;
    let mut budget = max_bytes.saturating_sub(header).max(1);
    loop {
        let chunks = crate::message::split(&cost, budget);
        let parts: Vec<Message> =
            chunks.iter().enumerate().map(|(i, r)| part(summary, &ranked[r.clone()], i + 1, chunks.len())).collect();
        let largest = parts.iter().map(Message::structured_len).max().unwrap_or(0);
        if largest <= max_bytes || budget <= 1024 {
            return parts;
        }
        budget = budget.saturating_sub(largest - max_bytes + 1024);
    }
}

fn part(summary: &OrgSummary, accounts: &[&AccountResult], part: usize, parts: usize) -> Message {
    let headline = summary.headline();
    let of = if parts > 1 { format!(" (part {part} of {parts})") } else { String::new() };
    let body = serde_json::to_string(&Body { org_digest: summary, part, parts, accounts }).unwrap_or_default();
    let chat = serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": format!("iam-sentinel {headline}{of}"),
            "description": chat_description(summary, accounts),
        },
        "metadata": {"threadId": format!("iam-sentinel-org-digest-{}", summary.observed_at.format("%Y-%m-%d"))},
    });
    Message {
        subject: crate::render::email::clean_subject(format!("[iam-sentinel] {headline}{of}")),
        body,
        email: email(summary, accounts, part, parts),
        chat: chat.to_string(),
        severity: summary.worst(),
        check: DIGEST_CHECK.to_owned(),
        account: "organization".to_owned(),
        id: crate::finding::stable_id(&[
            "organization",
            DIGEST_CHECK,
            &summary.observed_at.format("%Y-%m-%d").to_string(),
            &format!("{part}/{parts}"),
        ]),
    }
}

fn label(r: &AccountResult) -> String {
    match &r.account_name {
        Some(n) => format!("{} ({n})", r.account),
        None => r.account.clone(),
    }
}

fn email_line(r: &AccountResult) -> String {
    if let Some(e) = &r.error {
        return format!("{:<40} FAILED: {e}", label(r));
    }
    let n = |s: Severity| r.count(s);
    format!(
        "{:<40} {:>8} {:>8} {:>8} {:>8} {:>8}   {} users",
        label(r),
        n(Severity::Critical),
        n(Severity::High),
        n(Severity::Medium),
        n(Severity::Low),
        n(Severity::Info),
        r.users_scanned
    )
}

/// The whole digest as text, every account worst first (the CLI's table).
#[must_use]
pub fn text(summary: &OrgSummary, results: &[AccountResult]) -> String {
    let mut ranked: Vec<&AccountResult> = results.iter().collect();
    ranked.sort_by(|a, b| b.rank().cmp(&a.rank()).then_with(|| a.account.cmp(&b.account)));
    email(summary, &ranked, 1, 1)
}

fn email(summary: &OrgSummary, accounts: &[&AccountResult], part: usize, parts: usize) -> String {
    let mut s = format!("iam-sentinel {}\n\n", summary.headline());
    let _ = writeln!(s, "Observed at:        {}", summary.observed_at.to_rfc3339());
    let _ = writeln!(s, "Accounts listed:    {}", summary.accounts_listed);
    let _ = writeln!(s, "Accounts scanned:   {}", summary.accounts_scanned);
    let _ = writeln!(s, "Accounts failed:    {}", summary.accounts_failed);
    if !summary.accounts_not_reached.is_empty() {
        let _ = writeln!(s, "Not reached:        {}", summary.accounts_not_reached.join(", "));
    }
    if let Some(f) = &summary.failure {
        let _ = writeln!(s, "THE SCAN FAILED:    {f}");
    }
    let _ = writeln!(s, "Users scanned:      {}", summary.users_scanned);
    let _ = writeln!(s, "Findings:           {}\n", summary.findings);
    let _ = writeln!(s, "By check:");
    let mut checks: Vec<(&String, &usize)> = summary.by_check.iter().collect();
    checks.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (check, n) in checks {
        let _ = writeln!(s, "  {n:>8}  {check}");
    }
    let _ = writeln!(s, "\nAccounts, worst first (part {part} of {parts}):");
    let _ = writeln!(s, "{:<40} {:>8} {:>8} {:>8} {:>8} {:>8}", "account", "critical", "high", "medium", "low", "info");
    for r in accounts {
        let _ = writeln!(s, "{}", email_line(r));
    }
    s
}

/// The chat description: the headline numbers and the ten worst accounts of this part.
fn chat_description(summary: &OrgSummary, accounts: &[&AccountResult]) -> String {
    let mut s = format!(
        "*{}* accounts scanned, *{}* failed, *{}* findings.\n",
        summary.accounts_scanned, summary.accounts_failed, summary.findings
    );
    if let Some(f) = &summary.failure {
        let _ = writeln!(s, "*The scan failed:* {f}");
    }
    for r in accounts.iter().take(10) {
        match &r.error {
            Some(e) => {
                let _ = writeln!(s, "• `{}` failed: {e}", label(r));
            }
            None => {
                let _ = writeln!(
                    s,
                    "• `{}`: {} critical, {} high, {} medium",
                    label(r),
                    r.count(Severity::Critical),
                    r.count(Severity::High),
                    r.count(Severity::Medium)
                );
            }
        }
    }
    s.chars().take(crate::render::chat::DESCRIPTION_MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(account: &str, critical: usize, high: usize) -> AccountResult {
        AccountResult {
            account: account.into(),
            account_name: Some(format!("name-{account}")),
            users_scanned: 10,
            findings: critical + high,
            by_severity: [("critical".to_owned(), critical), ("high".to_owned(), high)].into_iter().collect(),
            by_check: [("access-key-stale".to_owned(), high), ("root-without-mfa".to_owned(), critical)]
                .into_iter()
                .collect(),
            error: None,
        }
    }

    #[test]
    fn worst_accounts_come_first_and_failures_lead() {
        let results = vec![
            result("111111111111", 0, 5),
            result("222222222222", 1, 0),
            AccountResult::failed("333333333333", None, "sts:AssumeRole failed: AccessDenied".into()),
        ];
        let listed: Vec<String> =
            ["111111111111", "222222222222", "333333333333", "444444444444"].map(String::from).to_vec();
        let s = OrgSummary::new(&listed, &results, &[], None, Utc::now(), "us-east-1");
        assert_eq!((s.accounts_scanned, s.accounts_failed), (2, 1));
        assert_eq!(s.accounts_not_reached, vec!["444444444444".to_owned()]);
        assert_eq!(s.by_severity["high"], 5);
        assert_eq!(s.findings, 6);
        let m = messages(&s, &results, crate::message::MAX_BODY_BYTES);
        assert_eq!(m.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&m[0].body).unwrap();
        let order: Vec<&str> =
            body["accounts"].as_array().unwrap().iter().map(|a| a["account"].as_str().unwrap()).collect();
        assert_eq!(order, ["333333333333", "222222222222", "111111111111"]);
        assert_eq!(m[0].severity, Severity::Critical);
        assert!(m[0].email.contains("333333333333") && m[0].email.contains("FAILED: sts:AssumeRole"), "{}", m[0].email);
        assert!(m[0].subject.contains("2 accounts scanned, 1 failed, 1 not reached"), "{}", m[0].subject);
    }

    #[test]
    fn compact_counts_read_back_as_the_named_ones_and_another_order_is_refused() {
        let r = result("111111111111", 2, 5);
        let mut compact = serde_json::to_value(r.compact()).unwrap();
        compact["account"] = serde_json::json!("111111111111");
        compact["users_scanned"] = serde_json::json!(10);
        let back: AccountResult = serde_json::from_value(compact.clone()).unwrap();
        assert_eq!(back, AccountResult { account_name: None, ..r });
        compact["v"] = serde_json::json!("00000000");
        let e = serde_json::from_value::<AccountResult>(compact).unwrap_err().to_string();
        assert!(e.contains("another build"), "{e}");
    }

    #[test]
    fn a_thousand_accounts_fit_in_the_state_machines_256_kb() {
        // Every account with findings of ten checks, counts in the thousands.
        let results: Vec<serde_json::Value> = (0..1000)
            .map(|i| {
                let mut r = result(&format!("{:012}", 100_000 + i), 1000, 2000);
                for c in CheckId::ALL.iter().take(10) {
                    r.by_check.insert(c.as_str().to_owned(), 1234);
                }
                let mut kept = serde_json::to_value(r.compact()).unwrap();
                kept["account"] = serde_json::json!(r.account);
                kept["users_scanned"] = serde_json::json!(5000);
                kept
            })
            .collect();
        let accounts: Vec<String> = (0..1000).map(|i| format!("{:012}", 100_000 + i)).collect();
        let state = serde_json::json!({"accounts": accounts, "management_account": "999999999999", "results": results});
        let size = state.to_string().len();
        // 256 KiB is 262,144 bytes; the execution's input and the names of the states add little.
        assert!(size < 230_000, "{size} bytes");
    }

    #[test]
    fn a_thousand_accounts_split_into_parts_under_the_limit() {
        let results: Vec<AccountResult> =
            (0..1000).map(|i| result(&format!("{:012}", 100_000 + i), i % 3, i % 7)).collect();
        let listed: Vec<String> = results.iter().map(|r| r.account.clone()).collect();
        let s = OrgSummary::new(&listed, &results, &[], None, Utc::now(), "us-east-1");
        let limit = 60_000;
        let m = messages(&s, &results, limit);
        assert!(m.len() > 1);
        assert!(
            m.iter().all(|p| p.structured_len() <= limit),
            "{:?}",
            m.iter().map(Message::structured_len).collect::<Vec<_>>()
        );
        // The parts' accounts as a multiset: a duplicate and an omission would not cancel out.
        let mut seen: Vec<String> = m
            .iter()
            .flat_map(|p| {
                let body = serde_json::from_str::<serde_json::Value>(&p.body).unwrap();
                body["accounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["account"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        seen.sort();
        let mut expected = listed.clone();
        expected.sort();
        assert_eq!(seen, expected, "every account is in exactly one part");
    }
}
