//! Centralized root access events: `sts:AssumeRoot` (the caller's side of a root session, in
//! the management or delegated-administrator account), the member's side of a root session
//! (calls with `userIdentity.type` `Root` that no other parser takes: an S3 bucket or SQS queue
//! policy deleted, root's password or certificate deleted), and the four calls that switch the
//! organization's root access features on or off.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::Value;

use super::{AccountCall, CloudTrailRecord, EventError, Parsed, RootActivity, Trigger, is_account_id};
use crate::domain::root::{RootFeature, RootTask};

/// The IAM calls that switch a centralized root access feature on or off.
pub const ROOT_FEATURE_EVENT_NAMES: &[&str] = &[
    "EnableOrganizationsRootCredentialsManagement",
    "DisableOrganizationsRootCredentialsManagement",
    "EnableOrganizationsRootSessions",
    "DisableOrganizationsRootSessions",
];

/// Sources of the root tasks other than IAM (`S3UnlockBucketPolicy`, `SQSUnlockQueuePolicy`).
pub const ROOT_SESSION_EVENT_SOURCES: &[&str] = &["aws.s3", "aws.sqs"];

/// Root's own IAM calls that only a root task makes and the user parser does not take.
const ROOT_ONLY_IAM_EVENT_NAMES: &[&str] = &["DeleteLoginProfile", "DeleteSigningCertificate"];

/// A successful `sts:AssumeRoot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRootCall {
    /// The member account the session acts in (`requestParameters.targetPrincipal`).
    pub target_account: String,
    /// The task policy (`requestParameters.taskPolicyArn.arn`).
    pub task: RootTask,
    /// The session's temporary key (`responseElements.credentials.accessKeyId`), when recorded.
    pub access_key_id: Option<String>,
    /// Who called, where, when; the account is the caller's.
    pub call: AccountCall,
}

/// A root access feature switched on or off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFeatureChange {
    /// Which feature.
    pub feature: RootFeature,
    /// On (`Enable…`) or off (`Disable…`).
    pub enabled: bool,
    /// Who, where, when.
    pub call: AccountCall,
}

/// Whether this parser takes the event (looked at before the STS and IAM parsers).
pub(super) fn is_root_access_event(envelope: &EventBridgeEvent<Value>) -> bool {
    let name = envelope.detail.get("eventName").and_then(Value::as_str).unwrap_or_default();
    let by_root = envelope.detail.pointer("/userIdentity/type").and_then(Value::as_str) == Some("Root");
    match envelope.source.as_str() {
        "aws.sts" => name == "AssumeRoot",
        "aws.iam" => ROOT_FEATURE_EVENT_NAMES.contains(&name) || (by_root && ROOT_ONLY_IAM_EVENT_NAMES.contains(&name)),
        source => by_root && ROOT_SESSION_EVENT_SOURCES.contains(&source),
    }
}

pub(super) fn parse(envelope: EventBridgeEvent<Value>) -> Result<Parsed, EventError> {
    let record = CloudTrailRecord::from_detail(envelope.detail)?;
    let name = record.event_name.clone();
    let expected_source = match envelope.source.as_str() {
        "aws.sts" => "sts.amazonaws.com",
        "aws.iam" => "iam.amazonaws.com",
        "aws.s3" => "s3.amazonaws.com",
        _ => "sqs.amazonaws.com",
    };
    if record.event_source.as_deref().is_some_and(|s| s != expected_source) {
        return Ok(Parsed::Ignored(format!("{name} from {} is not a {expected_source} call", envelope.source)));
    }
    if let Some(code) = &record.error_code {
        return Ok(Parsed::Ignored(format!(
            "{name} failed with {code} ({}): nothing changed",
            record.error_message.as_deref().unwrap_or("no message")
        )));
    }
    let call = AccountCall {
        event_name: name.clone(),
        actor: record.actor(&name)?,
        context: record.context(),
        account: record.account(envelope.account.clone(), &name)?,
        region: record.region(envelope.region.clone()),
    };
    if name == "AssumeRoot" {
        return assume_root(&record, call).map(|c| Parsed::Trigger(Trigger::RootSessionStarted(c)));
    }
    if let Some(change) = feature_change(&name, call.clone()) {
        return Ok(Parsed::Trigger(Trigger::RootFeatureChanged(change)));
    }
    // The member's side: root acting in a session (or signed in) with no user parser to take it.
    Ok(Parsed::Trigger(Trigger::RootActivity(RootActivity {
        event_name: name,
        actor: call.actor,
        context: call.context,
        access_key_id: None,
        caller_key_id: record.user_identity.access_key_id.clone(),
        account: call.account,
        region: call.region,
    })))
}

fn assume_root(record: &CloudTrailRecord, call: AccountCall) -> Result<AssumeRootCall, EventError> {
    let missing = |field| EventError::MissingField { event_name: "AssumeRoot".into(), field };
    let request = record.request_parameters.as_ref().filter(|v| !v.is_null());
    let target = request
        .and_then(|r| r.get("targetPrincipal"))
        .and_then(Value::as_str)
        .ok_or_else(|| missing("requestParameters.targetPrincipal"))?;
    // An account id, or the member's root ARN (arn:aws:iam::ACCOUNT:root).
    let target_account = target.split(':').nth(4).unwrap_or(target);
    if !is_account_id(target_account) {
        return Err(EventError::Malformed(format!(
            "AssumeRoot: targetPrincipal {target:?} is neither an AWS account id nor a root ARN"
        )));
    }
    let policy = request
        .and_then(|r| r.pointer("/taskPolicyArn/arn"))
        .and_then(Value::as_str)
        .ok_or_else(|| missing("requestParameters.taskPolicyArn.arn"))?;
    if !policy.contains(":policy/root-task/") {
        return Err(EventError::Malformed(format!(
            "AssumeRoot: taskPolicyArn {policy:?} is not a root task policy (arn:aws:iam::aws:policy/root-task/…)"
        )));
    }
    let access_key_id = record
        .response_elements
        .as_ref()
        .and_then(|r| r.pointer("/credentials/accessKeyId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(AssumeRootCall {
        target_account: target_account.to_owned(),
        task: RootTask::from_policy_arn(policy),
        access_key_id,
        call,
    })
}

fn feature_change(name: &str, call: AccountCall) -> Option<RootFeatureChange> {
    let (enabled, rest) = if let Some(rest) = name.strip_prefix("EnableOrganizations") {
        (true, rest)
    } else {
        (false, name.strip_prefix("DisableOrganizations")?)
    };
    let feature = match rest {
        "RootCredentialsManagement" => RootFeature::CredentialsManagement,
        "RootSessions" => RootFeature::Sessions,
        _ => return None,
    };
    Some(RootFeatureChange { feature, enabled, call })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event_str;

    const ASSUME: &str = include_str!("../../events/assume-root-create-password.json");
    const AUDIT: &str = include_str!("../../events/assume-root-audit.json");
    const BUCKET: &str = include_str!("../../events/root-session-delete-bucket-policy.json");
    const LOGIN: &str = include_str!("../../events/root-session-delete-login-profile.json");
    const DISABLE: &str = include_str!("../../events/disable-organizations-root-sessions.json");
    const ENABLE: &str = include_str!("../../events/enable-organizations-root-credentials-management.json");

    fn parse(text: &str) -> Result<Parsed, EventError> {
        parse_event_str(text, "AccessException")
    }

    fn started(text: &str) -> AssumeRootCall {
        match parse(text).unwrap() {
            Parsed::Trigger(Trigger::RootSessionStarted(c)) => c,
            other => panic!("expected AssumeRoot, got {other:?}"),
        }
    }

    fn activity(text: &str) -> RootActivity {
        match parse(text).unwrap() {
            Parsed::Trigger(Trigger::RootActivity(a)) => a,
            other => panic!("expected root activity, got {other:?}"),
        }
    }

    #[test]
    fn assume_root_names_target_task_key_caller_mfa_and_source() {
        let c = started(ASSUME);
        assert_eq!(c.target_account, "444455556666");
        assert_eq!(c.task, RootTask::CreatePassword);
        assert_eq!(c.access_key_id.as_deref(), Some("ASIAEXAMPLEROOTPW001"));
        assert_eq!(c.call.account, "123456789012");
        assert_eq!(c.call.actor.arn, "arn:aws:sts::123456789012:assumed-role/RootTaskOperator/dana");
        assert!(!c.call.actor.root);
        assert_eq!(c.call.context.mfa_authenticated, Some(true));
        assert_eq!(c.call.context.source_ip.as_deref(), Some("203.0.113.40"));
        assert_eq!(started(AUDIT).task, RootTask::AuditCredentials);
    }

    #[test]
    fn assume_root_accepts_a_root_arn_target_and_names_what_is_missing_or_wrong() {
        let arn = ASSUME.replace(
            "\"targetPrincipal\": \"444455556666\"",
            "\"targetPrincipal\": \"arn:aws:iam::444455556666:root\"",
        );
        assert_eq!(started(&arn).target_account, "444455556666");
        let no_target = ASSUME.replace("\"targetPrincipal\"", "\"target\"");
        assert_eq!(
            parse(&no_target).unwrap_err().to_string(),
            "malformed AssumeRoot event: requestParameters.targetPrincipal is missing"
        );
        let bad_target = ASSUME.replace("\"444455556666\"", "\"prod\"");
        assert!(parse(&bad_target).unwrap_err().to_string().contains("neither an AWS account id"));
        let no_task = ASSUME.replace("\"taskPolicyArn\"", "\"policy\"");
        assert!(parse(&no_task).unwrap_err().to_string().contains("requestParameters.taskPolicyArn.arn is missing"));
        let wrong_policy = ASSUME.replace("root-task/IAMCreateRootUserPassword", "AdministratorAccess");
        assert!(parse(&wrong_policy).unwrap_err().to_string().contains("not a root task policy"));
        let no_key = ASSUME.replace("\"accessKeyId\": \"ASIAEXAMPLEROOTPW001\",", "");
        assert_eq!(started(&no_key).access_key_id, None, "a response without the key is still a session");
    }

    #[test]
    fn a_failed_assume_root_started_nothing() {
        let failed = ASSUME.replace(
            "\"eventName\": \"AssumeRoot\",",
            "\"eventName\": \"AssumeRoot\", \"errorCode\": \"AccessDenied\", \"errorMessage\": \"not allowed\",",
        );
        assert!(matches!(parse(&failed).unwrap(), Parsed::Ignored(r) if r.contains("AccessDenied")));
    }

    #[test]
    fn the_members_side_is_root_activity_with_the_sessions_key() {
        let a = activity(BUCKET);
        assert_eq!(a.event_name, "DeleteBucketPolicy");
        assert_eq!(a.account, "444455556666");
        assert_eq!(a.caller_key_id.as_deref(), Some("ASIAEXAMPLEROOTS3001"));
        assert!(a.actor.root);
        let a = activity(LOGIN);
        assert_eq!(a.event_name, "DeleteLoginProfile");
        assert_eq!(a.caller_key_id.as_deref(), Some("ASIAEXAMPLEROOTDEL01"));
        // A bucket policy deleted by a role is not root activity: nothing here takes it.
        let by_role = BUCKET.replace("\"type\": \"Root\"", "\"type\": \"AssumedRole\"");
        assert!(matches!(parse(&by_role).unwrap(), Parsed::Ignored(_)));
    }

    #[test]
    fn feature_switches_name_the_feature_and_the_direction() {
        for (text, feature, enabled) in
            [(DISABLE, RootFeature::Sessions, false), (ENABLE, RootFeature::CredentialsManagement, true)]
        {
            match parse(text).unwrap() {
                Parsed::Trigger(Trigger::RootFeatureChanged(c)) => {
                    assert_eq!((c.feature, c.enabled), (feature, enabled));
                    assert_eq!(c.call.account, "123456789012");
                }
                other => panic!("{other:?}"),
            }
        }
        for name in ROOT_FEATURE_EVENT_NAMES {
            let text = DISABLE.replace("DisableOrganizationsRootSessions", name);
            assert!(matches!(parse(&text).unwrap(), Parsed::Trigger(Trigger::RootFeatureChanged(_))), "{name}");
        }
    }
}
