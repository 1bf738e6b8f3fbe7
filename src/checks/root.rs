//! The root account: no access keys, MFA on, and every use of it reported.
//!
//! The scan reads root's state from the credential report's `<root_account>` row; the event
//! path reads the account summary (`GetAccountSummary`, one call) when root acts.

use serde_json::json;

use super::{Actor, CallContext};
pub use crate::domain::account::RootSummary;
use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::RootSnapshot;

/// Root checks on the credential report row: one finding per active root key, one if root has no MFA.
#[must_use]
pub fn check_root(root: &RootSnapshot, scope: &Scope) -> Vec<Finding> {
    let mut out = Vec::new();
    for key in root.keys.iter().filter(|k| k.active) {
        let resource = key.resource();
        let mut f = scope.finding(
            CheckId::RootAccessKey,
            &root.arn,
            format!("the root account has an active access key ({resource}): delete it"),
        );
        f.resource = Some(resource);
        f.evidence = json!({ "created": key.created, "last_used": key.last_used });
        out.push(f);
    }
    if !root.mfa_active {
        out.push(root_without_mfa(scope, &root.arn, json!({ "mfa_active": false })));
    }
    out
}

/// Root checks on the account summary read when root acted; the event is the evidence.
#[must_use]
pub fn check_root_summary(
    summary: RootSummary,
    event_name: &str,
    actor: &Actor,
    context: &CallContext,
    access_key_id: Option<&str>,
    scope: &Scope,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if summary.access_keys_present {
        let mut f = scope.finding(
            CheckId::RootAccessKey,
            &actor.arn,
            format!(
                "the root account has an access key{} (seen after root's {event_name}): delete it and use roles",
                access_key_id.map(|k| format!(" ({k})")).unwrap_or_default()
            ),
        );
        f.resource = access_key_id.map(str::to_owned);
        f.evidence = context.evidence(event_name, actor);
        f.evidence["account_access_keys_present"] = json!(true);
        out.push(f);
    }
    if !summary.mfa_enabled {
        let mut evidence = context.evidence(event_name, actor);
        evidence["account_mfa_enabled"] = json!(false);
        out.push(root_without_mfa(scope, &actor.arn, evidence));
    }
    out
}

/// `root-used`: the root user made a call or signed in. Root should be used for almost nothing.
#[must_use]
pub fn root_used(event_name: &str, actor: &Actor, context: &CallContext, scope: &Scope) -> Finding {
    let how = match context.mfa_authenticated {
        Some(true) => " with MFA",
        Some(false) => " WITHOUT MFA",
        None => "",
    };
    let from = context.source_ip.as_deref().map(|ip| format!(" from {ip}")).unwrap_or_default();
    let action = if event_name == "ConsoleLogin" {
        "signed in to the console".to_owned()
    } else {
        format!("called {event_name}")
    };
    let mut f = scope.finding(
        CheckId::RootUsed,
        &actor.arn,
        format!("the root user {action}{from}{how}: confirm who it was, and use IAM roles instead"),
    );
    f.evidence = context.evidence(event_name, actor);
    f
}

fn root_without_mfa(scope: &Scope, arn: &str, evidence: serde_json::Value) -> Finding {
    let mut f =
        scope.finding(CheckId::RootWithoutMfa, arn, "the root account has no MFA device: enable one now".to_owned());
    f.evidence = evidence;
    f
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::snapshot::{AccessKey, KeyRef};

    #[test]
    fn root_key_and_missing_mfa_are_critical() {
        let root = RootSnapshot {
            arn: "arn:aws:iam::123456789012:root".into(),
            keys: vec![
                AccessKey { key: KeyRef::Slot(1), active: true, created: days_ago(3), last_used: None },
                AccessKey { key: KeyRef::Slot(2), active: false, created: days_ago(3), last_used: None },
            ],
            mfa_active: false,
        };
        let f = check_root(&root, &scope());
        assert_eq!(checks_of(&f), ["root-access-key", "root-without-mfa"]);
        assert!(f.iter().all(|f| f.severity == crate::finding::Severity::Critical));
        assert!(f[0].resource.as_deref().unwrap().starts_with("access_key_1 created"));
    }

    #[test]
    fn a_clean_root_has_no_findings() {
        let root = RootSnapshot { arn: "arn:aws:iam::1:root".into(), keys: vec![], mfa_active: true };
        assert!(check_root(&root, &scope()).is_empty());
    }

    fn root_actor() -> Actor {
        Actor { arn: "arn:aws:iam::123456789012:root".into(), issuer_arn: None, root: true }
    }

    fn context(mfa: Option<bool>) -> CallContext {
        CallContext {
            event_time: Some(days_ago(0)),
            source_ip: Some("198.51.100.7".into()),
            user_agent: Some("console.amazonaws.com".into()),
            mfa_authenticated: mfa,
        }
    }

    #[test]
    fn the_account_summary_gives_root_findings_with_the_event_as_evidence() {
        let summary = RootSummary { access_keys_present: true, mfa_enabled: false, ..RootSummary::default() };
        let f = check_root_summary(
            summary,
            "CreateAccessKey",
            &root_actor(),
            &context(Some(false)),
            Some("AKIAROOT"),
            &scope(),
        );
        assert_eq!(checks_of(&f), ["root-access-key", "root-without-mfa"]);
        assert_eq!(f[0].resource.as_deref(), Some("AKIAROOT"));
        assert_eq!(f[0].evidence["caller"], "arn:aws:iam::123456789012:root");
        assert_eq!(f[0].evidence["event"], "CreateAccessKey");
        assert_eq!(f[1].evidence["event_time"], json!(days_ago(0)));
        let clean = RootSummary { access_keys_present: false, mfa_enabled: true, ..RootSummary::default() };
        assert!(check_root_summary(clean, "EnableMFADevice", &root_actor(), &context(None), None, &scope()).is_empty());
    }

    #[test]
    fn root_use_is_critical_and_says_how() {
        let f = root_used("ConsoleLogin", &root_actor(), &context(Some(false)), &scope());
        assert_eq!(f.check, CheckId::RootUsed);
        assert_eq!(f.severity, crate::finding::Severity::Critical);
        assert!(f.message.contains("signed in to the console from 198.51.100.7 WITHOUT MFA"), "{}", f.message);
        assert_eq!(f.user, None, "root is not an IAM user");
        let f = root_used("EnableMFADevice", &root_actor(), &context(Some(true)), &scope());
        assert!(f.message.contains("called EnableMFADevice") && f.message.contains("with MFA"), "{}", f.message);
    }
}
