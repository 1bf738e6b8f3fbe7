//! OCSF 1.1.0 Detection Finding (class 2004), one event per finding, for SIEMs and security lakes.
//!
//! Detection Finding is what Prowler emits for its AWS checks (`prowler/lib/outputs/ocsf/`,
//! built on py-ocsf-models, whose schema version is 1.1.0); a Compliance Finding (2003) would
//! need a `compliance` object per standard, while most of our checks (the exception policy)
//! belong to no standard. The CIS control, when there is one, travels in `unmapped.compliance`,
//! as Prowler does. Schema: <https://schema.ocsf.io/1.1.0/classes/detection_finding>.

use serde_json::{Value, json};

use super::asff::{cis_control, cis_requirement};
use crate::finding::{Finding, FindingState, Severity};

/// The pinned OCSF schema version.
pub const OCSF_VERSION: &str = "1.1.0";
/// Detection Finding.
pub const CLASS_UID: u32 = 2004;
/// Findings.
pub const CATEGORY_UID: u32 = 2;

/// OCSF `severity_id` and its caption.
fn severity(s: Severity) -> (u8, &'static str) {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn resources(f: &Finding) -> Vec<Value> {
    let mut out = vec![json!({
        "uid": f.principal,
        "name": f.user.as_deref().unwrap_or(&f.principal),
        "type": if f.principal.ends_with(":root") { "AwsAccount" } else if f.user.is_some() { "AwsIamUser" } else { "Other" },
        "region": f.region,
        "group": { "name": "iam" },
    })];
    if let Some(key) = &f.resource {
        out.push(json!({ "uid": key, "name": key, "type": "AwsIamAccessKey", "region": f.region, "group": { "name": "iam" } }));
    }
    out
}

/// The Detection Finding event of `f`: activity Create and status New while open, Close and
/// Resolved once resolved.
#[must_use]
pub fn event(f: &Finding) -> Value {
    let (severity_id, severity_name) = severity(f.severity);
    let resolved = f.state == FindingState::Resolved;
    let (activity_id, activity) = if resolved { (3, "Close") } else { (1, "Create") };
    let (status_id, status) = if resolved { (4, "Resolved") } else { (1, "New") };
    let time = f.observed_at.timestamp_millis();
    let compliance = cis_control(f.check).map(|c| json!({ "CIS-5.0": [c], "requirements": [cis_requirement(c)] }));
    json!({
        "metadata": {
            "version": OCSF_VERSION,
            "product": { "name": "iam-sentinel", "vendor_name": "iam-sentinel", "uid": "iam-sentinel", "version": env!("CARGO_PKG_VERSION") },
            "event_code": f.check.as_str(),
            "uid": f.id,
            "profiles": ["cloud"],
        },
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Detection Finding",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": CLASS_UID * 100 + activity_id,
        "type_name": format!("Detection Finding: {activity}"),
        "severity_id": severity_id,
        "severity": severity_name,
        "status_id": status_id,
        "status": status,
        "status_code": if resolved { "PASS" } else { "FAIL" },
        "message": f.message,
        "time": time,
        "finding_info": {
            "uid": f.thread_id(),
            "title": format!("{}: {}", f.check, f.user.as_deref().unwrap_or(&f.principal)),
            "desc": f.message,
            "types": [f.check.as_str()],
            "created_time": time,
        },
        "cloud": { "provider": "AWS", "region": f.region, "account": account(f) },
        "resources": resources(f),
        "remediation": { "desc": super::text::what_to_do(f.check) },
        "unmapped": {
            "trigger": f.trigger,
            "evidence": f.evidence,
            "remediation": f.remediation,
            "compliance": compliance,
        },
    })
}

/// The cloud profile's account: its id, and its name in the organization when known.
fn account(f: &Finding) -> serde_json::Value {
    let mut account = json!({ "uid": f.account, "type_id": 10, "type": "AWS Account" });
    if let Some(name) = &f.account_name {
        account["name"] = json!(name);
    }
    account
}

/// Every finding as OCSF, one event per line (NDJSON), as log shippers and lakes ingest it.
#[must_use]
pub fn render(findings: &[Finding]) -> String {
    findings.iter().map(|f| event(f).to_string() + "\n").collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{CheckId, Scope};

    /// Required attributes of Detection Finding 1.1.0 with the cloud profile, from the schema
    /// (<https://schema.ocsf.io/1.1.0/classes/detection_finding>, as py-ocsf-models 1.1.0 marks
    /// them Required): base event `metadata`, `severity_id`; finding `activity_id`,
    /// `finding_info`; class `category_uid`, `class_uid`, `time`, `type_uid`; cloud profile `cloud`.
    const REQUIRED: &[&str] = &[
        "activity_id",
        "category_uid",
        "class_uid",
        "finding_info",
        "metadata",
        "severity_id",
        "time",
        "type_uid",
        "cloud",
    ];
    /// Required inside the objects: `finding_info` (title, uid), `metadata` (product, version),
    /// `cloud` (provider).
    const REQUIRED_NESTED: &[(&str, &str)] = &[
        ("finding_info", "title"),
        ("finding_info", "uid"),
        ("metadata", "product"),
        ("metadata", "version"),
        ("cloud", "provider"),
    ];

    fn finding(check: CheckId) -> Finding {
        let scope = Scope {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            trigger: "schedule".into(),
            now: "2026-11-23T10:00:00Z".parse().unwrap(),
        };
        let mut f = scope.finding(check, "arn:aws:iam::123456789012:user/alice", "message".into());
        f.user = Some("alice".into());
        f.resource = Some("access_key_1 created 2026-05-07".into());
        f
    }

    fn assert_valid(doc: &Value) {
        for attr in REQUIRED {
            assert!(!doc[attr].is_null(), "{attr} missing in {doc}");
        }
        for (object, attr) in REQUIRED_NESTED {
            assert!(!doc[object][attr].is_null(), "{object}.{attr} missing");
        }
        assert_eq!(doc["class_uid"], CLASS_UID);
        assert_eq!(doc["category_uid"], CATEGORY_UID);
        assert_eq!(doc["metadata"]["version"], OCSF_VERSION);
        let activity = doc["activity_id"].as_u64().unwrap();
        assert!([1, 2, 3].contains(&activity));
        assert_eq!(doc["type_uid"].as_u64().unwrap(), u64::from(CLASS_UID) * 100 + activity);
        assert!((1..=5).contains(&doc["severity_id"].as_u64().unwrap()));
        assert!([1, 4].contains(&doc["status_id"].as_u64().unwrap()));
        assert!(doc["time"].is_i64());
    }

    #[test]
    fn every_check_is_a_valid_detection_finding() {
        for check in CheckId::ALL {
            assert_valid(&event(&finding(*check)));
        }
        let out = render(&[finding(CheckId::AccessKeyStale), finding(CheckId::RootAccessKey)]);
        assert_eq!(out.lines().count(), 2);
        for line in out.lines() {
            assert_valid(&serde_json::from_str(line).unwrap());
        }
    }

    #[test]
    fn a_resolved_finding_closes_the_same_finding_uid() {
        let open = finding(CheckId::AccessKeyStale);
        let mut resolved = open.clone();
        resolved.state = FindingState::Resolved;
        let (a, b) = (event(&open), event(&resolved));
        assert_valid(&b);
        assert_eq!(a["finding_info"]["uid"], b["finding_info"]["uid"]);
        assert_eq!((b["activity_id"].as_u64(), b["status_id"].as_u64()), (Some(3), Some(4)));
        assert_eq!(a["unmapped"]["compliance"]["requirements"][0], "CIS AWS Foundations Benchmark v5.0.0/1.13");
    }
}
