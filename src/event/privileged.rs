//! Events about the privileged paths around the exception tag: a role assumed (`sts:AssumeRole`),
//! an IAM user's console sign-in, and writes to a Secrets Manager secret.
//!
//! Parsing knows nothing of the configuration: whether the role or user is break-glass, or the
//! secret is the approvals registry, is decided by the app. Failed calls are ignored here (nothing
//! happened); a failed sign-in is kept, because who tried a break-glass user matters.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::Value;

use super::{CloudTrailRecord, EventError, Parsed, Trigger};
use crate::domain::call::{Actor, CallContext};

/// The Secrets Manager calls that change a secret's content, policy or existence (the registry
/// rule's `eventName` list).
pub const REGISTRY_WRITE_EVENT_NAMES: &[&str] = &[
    "PutSecretValue",
    "UpdateSecret",
    "UpdateSecretVersionStage",
    "RestoreSecret",
    "DeleteSecret",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
];

/// A successful `AssumeRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssumption {
    /// `requestParameters.roleArn`: the role assumed.
    pub role_arn: String,
    /// `requestParameters.roleSessionName`.
    pub session_name: Option<String>,
    /// `responseElements.assumedRoleUser.arn`: the session the call created, which acts from then on.
    pub session_arn: Option<String>,
    /// Who assumed it.
    pub actor: Actor,
    /// When, from where; MFA from the caller's session or an MFA serial number in the request.
    pub context: CallContext,
    /// Account from the event.
    pub account: String,
    /// Region from the event.
    pub region: String,
}

/// An IAM user's `ConsoleLogin`, successful or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSignIn {
    /// `userIdentity.userName`.
    pub user_name: String,
    /// The user.
    pub actor: Actor,
    /// When, from where, and whether MFA was used (`additionalEventData.MFAUsed`).
    pub context: CallContext,
    /// `None` when the sign-in succeeded; otherwise why it failed (`errorMessage` or the result).
    pub failure: Option<String>,
    /// Account from the event.
    pub account: String,
    /// Region from the event.
    pub region: String,
}

/// A successful write to a secret (one of [`REGISTRY_WRITE_EVENT_NAMES`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChange {
    /// `detail.eventName`.
    pub event_name: String,
    /// `requestParameters.secretId`, as the caller gave it: a name, a full or a partial ARN.
    pub secret_id: String,
    /// Who made the call.
    pub actor: Actor,
    /// When, from where, and whether with MFA.
    pub context: CallContext,
    /// Account from the event.
    pub account: String,
    /// Region from the event.
    pub region: String,
}

/// Whether a CloudTrail event from `source` is parsed here rather than as an IAM call.
pub(super) fn is_privileged_source(source: &str) -> bool {
    matches!(source, "aws.sts" | "aws.secretsmanager")
}

/// A CloudTrail API call from STS or Secrets Manager.
pub(super) fn parse(envelope: EventBridgeEvent<Value>) -> Result<Parsed, EventError> {
    let record = CloudTrailRecord::from_detail(envelope.detail)?;
    if envelope.source == "aws.sts" {
        parse_assume_role(&record, envelope.account, envelope.region)
    } else {
        parse_secret_change(&record, envelope.account, envelope.region)
    }
}

fn failed(record: &CloudTrailRecord, name: &str) -> Option<Parsed> {
    record.error_code.as_ref().map(|code| {
        Parsed::Ignored(format!(
            "{name} failed with {code} ({}): nothing changed",
            record.error_message.as_deref().unwrap_or("no message")
        ))
    })
}

fn request_str(record: &CloudTrailRecord, key: &str) -> Option<String> {
    record
        .request_parameters
        .as_ref()
        .and_then(|r| r.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `sts:AssumeRole` from `aws.sts`; other STS calls are ignored.
fn parse_assume_role(
    record: &CloudTrailRecord,
    account: Option<String>,
    region: Option<String>,
) -> Result<Parsed, EventError> {
    let name = record.event_name.as_str();
    if record.event_source.as_deref().is_some_and(|s| s != "sts.amazonaws.com") || name != "AssumeRole" {
        return Ok(Parsed::Ignored(format!("{name} is not an STS AssumeRole call")));
    }
    if let Some(ignored) = failed(record, name) {
        return Ok(ignored);
    }
    let role_arn = request_str(record, "roleArn")
        .ok_or(EventError::MissingField { event_name: name.to_owned(), field: "requestParameters.roleArn" })?;
    let mut context = record.context();
    // A successful AssumeRole that carried an MFA serial number was authenticated with MFA
    // whatever the caller's own session says.
    if request_str(record, "serialNumber").is_some() {
        context.mfa_authenticated = Some(true);
    }
    Ok(Parsed::Trigger(Trigger::RoleAssumed(RoleAssumption {
        role_arn,
        session_name: request_str(record, "roleSessionName"),
        session_arn: record
            .response_elements
            .as_ref()
            .and_then(|r| r.pointer("/assumedRoleUser/arn"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        actor: record.actor(name)?,
        context,
        account: record.account(account, name)?,
        region: record.region(region),
    })))
}

/// An IAM user's `ConsoleLogin` (the caller has checked `userIdentity.type`).
pub(super) fn parse_user_sign_in(
    record: &CloudTrailRecord,
    account: Option<String>,
    region: Option<String>,
) -> Result<Parsed, EventError> {
    let name = record.event_name.as_str();
    let from_arn = || record.user_identity.arn.as_deref().and_then(|a| a.rsplit_once(":user/")).map(|(_, u)| u);
    let user_name = record
        .user_identity
        .user_name
        .clone()
        .or_else(|| from_arn().map(|path| path.rsplit('/').next().unwrap_or(path).to_owned()))
        .ok_or(EventError::MissingField { event_name: name.to_owned(), field: "userIdentity.userName" })?;
    if !super::is_valid_user_name(&user_name) {
        return Err(EventError::Malformed(format!("{name}: {user_name:?} is not a valid IAM user name")));
    }
    let result = record.response_elements.as_ref().and_then(|r| r.get("ConsoleLogin")).and_then(Value::as_str);
    let failure = (result != Some("Success"))
        .then(|| record.error_message.as_deref().or(result).unwrap_or("no result recorded").to_owned());
    Ok(Parsed::Trigger(Trigger::UserSignIn(UserSignIn {
        user_name,
        actor: record.actor(name)?,
        context: record.context(),
        failure,
        account: record.account(account, name)?,
        region: record.region(region),
    })))
}

/// A write to a secret from `aws.secretsmanager`; reads and other calls are ignored.
fn parse_secret_change(
    record: &CloudTrailRecord,
    account: Option<String>,
    region: Option<String>,
) -> Result<Parsed, EventError> {
    let name = record.event_name.as_str();
    if record.event_source.as_deref().is_some_and(|s| s != "secretsmanager.amazonaws.com")
        || !REGISTRY_WRITE_EVENT_NAMES.contains(&name)
    {
        return Ok(Parsed::Ignored(format!("{name} does not change a secret's value, policy or existence")));
    }
    if let Some(ignored) = failed(record, name) {
        return Ok(ignored);
    }
    let secret_id = request_str(record, "secretId")
        .ok_or(EventError::MissingField { event_name: name.to_owned(), field: "requestParameters.secretId" })?;
    Ok(Parsed::Trigger(Trigger::SecretChanged(SecretChange {
        event_name: name.to_owned(),
        secret_id,
        actor: record.actor(name)?,
        context: record.context(),
        account: record.account(account, name)?,
        region: record.region(region),
    })))
}

#[cfg(test)]
mod tests {
    use super::super::parse_event_str;
    use super::*;

    fn parse(text: &str) -> Parsed {
        parse_event_str(text, "AccessException").unwrap()
    }

    const ASSUME: &str = include_str!("../../events/assume-role-break-glass.json");
    const SIGN_IN: &str = include_str!("../../events/console-sign-in-break-glass-user.json");
    const PUT: &str = include_str!("../../events/put-secret-value-registry.json");

    #[test]
    fn an_assume_role_record_gives_the_role_session_and_mfa() {
        let Parsed::Trigger(Trigger::RoleAssumed(a)) = parse(ASSUME) else { panic!("{:?}", parse(ASSUME)) };
        assert_eq!(a.role_arn, "arn:aws:iam::123456789012:role/BreakGlassAdmin");
        assert_eq!(a.session_name.as_deref(), Some("incident-2026-11-23-kim"));
        assert_eq!(
            a.session_arn.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/incident-2026-11-23-kim")
        );
        assert_eq!(a.actor.arn, "arn:aws:iam::123456789012:user/ops-kim");
        assert_eq!(a.context.mfa_authenticated, Some(true));
        assert_eq!(a.context.source_ip.as_deref(), Some("203.0.113.45"));
        assert_eq!(a.context.event_time, Some("2026-11-23T09:41:07Z".parse().unwrap()));
        assert_eq!(a.account, "123456789012");
    }

    #[test]
    fn assume_role_mfa_comes_from_the_session_or_the_request() {
        let no_serial = ASSUME.replace("\"serialNumber\": \"arn:aws:iam::123456789012:mfa/ops-kim\",", "");
        let no_mfa = no_serial.replace("\"mfaAuthenticated\": \"true\"", "\"mfaAuthenticated\": \"false\"");
        let Parsed::Trigger(Trigger::RoleAssumed(a)) = parse(&no_mfa) else { panic!() };
        assert_eq!(a.context.mfa_authenticated, Some(false));
        let Parsed::Trigger(Trigger::RoleAssumed(a)) = parse(&no_serial) else { panic!() };
        assert_eq!(a.context.mfa_authenticated, Some(true));
    }

    #[test]
    fn failed_or_other_sts_calls_are_ignored_and_a_missing_role_is_malformed() {
        let denied = ASSUME.replace(
            "\"eventName\": \"AssumeRole\",",
            "\"eventName\": \"AssumeRole\", \"errorCode\": \"AccessDenied\",",
        );
        assert!(matches!(parse(&denied), Parsed::Ignored(r) if r.contains("AccessDenied")));
        let other = ASSUME.replace("\"AssumeRole\"", "\"GetCallerIdentity\"");
        assert!(matches!(parse(&other), Parsed::Ignored(r) if r.contains("GetCallerIdentity")));
        let no_role = ASSUME.replace("\"roleArn\"", "\"role\"");
        let err = parse_event_str(&no_role, "AccessException").unwrap_err();
        assert_eq!(err.to_string(), "malformed AssumeRole event: requestParameters.roleArn is missing");
    }

    #[test]
    fn an_iam_user_sign_in_is_kept_with_its_result_and_mfa() {
        let Parsed::Trigger(Trigger::UserSignIn(s)) = parse(SIGN_IN) else { panic!("{:?}", parse(SIGN_IN)) };
        assert_eq!(s.user_name, "break-glass-admin");
        assert_eq!(s.failure, None);
        assert_eq!(s.context.mfa_authenticated, Some(true));
        let failed = SIGN_IN.replace("\"Success\"", "\"Failure\"").replace(
            "\"eventName\": \"ConsoleLogin\",",
            "\"eventName\": \"ConsoleLogin\", \"errorMessage\": \"Failed authentication\",",
        );
        let Parsed::Trigger(Trigger::UserSignIn(s)) = parse(&failed) else { panic!() };
        assert_eq!(s.failure.as_deref(), Some("Failed authentication"));
    }

    #[test]
    fn a_secret_write_names_the_secret_as_given() {
        let Parsed::Trigger(Trigger::SecretChanged(c)) = parse(PUT) else { panic!("{:?}", parse(PUT)) };
        assert_eq!(c.event_name, "PutSecretValue");
        assert_eq!(c.secret_id, "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-sentinel/approvals-Ab3dEf");
        assert_eq!(c.actor.arn, "arn:aws:iam::123456789012:user/dev-mallory");
        let read = PUT.replace("\"PutSecretValue\"", "\"GetSecretValue\"");
        assert!(matches!(parse(&read), Parsed::Ignored(_)));
        let denied = PUT.replace(
            "\"eventName\": \"PutSecretValue\",",
            "\"eventName\": \"PutSecretValue\", \"errorCode\": \"AccessDeniedException\",",
        );
        assert!(matches!(parse(&denied), Parsed::Ignored(r) if r.contains("nothing changed")));
    }
}
