//! The root account (credential report's `<root_account>` row): no access keys, MFA on.

use serde_json::json;

use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::RootSnapshot;

/// Root checks: one finding per active root key, one if root has no MFA.
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
        let mut f = scope.finding(
            CheckId::RootWithoutMfa,
            &root.arn,
            "the root account has no MFA device: enable one now".to_owned(),
        );
        f.evidence = json!({ "mfa_active": false });
        out.push(f);
    }
    out
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
}
