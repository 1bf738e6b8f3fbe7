//! AWS Security Finding Format (ASFF) for Security Hub's `BatchImportFindings`, and back.
//!
//! One finding is one ASFF document. Its `Id` is stable per condition (account, check,
//! principal, resource: [`Finding::thread_id`]), so importing the same condition again updates
//! it, and a resolved finding (`Compliance.Status` PASSED, `RecordState` ARCHIVED) updates the
//! same record. The fields the lifecycle needs to rebuild a finding travel in `ProductFields`.
//! Reference: the ASFF syntax and `BatchImportFindings` pages of the Security Hub user guide.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::text::{truncate as clip, what_to_do};
use crate::domain::stored::StoredFinding;
use crate::finding::{CheckId, CisControl, Finding, FindingState, Severity};

/// The only ASFF schema version.
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Security Hub rejects a finding larger than 240 KB.
pub const MAX_FINDING_BYTES: usize = 240 * 1024;
/// `ProductName` (settable for the account's default product): how this function's findings
/// are told apart from other custom integrations that import into the same product.
pub const PRODUCT_NAME: &str = "iam-sentinel";
/// ASFF limits on text fields (characters).
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;
const RECOMMENDATION_MAX: usize = 512;
const PRODUCT_FIELD_MAX: usize = 2048;

/// `ProductFields` keys; the prefix keeps them apart from Security Hub's own `aws/…` keys.
pub mod field {
    /// The condition's stable id ([`crate::finding::Finding::thread_id`]).
    pub const THREAD_ID: &str = "iam-sentinel/ThreadId";
    /// Principal ARN.
    pub const PRINCIPAL: &str = "iam-sentinel/Principal";
    /// IAM user name.
    pub const USER: &str = "iam-sentinel/User";
    /// Key id (event path) or slot and creation date (scan).
    pub const RESOURCE: &str = "iam-sentinel/Resource";
    /// `schedule` or `event:<EventName>`.
    pub const TRIGGER: &str = "iam-sentinel/Trigger";
    /// The finding's evidence, as JSON (trimmed to the field limit).
    pub const EVIDENCE: &str = "iam-sentinel/Evidence";
    /// `untag: applied` and the like.
    pub const REMEDIATION: &str = "iam-sentinel/Remediation";
    /// Set when something was trimmed to fit Security Hub's limits.
    pub const TRIMMED: &str = "iam-sentinel/Trimmed";
}

/// The CIS AWS Foundations Benchmark v5.0.0 recommendation a check verifies (`1.13`), if one does.
#[must_use]
pub fn cis_control(check: CheckId) -> Option<&'static str> {
    check.cis_control().map(|c| c.id)
}

/// `RelatedRequirements` entry for a CIS control, in Security Hub's own spelling.
#[must_use]
pub fn cis_requirement(control: &str) -> String {
    format!("{}/{control}", CisControl::BENCHMARK)
}

/// `Compliance.Status` of an open finding: WARNING for advance notices (nothing fails yet),
/// FAILED otherwise.
#[must_use]
pub fn open_compliance_status(check: CheckId) -> &'static str {
    match check {
        CheckId::AccessKeyRotationDue | CheckId::ExceptionExpiring | CheckId::ExceptionApprovedUntagged => "WARNING",
        _ => "FAILED",
    }
}

/// ASFF `Severity.Label`.
#[must_use]
pub fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

fn types(check: CheckId) -> Vec<&'static str> {
    let mut types = vec![if cis_control(check).is_some() {
        "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"
    } else {
        "Software and Configuration Checks/AWS Security Best Practices"
    }];
    match check {
        CheckId::RootUsed | CheckId::BreakGlassUsed => types.push("Unusual Behaviors/User"),
        CheckId::ExceptionSelfGranted | CheckId::RegistryChangedByNonApprover => {
            types.push("TTPs/Privilege Escalation");
        }
        _ => {}
    }
    types
}

/// The account's default product: where a custom integration imports its own findings.
#[must_use]
pub fn product_arn(region: &str, account: &str) -> String {
    format!("arn:{}:securityhub:{region}:{account}:product/{account}/default", crate::finding::partition_of(region))
}

/// The ASFF `Id`: the same for a condition on every day it holds, and for its resolution.
#[must_use]
pub fn finding_id(f: &Finding) -> String {
    format!("{PRODUCT_NAME}/{}/{}", f.check, f.thread_id())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether `resource` is an access key id (event path) rather than a slot (`access_key_1 …`).
fn is_key_id(resource: &str) -> bool {
    (resource.starts_with("AKIA") || resource.starts_with("ASIA"))
        && resource.len() >= 16
        && resource.chars().all(|c| c.is_ascii_alphanumeric())
}

// No `Resources[].Details`: the user name and key are in the `Id`s and `ProductFields`, and the
// SDK's typed reader of `Details` (hundreds of resource types) needs more than 4 MB of stack in
// a debug build when `GetFindings` reads findings back.
fn resources(f: &Finding) -> Vec<Value> {
    let part = crate::finding::partition_of(&f.region);
    let resource = |kind: &str, id: String| json!({ "Type": kind, "Id": id, "Partition": part, "Region": f.region });
    let mut out = Vec::new();
    if f.principal.ends_with(":root") {
        out.push(resource("AwsAccount", format!("AWS::::Account:{}", f.account)));
    } else if f.user.is_some() {
        out.push(resource("AwsIamUser", f.principal.clone()));
        if let Some(key) = &f.resource {
            out.push(if is_key_id(key) {
                resource("AwsIamAccessKey", format!("AWS::IAM::AccessKey:{key}"))
            } else {
                // The credential report names keys by slot and creation date, not by id.
                let slot = key.split_whitespace().next().unwrap_or(key);
                resource("AwsIamAccessKey", format!("{}/{slot}", f.principal))
            });
        }
    } else if f.principal.starts_with("arn:") && f.principal.contains(":secretsmanager:") {
        out.push(resource("AwsSecretsManagerSecret", f.principal.clone()));
    } else if f.principal.starts_with("arn:") && f.principal.contains(":iam::") && f.principal.contains(":role/") {
        // A break-glass role that is gone.
        out.push(resource("AwsIamRole", f.principal.clone()));
    } else {
        out.push(resource("Other", clip(&f.principal, 512)));
    }
    out
}

/// The ASFF document of `f`. Open findings are ACTIVE with `Compliance.Status` FAILED (or
/// WARNING for advance notices); resolved ones PASSED and ARCHIVED. `first_seen` keeps the
/// original `CreatedAt` when the finding is already in Security Hub. Never over
/// [`MAX_FINDING_BYTES`]: oversized evidence is trimmed and the trim noted in `ProductFields`.
#[must_use]
pub fn document(f: &Finding, first_seen: Option<DateTime<Utc>>) -> Value {
    let resolved = f.state == FindingState::Resolved;
    let who = f.user.as_deref().unwrap_or(&f.principal);
    let mut compliance = Map::new();
    compliance.insert("Status".into(), Value::from(if resolved { "PASSED" } else { open_compliance_status(f.check) }));
    if let Some(control) = cis_control(f.check) {
        compliance.insert("RelatedRequirements".into(), json!([cis_requirement(control)]));
    }
    let mut fields = Map::new();
    fields.insert(field::THREAD_ID.into(), Value::from(f.thread_id()));
    fields.insert(field::PRINCIPAL.into(), Value::from(clip(&f.principal, PRODUCT_FIELD_MAX)));
    fields.insert(field::TRIGGER.into(), Value::from(clip(&f.trigger, PRODUCT_FIELD_MAX)));
    if let Some(user) = &f.user {
        fields.insert(field::USER.into(), Value::from(user.as_str()));
    }
    if let Some(resource) = &f.resource {
        fields.insert(field::RESOURCE.into(), Value::from(clip(resource, PRODUCT_FIELD_MAX)));
    }
    if let Some(r) = &f.remediation {
        fields.insert(field::REMEDIATION.into(), Value::from(format!("{}: {}", r.action, r.status.as_str())));
    }
    let evidence = f.evidence.to_string();
    let mut notes = Vec::new();
    if evidence.chars().count() > PRODUCT_FIELD_MAX {
        notes.push(format!(
            "evidence trimmed from {} to {PRODUCT_FIELD_MAX} characters (ProductFields limit); the whole finding went to the SNS topic",
            evidence.chars().count()
        ));
    }
    if !f.evidence.as_object().is_some_and(Map::is_empty) {
        fields.insert(field::EVIDENCE.into(), Value::from(clip(&evidence, PRODUCT_FIELD_MAX)));
    }
    let severity = json!({ "Label": severity_label(f.severity), "Original": f.severity.as_str() });
    let mut doc = json!({
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(f),
        "ProductArn": product_arn(&f.region, &f.account),
        "ProductName": PRODUCT_NAME,
        "CompanyName": PRODUCT_NAME,
        "GeneratorId": f.check.as_str(),
        "AwsAccountId": f.account,
        "Region": f.region,
        "Types": types(f.check),
        "CreatedAt": time(first_seen.unwrap_or(f.observed_at)),
        "UpdatedAt": time(f.observed_at),
        "FirstObservedAt": time(first_seen.unwrap_or(f.observed_at)),
        "LastObservedAt": time(f.observed_at),
        "Severity": severity,
        "FindingProviderFields": { "Severity": severity, "Types": types(f.check) },
        "Title": clip(&format!("{}: {who}", f.check), TITLE_MAX),
        "Description": clip(&f.message, DESCRIPTION_MAX),
        "Remediation": { "Recommendation": { "Text": clip(what_to_do(f.check), RECOMMENDATION_MAX) } },
        "Resources": resources(f),
        "Compliance": compliance,
        "RecordState": if resolved { "ARCHIVED" } else { "ACTIVE" },
        "ProductFields": fields,
    });
    if !notes.is_empty() {
        doc["ProductFields"][field::TRIMMED] = Value::from(notes.join("; "));
    }
    // Every field above is bounded, so this only guards against a future unbounded one.
    if doc.to_string().len() > MAX_FINDING_BYTES
        && let Some(fields) = doc["ProductFields"].as_object_mut()
    {
        fields.remove(field::EVIDENCE);
        fields.insert(field::TRIMMED.into(), Value::from("evidence removed: the finding exceeded 240 KB"));
    }
    doc
}

/// Every finding as ASFF, one JSON array (what `aws securityhub batch-import-findings
/// --findings file://…` takes, 100 at a time).
#[must_use]
pub fn render(findings: &[Finding]) -> String {
    let docs: Vec<Value> = findings.iter().map(|f| document(f, None)).collect();
    serde_json::to_string_pretty(&docs).unwrap_or_default() + "\n"
}

/// Rebuilds what the lifecycle needs from a stored finding's parts; `None` when the
/// `ProductFields` are not this function's (another custom integration's finding).
#[must_use]
pub fn stored_finding(
    store_id: &str,
    generator_id: &str,
    account: &str,
    region: &str,
    description: &str,
    created_at: Option<&str>,
    fields: &HashMap<String, String, impl std::hash::BuildHasher>,
) -> Option<StoredFinding> {
    fields.get(field::THREAD_ID)?;
    let principal = fields.get(field::PRINCIPAL)?.clone();
    Some(StoredFinding {
        store_id: store_id.to_owned(),
        check: serde_json::from_value(Value::from(generator_id)).ok(),
        account: account.to_owned(),
        region: region.to_owned(),
        principal,
        user: fields.get(field::USER).cloned(),
        resource: fields.get(field::RESOURCE).cloned(),
        trigger: fields.get(field::TRIGGER).cloned().unwrap_or_else(|| "schedule".into()),
        message: description.to_owned(),
        first_observed_at: created_at.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Remediation, RemediationStatus, Scope};

    /// Top-level attributes `BatchImportFindings` requires (Security Hub user guide, "Required
    /// top-level attributes in ASFF").
    const REQUIRED: &[&str] = &[
        "AwsAccountId",
        "CreatedAt",
        "Description",
        "GeneratorId",
        "Id",
        "ProductArn",
        "Resources",
        "SchemaVersion",
        "Severity",
        "Title",
        "Types",
        "UpdatedAt",
    ];

    fn finding(check: CheckId, resource: Option<&str>) -> Finding {
        let scope = Scope {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            trigger: "schedule".into(),
            now: "2026-11-23T10:00:00Z".parse().unwrap(),
        };
        let mut f = scope.finding(check, "arn:aws:iam::123456789012:user/alice", "alice's key is 120 days old".into());
        f.user = Some("alice".into());
        f.resource = resource.map(str::to_owned);
        f
    }

    fn fields(doc: &Value) -> HashMap<String, String> {
        doc["ProductFields"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn every_check_renders_the_required_attributes_within_limits() {
        for check in CheckId::ALL {
            let doc = document(&finding(*check, Some("AKIAIOSFODNN7EXAMPLE")), None);
            for attr in REQUIRED {
                assert!(!doc[attr].is_null(), "{check}: {attr} missing");
            }
            assert_eq!(doc["SchemaVersion"], SCHEMA_VERSION);
            assert_eq!(doc["GeneratorId"], check.as_str());
            assert_eq!(doc["ProductArn"], "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default");
            assert!(
                ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
                    .contains(&doc["Severity"]["Label"].as_str().unwrap())
            );
            assert!(doc["Title"].as_str().unwrap().chars().count() <= TITLE_MAX);
            assert!(doc["Description"].as_str().unwrap().chars().count() <= DESCRIPTION_MAX);
            assert!(!doc["Remediation"]["Recommendation"]["Text"].as_str().unwrap().is_empty());
            assert!(doc["Id"].as_str().unwrap().len() <= 512);
            assert!(doc["ProductFields"].as_object().unwrap().len() <= 50);
            assert_eq!(doc["RecordState"], "ACTIVE");
            assert!(["FAILED", "WARNING"].contains(&doc["Compliance"]["Status"].as_str().unwrap()));
            for t in doc["Types"].as_array().unwrap() {
                assert!(t.as_str().unwrap().split('/').count() >= 2, "{t}");
            }
        }
    }

    #[test]
    fn cis_controls_follow_the_v5_numbering() {
        let req = |c| document(&finding(c, None), None)["Compliance"]["RelatedRequirements"][0].clone();
        assert_eq!(req(CheckId::RootAccessKey), "CIS AWS Foundations Benchmark v5.0.0/1.3");
        assert_eq!(req(CheckId::RootWithoutMfa), "CIS AWS Foundations Benchmark v5.0.0/1.4");
        assert_eq!(req(CheckId::ConsoleWithoutMfa), "CIS AWS Foundations Benchmark v5.0.0/1.9");
        assert_eq!(req(CheckId::AccessKeyUnused), "CIS AWS Foundations Benchmark v5.0.0/1.11");
        assert_eq!(req(CheckId::AccessKeyMultipleActive), "CIS AWS Foundations Benchmark v5.0.0/1.12");
        assert_eq!(req(CheckId::AccessKeyStale), "CIS AWS Foundations Benchmark v5.0.0/1.13");
        assert!(req(CheckId::ExceptionUnapproved).is_null());
    }

    #[test]
    fn the_id_is_stable_across_days_and_shared_by_the_resolution() {
        let today = finding(CheckId::AccessKeyStale, Some("access_key_1 created 2026-05-07"));
        let mut later = today.clone();
        later.observed_at = "2026-12-01T10:00:00Z".parse().unwrap();
        later.state = FindingState::Resolved;
        let (a, b) = (document(&today, None), document(&later, today.observed_at.into()));
        assert_eq!(a["Id"], b["Id"]);
        assert_eq!((b["Compliance"]["Status"].as_str(), b["RecordState"].as_str()), (Some("PASSED"), Some("ARCHIVED")));
        assert_eq!(b["CreatedAt"], a["CreatedAt"]);
        assert!(b.get("Workflow").is_none(), "the workflow status is the customer's");
    }

    #[test]
    fn resources_name_the_user_the_key_and_root() {
        let by_id = document(&finding(CheckId::AccessKeyUnused, Some("AKIAIOSFODNN7EXAMPLE")), None);
        assert_eq!(by_id["Resources"][0]["Type"], "AwsIamUser");
        assert_eq!(by_id["Resources"][1]["Id"], "AWS::IAM::AccessKey:AKIAIOSFODNN7EXAMPLE");
        let by_slot = document(&finding(CheckId::AccessKeyUnused, Some("access_key_2 created 2026-05-07")), None);
        assert_eq!(by_slot["Resources"][1]["Id"], "arn:aws:iam::123456789012:user/alice/access_key_2");
        let mut root = finding(CheckId::RootAccessKey, None);
        root.principal = "arn:aws:iam::123456789012:root".into();
        root.user = None;
        assert_eq!(document(&root, None)["Resources"][0]["Id"], "AWS::::Account:123456789012");
        let mut role = finding(CheckId::BreakGlassNotReady, None);
        role.principal = "arn:aws:iam::123456789012:role/BreakGlassAdmin".into();
        role.user = None;
        assert_eq!(document(&role, None)["Resources"][0]["Type"], "AwsIamRole");
    }

    #[test]
    fn huge_evidence_is_trimmed_with_a_note_never_dropped() {
        let mut f = finding(CheckId::ExceptionUnapproved, None);
        f.evidence = json!({ "tag_value": "x".repeat(1_000_000), "many": (0..10_000).collect::<Vec<_>>() });
        f.remediation = Some(Remediation { action: "untag".into(), status: RemediationStatus::Applied, detail: None });
        let doc = document(&f, None);
        assert!(doc.to_string().len() <= MAX_FINDING_BYTES, "{} bytes", doc.to_string().len());
        assert_eq!(doc["Id"], finding_id(&f));
        let fields = fields(&doc);
        assert!(fields[field::TRIMMED].contains("evidence trimmed"), "{fields:?}");
        assert!(fields[field::EVIDENCE].chars().count() <= PRODUCT_FIELD_MAX);
        assert_eq!(fields[field::REMEDIATION], "untag: applied");
    }

    #[test]
    fn a_stored_document_gives_back_the_condition_it_describes() {
        let mut f = finding(CheckId::AccessKeyStale, Some("access_key_1 created 2026-05-07"));
        f.trigger = "event:CreateAccessKey".into();
        let doc = document(&f, None);
        let stored = stored_finding(
            doc["Id"].as_str().unwrap(),
            doc["GeneratorId"].as_str().unwrap(),
            "123456789012",
            "us-east-1",
            doc["Description"].as_str().unwrap(),
            doc["CreatedAt"].as_str(),
            &fields(&doc),
        )
        .unwrap();
        assert_eq!(stored.check, Some(CheckId::AccessKeyStale));
        assert_eq!((stored.principal.as_str(), stored.user.as_deref()), (f.principal.as_str(), Some("alice")));
        assert_eq!(stored.resource, f.resource);
        assert_eq!(stored.trigger, "event:CreateAccessKey");
        assert_eq!(stored.first_observed_at, Some(f.observed_at));
        let foreign = HashMap::from([("Provider".to_owned(), "other-tool".to_owned())]);
        assert!(stored_finding("x", "y", "1", "r", "d", None, &foreign).is_none());
    }
}
