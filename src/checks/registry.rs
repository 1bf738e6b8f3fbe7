//! The approvals registry is a privilege: a write to it by anyone outside `APPROVER_PRINCIPALS`
//! is reported at once, with the approvals it added and removed as evidence (never a `reason`,
//! never any other text of the secret).

use serde_json::{Value, json};

use super::{Actor, CallContext};
use crate::approvals::ExceptionApproval;
use crate::config::Policy;
pub use crate::domain::registry::Version;
use crate::finding::{CheckId, Finding, Scope};

/// Whether `given` (a secret id as a caller wrote it: name, full ARN or partial ARN) names the
/// same secret as `configured` (`APPROVALS_SECRET_ID`, a name or an ARN). A full ARN ends in
/// `-` and six random characters that names and partial ARNs lack; two ARNs must also agree on
/// partition, region and account.
#[must_use]
pub fn secret_matches(configured: &str, given: &str) -> bool {
    let (prefix_a, name_a) = split_secret_id(configured);
    let (prefix_b, name_b) = split_secret_id(given);
    if let (Some(a), Some(b)) = (prefix_a, prefix_b)
        && a != b
    {
        return false;
    }
    name_a == name_b || without_suffix(name_a) == Some(name_b) || without_suffix(name_b) == Some(name_a)
}

/// `arn:aws:secretsmanager:R:A:secret:NAME…` → (`Some("arn:aws:secretsmanager:R:A")`, `NAME…`); a name → (None, name).
fn split_secret_id(id: &str) -> (Option<&str>, &str) {
    match id.find(":secret:") {
        Some(i) if id.starts_with("arn:") => (Some(&id[..i]), &id[i + ":secret:".len()..]),
        _ => (None, id),
    }
}

/// `NAME-AbCdEf` → `NAME` (the suffix Secrets Manager appends to a secret's ARN).
fn without_suffix(name: &str) -> Option<&str> {
    let (base, suffix) = name.rsplit_once('-')?;
    (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) && !base.is_empty()).then_some(base)
}

/// Whether `actor` is one of `APPROVER_PRINCIPALS` (a role matches its sessions). With none
/// configured, nobody is an approver: every write to the registry is reported.
#[must_use]
pub fn is_approver(policy: &Policy, actor: &Actor) -> bool {
    policy.approver_principals.iter().any(|p| actor.is(p))
}

/// What could be learnt about the content the change left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `AWSPREVIOUS` and `AWSCURRENT`, read when the event was handled.
    Compared {
        /// `AWSPREVIOUS`.
        previous: Version,
        /// `AWSCURRENT`.
        current: Version,
    },
    /// The change has no content to compare (deletion, restore, resource policy); the reason says so.
    NotCompared(String),
    /// Reading a version failed (the error names the call, never content).
    Unreadable(String),
}

/// The event names whose content is compared: those that can move `AWSCURRENT`.
#[must_use]
pub fn changes_content(event_name: &str) -> bool {
    matches!(event_name, "PutSecretValue" | "UpdateSecret" | "UpdateSecretVersionStage")
}

/// Why an event's content is not compared.
#[must_use]
pub fn not_compared_reason(event_name: &str) -> String {
    match event_name {
        "DeleteSecret" => "DeleteSecret schedules the registry's deletion: no content changed, but once deleted no \
                           exception can be approved"
            .into(),
        "RestoreSecret" => "RestoreSecret cancels a scheduled deletion: the content is what it was".into(),
        "PutResourcePolicy" | "DeleteResourcePolicy" => {
            format!("{event_name} changes who may read or write the registry, not its content")
        }
        other => format!("{other} has no content to compare"),
    }
}

fn entry(a: &ExceptionApproval) -> Value {
    // Never `reason`: free text may hold anything.
    json!({ "user": a.user, "ticket": a.ticket, "expires": a.expires, "approved_by": a.approved_by })
}

fn same(a: &ExceptionApproval, b: &ExceptionApproval) -> bool {
    a.user.eq_ignore_ascii_case(&b.user)
        && a.ticket == b.ticket
        && a.expires == b.expires
        && a.approved_by == b.approved_by
}

/// Approvals in `after` but not in `before` (an approval whose ticket, expiry or approver
/// changed is one removed and one added).
#[must_use]
pub fn added<'a>(before: &[ExceptionApproval], after: &'a [ExceptionApproval]) -> Vec<&'a ExceptionApproval> {
    after.iter().filter(|a| !before.iter().any(|b| same(a, b))).collect()
}

fn content_evidence(content: &Content) -> Value {
    let entries = |v: &Version| match v {
        Version::Valid(a) => a.entries().to_vec(),
        Version::Missing | Version::Invalid(_) => Vec::new(),
    };
    match content {
        Content::Compared { previous, current } => {
            let (before, after) = (entries(previous), entries(current));
            let mut e = json!({
                "compared": "AWSPREVIOUS with AWSCURRENT, as read when the event was handled",
                "approvals_added": added(&before, &after).into_iter().map(entry).collect::<Vec<_>>(),
                "approvals_removed": added(&after, &before).into_iter().map(entry).collect::<Vec<_>>(),
            });
            for (stage, version) in [("previous", previous), ("current", current)] {
                match version {
                    Version::Missing => e[format!("{stage}_version")] = json!("none"),
                    Version::Invalid(problem) => e[format!("{stage}_version_invalid")] = json!(problem),
                    Version::Valid(_) => {}
                }
            }
            e
        }
        Content::NotCompared(why) => json!({ "content_compared": false, "note": why }),
        Content::Unreadable(error) => {
            json!({ "content_compared": false, "note": format!("the versions could not be read: {error}") })
        }
    }
}

/// What the registry write was.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// `PutSecretValue`, `DeleteSecret`, …
    pub event_name: &'a str,
    /// The secret as the caller named it.
    pub secret_id: &'a str,
    /// Who wrote it.
    pub actor: &'a Actor,
    /// When, from where.
    pub context: &'a CallContext,
}

/// `registry-changed-by-non-approver`: the principal is the registry secret, the caller and the
/// approvals added and removed are the evidence.
#[must_use]
pub fn changed_by_non_approver(write: &Write<'_>, content: &Content, policy: &Policy, scope: &Scope) -> Finding {
    let Write { event_name, secret_id, actor, context } = *write;
    let why = if policy.approver_principals.is_empty() {
        "APPROVER_PRINCIPALS is empty, so no principal is an approver"
    } else {
        "the caller is not in APPROVER_PRINCIPALS"
    };
    let summary = match content {
        Content::Compared { .. } => {
            let e = content_evidence(content);
            let n = |k: &str| e[k].as_array().map_or(0, Vec::len);
            format!(": {} approval(s) added, {} removed", n("approvals_added"), n("approvals_removed"))
        }
        Content::NotCompared(_) | Content::Unreadable(_) => String::new(),
    };
    let mut f = scope.finding(
        CheckId::RegistryChangedByNonApprover,
        secret_id,
        format!("the approvals registry was changed ({event_name}) by {} and {why}{summary}", actor.arn),
    );
    let mut e = json!({
        "event": event_name,
        "secret_id": secret_id,
        "caller": actor.arn,
        "caller_role": actor.issuer_arn,
        "event_time": context.event_time,
        "source_ip": context.source_ip,
        "user_agent": context.user_agent,
        "mfa_authenticated": context.mfa_authenticated,
        "why": why,
    });
    if let (Some(target), Value::Object(extra)) = (e.as_object_mut(), content_evidence(content)) {
        target.extend(extra);
    }
    f.evidence = e;
    f
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::approvals::Approvals;

    const NAME: &str = "iam-sentinel/approvals";
    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-sentinel/approvals-Ab3dEf";

    #[test]
    fn a_secret_matches_by_name_full_arn_or_partial_arn() {
        let partial = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-sentinel/approvals";
        for (configured, given) in [(NAME, NAME), (NAME, ARN), (ARN, NAME), (ARN, ARN), (ARN, partial), (partial, ARN)]
        {
            assert!(secret_matches(configured, given), "{configured} vs {given}");
        }
        let other_account = ARN.replace("123456789012", "210987654321");
        for (configured, given) in [
            (ARN, other_account.as_str()),
            (NAME, "iam-sentinel/approvals-old"),
            (NAME, "other/approvals"),
            (NAME, "iam-sentinel/approvals/x"),
            (ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-sentinel/approvals-Zz9yXw"),
        ] {
            assert!(!secret_matches(configured, given), "{configured} vs {given}");
        }
    }

    #[test]
    fn approvers_are_principals_or_their_roles_and_none_configured_means_none() {
        let session = Actor {
            arn: "arn:aws:sts::123456789012:assumed-role/SecurityAdmin/jdoe".into(),
            issuer_arn: Some("arn:aws:iam::123456789012:role/SecurityAdmin".into()),
            root: false,
        };
        let policy = Policy {
            approver_principals: vec!["arn:aws:iam::123456789012:role/SecurityAdmin".into()],
            ..Policy::default()
        };
        assert!(is_approver(&policy, &session));
        assert!(!is_approver(&Policy::default(), &session));
    }

    fn approval(user: &str, ticket: &str) -> ExceptionApproval {
        ExceptionApproval {
            user: user.into(),
            approved_by: "sec-lead@example.com".into(),
            ticket: ticket.into(),
            expires: days_ago(-30),
            reason: Some("SECRET-REASON-TEXT".into()),
            account: None,
        }
    }

    fn write_finding(what: &Content, policy: &Policy) -> Finding {
        let actor = Actor { arn: "arn:aws:iam::123456789012:user/dev-mallory".into(), issuer_arn: None, root: false };
        let context = CallContext {
            event_time: Some(days_ago(0)),
            source_ip: Some("198.51.100.23".into()),
            ..CallContext::default()
        };
        let write = Write { event_name: "PutSecretValue", secret_id: ARN, actor: &actor, context: &context };
        changed_by_non_approver(&write, what, policy, &scope())
    }

    #[test]
    fn the_evidence_is_the_approvals_added_and_removed_without_reasons() {
        let before = Approvals::new(vec![approval("alice", "SEC-1"), approval("bob", "SEC-2")]);
        let after =
            Approvals::new(vec![approval("alice", "SEC-1"), approval("bob", "SEC-3"), approval("dev-mallory", "X")]);
        let content = Content::Compared { previous: Version::Valid(before), current: Version::Valid(after) };
        let f = write_finding(&content, &Policy::default());
        assert_eq!((f.check, f.severity), (CheckId::RegistryChangedByNonApprover, crate::finding::Severity::Critical));
        assert_eq!(f.principal, ARN);
        let added: Vec<&str> =
            f.evidence["approvals_added"].as_array().unwrap().iter().map(|a| a["user"].as_str().unwrap()).collect();
        assert_eq!(added, ["bob", "dev-mallory"]);
        assert_eq!(f.evidence["approvals_removed"][0]["ticket"], "SEC-2");
        assert_eq!(f.evidence["caller"], "arn:aws:iam::123456789012:user/dev-mallory");
        assert!(f.message.contains("2 approval(s) added, 1 removed"), "{}", f.message);
        assert!(f.message.contains("APPROVER_PRINCIPALS is empty"), "{}", f.message);
        assert!(!f.evidence.to_string().contains("SECRET-REASON-TEXT"), "reason never leaves the secret");
    }

    #[test]
    fn without_a_previous_version_everything_is_added_and_invalid_versions_are_named() {
        let content = Content::Compared {
            previous: Version::Missing,
            current: Version::Valid(Approvals::new(vec![approval("alice", "SEC-1")])),
        };
        let f = write_finding(&content, &Policy::default());
        assert_eq!(f.evidence["approvals_added"].as_array().unwrap().len(), 1);
        assert_eq!(f.evidence["previous_version"], "none");
        let content = Content::Compared {
            previous: Version::Valid(Approvals::new(vec![approval("alice", "SEC-1")])),
            current: Version::Invalid("approvals registry entry 0 (bob): field `ticket` is missing or empty".into()),
        };
        let f = write_finding(&content, &Policy::default());
        assert_eq!(f.evidence["approvals_removed"].as_array().unwrap().len(), 1);
        assert!(f.evidence["current_version_invalid"].as_str().unwrap().contains("ticket"));
    }

    #[test]
    fn deletions_and_policies_say_there_is_nothing_to_compare() {
        assert!(changes_content("PutSecretValue") && !changes_content("DeleteSecret"));
        let f = write_finding(&Content::NotCompared(not_compared_reason("DeleteSecret")), &Policy::default());
        assert_eq!(f.evidence["content_compared"], false);
        assert!(f.evidence["note"].as_str().unwrap().contains("deletion"));
        assert!(f.evidence.get("approvals_added").is_none());
        let f = write_finding(
            &Content::Unreadable("secretsmanager:GetSecretValue on x failed: boom".into()),
            &Policy::default(),
        );
        assert!(f.evidence["note"].as_str().unwrap().contains("could not be read"));
    }
}
