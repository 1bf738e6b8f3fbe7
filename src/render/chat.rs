//! The chat rendering: an Amazon Q Developer in chat applications (formerly AWS Chatbot)
//! **custom notification**, which it posts to Slack, Microsoft Teams or Chime.
//!
//! Schema (AWS documentation, "Custom notifications using Amazon Q Developer in chat
//! applications"): `version` "1.0" and `source` "custom" are required; `content` has
//! `textType` (only "client-markdown"), `title` (at most 250 characters), `description`
//! (required, at most 8,000), `nextSteps` (each at most 350) and `keywords` (each at most
//! 75); `metadata` has `threadId` (same id, same thread), `summary`, `eventType`,
//! `relatedResources` and `additionalContext` (string to string). The documentation gives
//! no maximum count of next steps or keywords: we send at most [`NEXT_STEPS_MAX`] and
//! [`KEYWORDS_MAX`]. Values anyone can set (user names, tag values) are put in code spans
//! with `<`, `>` and backticks replaced, so they can neither mention `@channel` nor break
//! out of the span.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::text::{evidence, next_step, one_line, remediation, truncate, who};
use crate::domain::message::ScanSummary;
use crate::finding::{Finding, FindingState, Severity};

/// `content.title`: at most 250 characters.
pub const TITLE_MAX: usize = 250;
/// `content.description`: at most 8,000 characters.
pub const DESCRIPTION_MAX: usize = 8_000;
/// Each of `content.nextSteps`: at most 350 characters.
pub const NEXT_STEP_MAX: usize = 350;
/// Each of `content.keywords`: at most 75 characters.
pub const KEYWORD_MAX: usize = 75;
/// How many next steps we send (our choice; the schema sets no count).
pub const NEXT_STEPS_MAX: usize = 3;
/// How many keywords we send (our choice; the schema sets no count).
pub const KEYWORDS_MAX: usize = 6;
/// One evidence value in the description: longer values are cut (the JSON has them whole).
pub const EVIDENCE_VALUE_MAX: usize = 300;
/// `metadata.summary`, shown on the thread's first message: kept to a title's length.
pub const SUMMARY_MAX: usize = TITLE_MAX;

/// `metadata.eventType` of an open finding, a resolution and a digest part.
pub const EVENT_FINDING: &str = "iam-sentinel-finding";
/// See [`EVENT_FINDING`].
pub const EVENT_RESOLVED: &str = "iam-sentinel-finding-resolved";
/// See [`EVENT_FINDING`].
pub const EVENT_DIGEST: &str = "iam-sentinel-digest";

/// A custom notification, field for field as the schema names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Always "1.0".
    pub version: String,
    /// Always "custom".
    pub source: String,
    /// Unique event id: the finding id (a resolution adds `-resolved`).
    pub id: String,
    /// What is shown.
    pub content: Content,
    /// Threading and context.
    pub metadata: Metadata,
}

/// `content` of a custom notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    /// Always "client-markdown".
    pub text_type: String,
    /// Severity, check and who.
    pub title: String,
    /// What happened, user, account, evidence, remediation, what to do.
    pub description: String,
    /// What to do.
    pub next_steps: Vec<String>,
    /// Severity, check, account (and `resolved`).
    pub keywords: Vec<String>,
}

/// `metadata` of a custom notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The finding's day-independent [`Finding::thread_id`]: its updates and resolution
    /// land in the same thread.
    pub thread_id: String,
    /// One line for the thread's top message.
    pub summary: String,
    /// [`EVENT_FINDING`], [`EVENT_RESOLVED`] or [`EVENT_DIGEST`].
    pub event_type: String,
    /// The principal's ARN (and the key, when the finding is about one).
    pub related_resources: Vec<String>,
    /// severity, check, account, region, state, finding_id, trigger.
    pub additional_context: BTreeMap<String, String>,
}

impl Notification {
    fn new(id: String, title: &str, description: &str, next_steps: &[String], keywords: &[String]) -> Self {
        Notification {
            version: "1.0".into(),
            source: "custom".into(),
            id,
            content: Content {
                text_type: "client-markdown".into(),
                title: truncate(&one_line(title), TITLE_MAX),
                description: cut_description(description),
                next_steps: next_steps
                    .iter()
                    .take(NEXT_STEPS_MAX)
                    .map(|s| truncate(&one_line(s), NEXT_STEP_MAX))
                    .collect(),
                keywords: keywords.iter().take(KEYWORDS_MAX).map(|s| truncate(&one_line(s), KEYWORD_MAX)).collect(),
            },
            metadata: Metadata {
                thread_id: String::new(),
                summary: String::new(),
                event_type: String::new(),
                related_resources: Vec::new(),
                additional_context: BTreeMap::new(),
            },
        }
    }

    /// The document as SNS sends it.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The description, cut at a line within the limit and saying where the rest is.
fn cut_description(s: &str) -> String {
    const MORE: &str = "\n… (cut to fit the chat message: the JSON message has every detail)";
    if s.chars().count() <= DESCRIPTION_MAX {
        return s.to_owned();
    }
    let keep = truncate(s, DESCRIPTION_MAX - MORE.chars().count());
    let keep = keep.rfind('\n').map_or(keep.as_str(), |i| &keep[..i]);
    format!("{keep}{MORE}")
}

/// A value anyone can set, as an inline code span that mentions nobody and stays one line.
fn code(s: &str) -> String {
    let s: String = one_line(s)
        .chars()
        .map(|c| match c {
            '`' => '\'',
            '<' => '‹',
            '>' => '›',
            c => c,
        })
        .collect();
    format!("`{s}`")
}

/// Free text that may contain values anyone can set: no mention, no line break.
fn plain(s: &str) -> String {
    one_line(s).replace('<', "‹").replace('>', "›")
}

fn emoji(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":information_source:",
    }
}

/// `[HIGH] exception-unapproved: alice`, the words of the title and summary.
fn headline(f: &Finding) -> String {
    let head = format!("[{}] {}: {}", f.severity.as_str().to_ascii_uppercase(), f.check, plain(who(f)));
    match f.state {
        FindingState::Open => head,
        FindingState::Resolved => format!("Resolved: {head}"),
    }
}

/// The custom notification for one finding (open or resolved).
#[must_use]
pub fn finding(f: &Finding) -> Notification {
    let resolved = f.state == FindingState::Resolved;
    let mut d = String::new();
    if resolved {
        d.push_str("*Resolved:* this condition no longer holds. It was: ");
    }
    d.push_str(&plain(&f.message));
    match &f.user {
        Some(user) => {
            let _ = write!(d, "\n*User:* {} ({})", code(user), code(&f.principal));
        }
        None => {
            let _ = write!(d, "\n*Principal:* {}", code(&f.principal));
        }
    }
    let _ = write!(d, "\n*Account:* {}", code(&f.account));
    if let Some(name) = &f.account_name {
        let _ = write!(d, " ({})", plain(name));
    }
    let _ = write!(d, " · {}", plain(&f.region));
    if let Some(resource) = &f.resource {
        let _ = write!(d, "\n*Key:* {}", code(resource));
    }
    let lines = evidence(f);
    if !lines.is_empty() {
        d.push_str("\n*Evidence:*");
        for (k, v) in lines {
            let _ = write!(d, "\n• {}: {}", plain(&k), code(&truncate(&v, EVIDENCE_VALUE_MAX)));
        }
    }
    let _ = write!(d, "\n*Remediation:* {}", plain(&remediation(f)));
    let _ = write!(d, "\n*What to do:* {}", next_step(f));
    let _ = write!(
        d,
        "\n*Observed:* {} ({}) · finding {}",
        f.observed_at.format("%Y-%m-%d %H:%M UTC"),
        plain(&f.trigger),
        code(&f.id)
    );
    let title = format!("{} {}", if resolved { ":white_check_mark:" } else { emoji(f.severity) }, headline(f));
    let mut keywords = vec![f.severity.as_str().to_owned(), f.check.as_str().to_owned(), f.account.clone()];
    if resolved {
        keywords.push("resolved".into());
    }
    let id = if resolved { format!("{}-resolved", f.id) } else { f.id.clone() };
    let mut n = Notification::new(id, &title, &d, &[next_step(f).to_owned()], &keywords);
    n.metadata = Metadata {
        thread_id: f.thread_id(),
        summary: truncate(&headline(f), SUMMARY_MAX),
        event_type: if resolved { EVENT_RESOLVED } else { EVENT_FINDING }.into(),
        related_resources: std::iter::once(f.principal.clone()).chain(f.resource.clone()).collect(),
        additional_context: BTreeMap::from([
            ("severity".into(), f.severity.as_str().into()),
            ("check".into(), f.check.as_str().into()),
            ("account".into(), f.account.clone()),
            ("region".into(), f.region.clone()),
            ("state".into(), if resolved { "resolved" } else { "open" }.into()),
            ("finding_id".into(), f.id.clone()),
            ("trigger".into(), f.trigger.clone()),
        ]),
    };
    n
}

/// Which part of a digest a rendering is, and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct DigestPart<'a> {
    /// The scan.
    pub summary: &'a ScanSummary,
    /// Every finding of the scan (for the counts).
    pub all: &'a [Finding],
    /// The findings this part lists.
    pub findings: &'a [Finding],
    /// Index of this part's first finding in `all`.
    pub first: usize,
    /// 1-based part number.
    pub part: usize,
    /// Number of parts.
    pub parts: usize,
}

impl DigestPart<'_> {
    /// `7 findings: 1 critical, 3 high` and ` (part 1/2)` when split.
    #[must_use]
    pub fn headline(&self) -> String {
        let part = if self.parts > 1 { format!(" (part {}/{})", self.part, self.parts) } else { String::new() };
        format!("daily scan of {}: {}{part}", self.summary.account, super::text::summary(self.all))
    }

    /// Counts by severity, most severe first, only those present.
    #[must_use]
    pub fn by_severity(&self) -> Vec<(Severity, usize)> {
        Severity::ALL_DESCENDING
            .into_iter()
            .map(|s| (s, self.all.iter().filter(|f| f.severity == s).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Counts by check, most frequent first.
    #[must_use]
    pub fn by_check(&self) -> Vec<(&'static str, usize)> {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for f in self.all {
            *counts.entry(f.check.as_str()).or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// The thread every part of one day's digest shares.
    #[must_use]
    pub fn thread_id(&self) -> String {
        crate::finding::stable_id(&[
            &self.summary.account,
            crate::domain::message::DIGEST_CHECK,
            &self.summary.observed_at.format("%Y-%m-%d").to_string(),
        ])
    }
}

/// The custom notification for one digest part: the scan's facts and counts, then this
/// part's findings, most severe first, as many as the description holds.
#[must_use]
pub fn digest(p: &DigestPart<'_>) -> Notification {
    let s = p.summary;
    let mut d = format!(
        "*Account:* {} · {} · scanned {}\n*Users scanned:* {}",
        code(&s.account),
        plain(&s.region),
        s.observed_at.format("%Y-%m-%d %H:%M UTC"),
        s.users_scanned
    );
    match s.credential_report_generated_at {
        Some(t) => {
            let _ = write!(d, " · *credential report generated* {}", t.format("%Y-%m-%d %H:%M UTC"));
        }
        None => d.push_str(" · *credential report:* generation time unknown"),
    }
    if !s.users_not_in_report.is_empty() || !s.users_deleted_since_report.is_empty() {
        let _ = write!(
            d,
            "\n*Not yet in the report:* {} (tag checks only) · *deleted since the report:* {}",
            s.users_not_in_report.len(),
            s.users_deleted_since_report.len()
        );
    }
    let sev: Vec<String> = p.by_severity().iter().map(|(s, n)| format!("{s} {n}")).collect();
    let _ = write!(d, "\n*By severity:* {}", if sev.is_empty() { "none".into() } else { sev.join(" · ") });
    let checks: Vec<String> = p.by_check().iter().map(|(c, n)| format!("{} {n}", code(c))).collect();
    if !checks.is_empty() {
        let _ = write!(d, "\n*By check:* {}", checks.join(" · "));
    }
    if p.parts > 1 {
        let _ = write!(d, "\n*This part:* findings {}–{} of {}", p.first + 1, p.first + p.findings.len(), p.all.len());
    }
    if !p.findings.is_empty() {
        d.push_str("\n*Findings:*");
        // Leave room for the closing line; list as many as fit.
        let budget = DESCRIPTION_MAX - 120;
        let mut used = d.chars().count();
        for (listed, f) in p.findings.iter().enumerate() {
            let line = format!(
                "\n• [{}] {} {} — {}",
                f.severity.as_str().to_ascii_uppercase(),
                code(f.check.as_str()),
                code(who(f)),
                truncate(&plain(&f.message), 200)
            );
            let len = line.chars().count();
            if used + len > budget {
                let _ = write!(
                    d,
                    "\n… and {} more: the e-mail digest and the JSON message list every finding.",
                    p.findings.len() - listed
                );
                break;
            }
            used += len;
            d.push_str(&line);
        }
    }
    let worst = p.all.iter().map(|f| f.severity).max().unwrap_or(Severity::Info);
    let title = format!(":bar_chart: iam-sentinel {}", p.headline());
    let mut n = Notification::new(
        format!("{}-{}", p.thread_id(), p.part),
        &title,
        &d,
        &["Act on the most severe findings first; each high or critical finding also has its own thread.".into()],
        &["digest".into(), s.account.clone(), worst.as_str().into()],
    );
    n.metadata = Metadata {
        thread_id: p.thread_id(),
        summary: truncate(&p.headline(), SUMMARY_MAX),
        event_type: EVENT_DIGEST.into(),
        related_resources: vec![format!("arn:aws:iam::{}:root", s.account)],
        additional_context: BTreeMap::from([
            ("severity".into(), worst.as_str().into()),
            ("check".into(), crate::domain::message::DIGEST_CHECK.into()),
            ("account".into(), s.account.clone()),
            ("region".into(), s.region.clone()),
            ("findings_total".into(), p.all.len().to_string()),
            ("part".into(), format!("{}/{}", p.part, p.parts)),
        ]),
    };
    n
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::finding::{CheckId, Remediation, RemediationStatus, Scope};
    use serde_json::{Value, json};

    pub(crate) fn alice() -> Finding {
        let scope = Scope {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            trigger: "event:TagUser".into(),
            now: "2026-11-23T10:00:00Z".parse().unwrap(),
        };
        let mut f = scope.finding(
            CheckId::ExceptionUnapproved,
            "arn:aws:iam::123456789012:user/alice",
            "alice carries AccessException=True with no approval in the registry".into(),
        );
        f.user = Some("alice".into());
        f.evidence = json!({"tag_key": "AccessException", "tag_value": "True", "tagged_by": "arn:aws:iam::123456789012:user/bob"});
        f.remediation = Some(Remediation { action: "untag".into(), status: RemediationStatus::Applied, detail: None });
        f.id = f.stable_id();
        f
    }

    /// Checks a document against the schema: exact field names, required fields, fixed
    /// values and every documented limit.
    pub(crate) fn assert_valid(doc: &str) {
        let v: Value = serde_json::from_str(doc).unwrap();
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&v), ["content", "id", "metadata", "source", "version"]);
        assert_eq!(keys(&v["content"]), ["description", "keywords", "nextSteps", "textType", "title"]);
        assert_eq!(keys(&v["metadata"]), ["additionalContext", "eventType", "relatedResources", "summary", "threadId"]);
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["source"], "custom");
        assert_eq!(v["content"]["textType"], "client-markdown");
        let chars = |v: &Value| v.as_str().unwrap().chars().count();
        assert!((1..=TITLE_MAX).contains(&chars(&v["content"]["title"])));
        assert!((1..=DESCRIPTION_MAX).contains(&chars(&v["content"]["description"])));
        let steps = v["content"]["nextSteps"].as_array().unwrap();
        assert!((1..=NEXT_STEPS_MAX).contains(&steps.len()));
        assert!(steps.iter().all(|s| (1..=NEXT_STEP_MAX).contains(&chars(s))));
        let keywords = v["content"]["keywords"].as_array().unwrap();
        assert!((1..=KEYWORDS_MAX).contains(&keywords.len()));
        assert!(keywords.iter().all(|k| (1..=KEYWORD_MAX).contains(&chars(k))));
        assert!(!v["metadata"]["threadId"].as_str().unwrap().is_empty());
        assert!((1..=SUMMARY_MAX).contains(&chars(&v["metadata"]["summary"])));
        assert!(v["metadata"]["relatedResources"].as_array().unwrap().iter().all(Value::is_string));
        assert!(v["metadata"]["additionalContext"].as_object().unwrap().values().all(Value::is_string));
    }

    #[test]
    fn a_finding_renders_as_a_valid_custom_notification_with_every_fact() {
        let f = alice();
        let doc = finding(&f).to_json();
        assert_valid(&doc);
        let n: Notification = serde_json::from_str(&doc).unwrap();
        assert_eq!(n.content.title, ":red_circle: [HIGH] exception-unapproved: alice");
        let d = &n.content.description;
        for fact in [
            "alice carries AccessException=True with no approval in the registry",
            "*User:* `alice` (`arn:aws:iam::123456789012:user/alice`)",
            "*Account:* `123456789012` · us-east-1",
            "• tag_value: `True`",
            "• tagged_by: `arn:aws:iam::123456789012:user/bob`",
            "*Remediation:* untag: applied (the exception tag was removed)",
            "*What to do:* Remove the AccessException tag",
        ] {
            assert!(d.contains(fact), "{fact:?} missing from\n{d}");
        }
        assert_eq!(n.metadata.thread_id, f.thread_id());
        assert_eq!(n.metadata.event_type, EVENT_FINDING);
        assert_eq!(n.metadata.related_resources, ["arn:aws:iam::123456789012:user/alice"]);
        let ctx = &n.metadata.additional_context;
        assert_eq!(
            [&ctx["severity"], &ctx["check"], &ctx["account"], &ctx["region"]],
            ["high", "exception-unapproved", "123456789012", "us-east-1"]
        );
        assert_eq!(n.content.keywords, ["high", "exception-unapproved", "123456789012"]);
    }

    #[test]
    fn a_resolved_finding_is_announced_in_the_same_thread() {
        let open = alice();
        let mut resolved = open.clone();
        resolved.state = FindingState::Resolved;
        resolved.observed_at = "2026-12-02T06:00:00Z".parse().unwrap();
        let doc = finding(&resolved).to_json();
        assert_valid(&doc);
        let n: Notification = serde_json::from_str(&doc).unwrap();
        assert_eq!(n.metadata.thread_id, finding(&open).metadata.thread_id, "same thread, another day");
        assert!(n.content.title.starts_with(":white_check_mark: Resolved: [HIGH] exception-unapproved"));
        assert!(n.content.description.starts_with("*Resolved:*"));
        assert_eq!(n.metadata.event_type, EVENT_RESOLVED);
        assert_eq!(n.metadata.additional_context["state"], "resolved");
        assert!(n.content.keywords.contains(&"resolved".to_owned()));
        assert_ne!(n.id, finding(&open).id);
    }

    #[test]
    fn a_long_evidence_value_is_cut_and_the_description_stays_within_its_limit() {
        let mut f = alice();
        f.evidence = json!({"policy": "x".repeat(50_000), "other": "y".repeat(5_000), "z": "ok"});
        let n = finding(&f);
        assert_valid(&n.to_json());
        assert!(n.content.description.contains(&format!("`{}…`", "x".repeat(EVIDENCE_VALUE_MAX - 1))));
        assert!(!n.content.description.contains(&"x".repeat(EVIDENCE_VALUE_MAX + 1)));
        let mut many = alice();
        many.evidence = Value::Object((0..200).map(|i| (format!("k{i}"), json!("v".repeat(290)))).collect());
        let n = finding(&many);
        assert_valid(&n.to_json());
        assert!(n.content.description.ends_with("the JSON message has every detail)"));
    }

    #[test]
    fn hostile_values_mention_nobody_and_stay_in_their_span() {
        let mut f = alice();
        f.user = Some("<!channel> `x` *bold*\n*Account:* 999999999999".into());
        f.evidence = json!({"tag_value": "<@U123> ``` break"});
        let n = finding(&f);
        assert_valid(&n.to_json());
        let d = &n.content.description;
        assert!(!d.contains('<') && !d.contains('>'), "{d}");
        assert!(d.contains("`‹!channel› 'x' *bold* *Account:* 999999999999`"), "{d}");
        assert_eq!(d.lines().filter(|l| l.starts_with("*Account:*")).count(), 1, "no forged line");
        assert!(!n.content.title.contains('<') && !n.content.title.contains('\n'));
    }

    #[test]
    fn a_digest_part_is_valid_counts_first_and_lists_what_fits() {
        let summary = crate::message::tests::summary();
        let all: Vec<Finding> = (0..500).map(|_| alice()).collect();
        let p = DigestPart { summary: &summary, all: &all, findings: &all[..250], first: 0, part: 1, parts: 2 };
        let n = digest(&p);
        assert_valid(&n.to_json());
        let d = &n.content.description;
        assert!(d.contains("*By severity:* high 500"), "{d}");
        assert!(d.contains("*This part:* findings 1–250 of 500"), "{d}");
        assert!(d.contains(" more: the e-mail digest and the JSON message list every finding."), "{d}");
        assert!(n.content.title.ends_with("500 findings: 500 high (part 1/2)"), "{}", n.content.title);
        let p2 = DigestPart { part: 2, first: 250, findings: &all[250..], ..p };
        assert_eq!(digest(&p2).metadata.thread_id, n.metadata.thread_id, "one thread per day's digest");
        assert_eq!(n.metadata.event_type, EVENT_DIGEST);
    }
}
