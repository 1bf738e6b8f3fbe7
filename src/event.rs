//! Turns an EventBridge event into a [`Trigger`]: an IAM change to one user, an Organizations
//! change to SCP coverage, or the daily schedule.
//!
//! Malformed events are errors; well-formed events this function has nothing to do
//! with (another event name, a call that failed) are [`Parsed::Ignored`] with a reason.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::call::Actor;
pub use crate::domain::call::{AccessTarget, CallContext};

mod organizations;
mod privileged;
pub use crate::domain::names::{is_account_id, is_valid_user_name};
pub use organizations::{ChangeReach, ORGANIZATIONS_EVENT_NAMES, OrganizationChange};
mod root;
pub use privileged::{REGISTRY_WRITE_EVENT_NAMES, RoleAssumption, SecretChange, UserSignIn};
pub use root::{AssumeRootCall, ROOT_FEATURE_EVENT_NAMES, ROOT_SESSION_EVENT_SOURCES, RootFeatureChange};

/// `detail-type` of CloudTrail API calls forwarded by EventBridge.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// `detail-type` of EventBridge schedules.
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";
/// `detail-type` of console sign-ins (source `aws.signin`, event `ConsoleLogin`).
pub const SIGN_IN_DETAIL_TYPE: &str = "AWS Console Sign In via CloudTrail";
/// How CloudTrail names the root user in `requestParameters.userName` when root acts on itself.
pub const ROOT_USER_NAME: &str = "AWS ROOT USER";

/// IAM calls about one user: every user check runs on it.
const USER_EVENT_NAMES: &[&str] = &[
    "TagUser",
    "UntagUser",
    "CreateUser",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateLoginProfile",
    "EnableMFADevice",
    "DeactivateMFADevice",
];

/// The IAM API calls the function reacts to (the EventBridge rule's `eventName` list), in
/// the rule's order: calls about a user, then about what reaches users, then the password policy.
pub fn supported_event_names() -> impl Iterator<Item = &'static str> {
    USER_EVENT_NAMES.iter().chain(ACCESS_EVENT_NAMES).chain(PASSWORD_POLICY_EVENT_NAMES).copied()
}

/// Calls that change which policies reach users: the policy checks judge every user concerned.
const ACCESS_EVENT_NAMES: &[&str] = &[
    "AttachUserPolicy",
    "DetachUserPolicy",
    "PutUserPolicy",
    "DeleteUserPolicy",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "AttachGroupPolicy",
    "DetachGroupPolicy",
    "PutGroupPolicy",
    "DeleteGroupPolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
];

/// Calls that change the account password policy.
const PASSWORD_POLICY_EVENT_NAMES: &[&str] = &["UpdateAccountPasswordPolicy", "DeleteAccountPasswordPolicy"];

/// IAM calls that reach the function (older rules forwarded them) but never change what it checks.
const NEVER_ACTIONABLE: &[(&str, &str)] = &[(
    "DeleteVirtualMFADevice",
    "IAM deletes only an unassigned MFA device (the DeactivateMFADevice event before it names the user), \
     so no user's MFA state changed",
)];

/// What an event asks the function to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The daily posture scan.
    Schedule {
        /// Account from the event envelope.
        account: Option<String>,
        /// Region from the event envelope.
        region: Option<String>,
    },
    /// An IAM call that changed one user.
    IamChange(IamChange),
    /// The root user acted on its own credentials, signed in, or made a call naming no user.
    RootActivity(RootActivity),
    /// A call that changed which policies reach users (a user's, a group's, or a policy's version).
    AccessChange(AccessChange),
    /// The account password policy was changed or deleted.
    PasswordPolicyChange(AccountCall),
    /// A role was assumed (`sts:AssumeRole`): `break-glass-used` when it is a break-glass role.
    RoleAssumed(RoleAssumption),
    /// An IAM user signed in to the console, or tried to: `break-glass-used` for a break-glass user.
    UserSignIn(UserSignIn),
    /// A secret was written, restored, deleted or re-policied: judged when it is the registry.
    SecretChanged(SecretChange),
    /// An Organizations call that may change which accounts the SCP protects (organization mode).
    OrganizationChange(OrganizationChange),
    /// `sts:AssumeRoot`: a root session started in a member account (caller side).
    RootSessionStarted(AssumeRootCall),
    /// A centralized root access feature was enabled or disabled.
    RootFeatureChanged(RootFeatureChange),
}

/// A successful call about the account as a whole: who, where, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCall {
    /// `detail.eventName`.
    pub event_name: String,
    /// Who made the call.
    pub actor: Actor,
    /// When, from where, and whether with MFA.
    pub context: CallContext,
    /// Account from the event.
    pub account: String,
    /// Region from the event.
    pub region: String,
}

/// A call that changed what reaches users, and what it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessChange {
    /// The user, group or policy the call changed.
    pub target: AccessTarget,
    /// The call.
    pub call: AccountCall,
}

/// Something the root user did; the root checks run on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootActivity {
    /// `detail.eventName` (`CreateAccessKey`, `EnableMFADevice`, `ConsoleLogin`, …).
    pub event_name: String,
    /// The root principal (`arn:aws:iam::ACCOUNT:root`).
    pub actor: Actor,
    /// Where and how.
    pub context: CallContext,
    /// The access key the call was about, if any (root's own key).
    pub access_key_id: Option<String>,
    /// The access key root made the call with (`userIdentity.accessKeyId`): a temporary `ASIA…`
    /// key may be a root session's, which the app pairs with the `AssumeRoot` that opened it.
    pub caller_key_id: Option<String>,
    /// Account from the event.
    pub account: String,
    /// Region from the event.
    pub region: String,
}

/// One successful IAM call about one user, from a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamChange {
    /// `detail.eventName`, one of [`supported_event_names`].
    pub event_name: String,
    /// The user the call changed.
    pub user_name: String,
    /// Who made the call.
    pub actor: Actor,
    /// The exception tag value the call set (`TagUser`, `CreateUser`), if any.
    pub exception_value_set: Option<String>,
    /// Every tag the call set (`TagUser`, `CreateUser`), as (key, value).
    pub tags_set: Vec<(String, String)>,
    /// The access key the call was about, if any.
    pub access_key_id: Option<String>,
    /// Account from the event.
    pub account: String,
    /// Region from the event (`detail.awsRegion`).
    pub region: String,
    /// When, from where, and whether with MFA.
    pub context: CallContext,
}

/// The result of parsing a well-formed event.
// One value per invocation, moved once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Something to do.
    Trigger(Trigger),
    /// Nothing to do, and why (logged, not an error).
    Ignored(String),
}

/// Why an event could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not an EventBridge event of the expected shape.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A field the event name requires is absent.
    #[error("malformed {event_name} event: {field} is missing")]
    MissingField {
        /// `detail.eventName`.
        event_name: String,
        /// The JSON path that was expected.
        field: &'static str,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudTrailRecord {
    event_name: String,
    #[serde(default)]
    event_source: Option<String>,
    #[serde(default)]
    aws_region: Option<String>,
    #[serde(default)]
    event_time: Option<DateTime<Utc>>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    recipient_account_id: Option<String>,
    #[serde(default, rename = "sourceIPAddress")]
    source_ip_address: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    additional_event_data: Option<Value>,
    user_identity: UserIdentity,
    #[serde(default)]
    request_parameters: Option<Value>,
    #[serde(default)]
    response_elements: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    session_context: Option<SessionContext>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext {
    #[serde(default)]
    session_issuer: Option<SessionIssuer>,
    #[serde(default)]
    attributes: Option<SessionAttributes>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionAttributes {
    /// `"true"` or `"false"`, as a string.
    #[serde(default)]
    mfa_authenticated: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SessionIssuer {
    #[serde(default)]
    arn: Option<String>,
}

/// Parses an EventBridge event (raw JSON text).
pub fn parse_event_str(text: &str, exception_tag_key: &str) -> Result<Parsed, EventError> {
    let value: Value = serde_json::from_str(text).map_err(|e| EventError::Malformed(format!("not JSON: {e}")))?;
    parse_event(value, exception_tag_key)
}

/// Parses an EventBridge event already decoded as JSON.
pub fn parse_event(value: Value, exception_tag_key: &str) -> Result<Parsed, EventError> {
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(value).map_err(|e| EventError::Malformed(format!("not an EventBridge event ({e})")))?;
    match envelope.detail_type.as_str() {
        SCHEDULE_DETAIL_TYPE => {
            Ok(Parsed::Trigger(Trigger::Schedule { account: envelope.account, region: envelope.region }))
        }
        CLOUDTRAIL_DETAIL_TYPE if root::is_root_access_event(&envelope) => root::parse(envelope),
        CLOUDTRAIL_DETAIL_TYPE if privileged::is_privileged_source(&envelope.source) => privileged::parse(envelope),
        CLOUDTRAIL_DETAIL_TYPE if organizations::is_organizations_source(&envelope.source) => {
            organizations::parse(envelope)
        }
        CLOUDTRAIL_DETAIL_TYPE => parse_cloudtrail(envelope, exception_tag_key),
        SIGN_IN_DETAIL_TYPE => parse_sign_in(envelope),
        other => Ok(Parsed::Ignored(format!("detail-type {other:?} from {} is not handled", envelope.source))),
    }
}

impl CloudTrailRecord {
    fn from_detail(detail: Value) -> Result<CloudTrailRecord, EventError> {
        serde_json::from_value(detail)
            .map_err(|e| EventError::Malformed(format!("detail is not a CloudTrail record ({e})")))
    }

    fn is_root_caller(&self) -> bool {
        self.user_identity.kind.as_deref() == Some("Root")
    }

    fn context(&self) -> CallContext {
        let session_mfa = self
            .user_identity
            .session_context
            .as_ref()
            .and_then(|s| s.attributes.as_ref())
            .and_then(|a| a.mfa_authenticated.as_deref())
            .map(|v| v.eq_ignore_ascii_case("true"));
        // Console sign-ins say it in additionalEventData.MFAUsed ("Yes"/"No") instead.
        let sign_in_mfa = self
            .additional_event_data
            .as_ref()
            .and_then(|d| d.get("MFAUsed"))
            .and_then(Value::as_str)
            .map(|v| v.eq_ignore_ascii_case("yes"));
        CallContext {
            event_time: self.event_time,
            source_ip: self.source_ip_address.clone(),
            user_agent: self.user_agent.clone(),
            mfa_authenticated: sign_in_mfa.or(session_mfa),
        }
    }

    fn actor(&self, event_name: &str) -> Result<Actor, EventError> {
        let arn = match (&self.user_identity.arn, self.is_root_caller()) {
            (Some(arn), _) => arn.clone(),
            // Root's arn is always present in practice; the account id is enough to name it.
            (None, true) => format!("arn:aws:iam::{}:root", self.recipient_account_id.as_deref().unwrap_or("unknown")),
            (None, false) => {
                return Err(EventError::MissingField { event_name: event_name.to_owned(), field: "userIdentity.arn" });
            }
        };
        let issuer_arn = self
            .user_identity
            .session_context
            .as_ref()
            .and_then(|s| s.session_issuer.as_ref())
            .and_then(|i| i.arn.clone());
        Ok(Actor { arn, issuer_arn, root: self.is_root_caller() })
    }

    fn account(&self, envelope_account: Option<String>, event_name: &str) -> Result<String, EventError> {
        envelope_account
            .or_else(|| self.recipient_account_id.clone())
            .ok_or(EventError::Malformed(format!("{event_name}: account is missing")))
    }

    fn region(&self, envelope_region: Option<String>) -> String {
        self.aws_region.clone().or(envelope_region).unwrap_or_else(|| "us-east-1".to_owned())
    }
}

/// A console sign-in: root's successful sign-ins (`root-used`), and IAM users' sign-ins,
/// successful or not, for the app to match against the break-glass users.
fn parse_sign_in(envelope: EventBridgeEvent<Value>) -> Result<Parsed, EventError> {
    let record = CloudTrailRecord::from_detail(envelope.detail)?;
    let name = record.event_name.as_str();
    if name != "ConsoleLogin" {
        return Ok(Parsed::Ignored(format!("{name} from {} is not a console sign-in", envelope.source)));
    }
    if record.user_identity.kind.as_deref() == Some("IAMUser") {
        return privileged::parse_user_sign_in(&record, envelope.account, envelope.region);
    }
    if !record.is_root_caller() {
        let who = record.user_identity.kind.as_deref().unwrap_or("an unknown identity type");
        return Ok(Parsed::Ignored(format!("ConsoleLogin by {who}: only root and IAM user sign-ins are handled")));
    }
    let result = record.response_elements.as_ref().and_then(|r| r.get("ConsoleLogin")).and_then(Value::as_str);
    if result != Some("Success") {
        return Ok(Parsed::Ignored(format!(
            "root ConsoleLogin did not succeed ({}): nobody signed in",
            record.error_message.as_deref().or(result).unwrap_or("no result recorded")
        )));
    }
    Ok(Parsed::Trigger(Trigger::RootActivity(RootActivity {
        event_name: name.to_owned(),
        actor: record.actor(name)?,
        context: record.context(),
        access_key_id: None,
        caller_key_id: None,
        account: record.account(envelope.account, name)?,
        region: record.region(envelope.region),
    })))
}

/// The tags a `TagUser` or `CreateUser` call set, as (key, value); none for other calls.
fn tags_set(name: &str, request: Option<&Value>) -> Vec<(String, String)> {
    if !matches!(name, "TagUser" | "CreateUser") {
        return Vec::new();
    }
    request
        .and_then(|r| r.get("tags"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let key = t.get("key").and_then(Value::as_str)?;
            Some((key.to_owned(), t.get("value").and_then(Value::as_str).unwrap_or_default().to_owned()))
        })
        .collect()
}

fn parse_cloudtrail(envelope: EventBridgeEvent<Value>, exception_tag_key: &str) -> Result<Parsed, EventError> {
    let record = CloudTrailRecord::from_detail(envelope.detail)?;
    let name = record.event_name.as_str();
    if envelope.source != "aws.iam" || record.event_source.as_deref().is_some_and(|s| s != "iam.amazonaws.com") {
        return Ok(Parsed::Ignored(format!("{name} from {} is not an IAM call", envelope.source)));
    }
    if let Some((_, why)) = NEVER_ACTIONABLE.iter().find(|(n, _)| *n == name) {
        return Ok(Parsed::Ignored(format!("{name}: {why}")));
    }
    if !supported_event_names().any(|n| n == name) {
        return Ok(Parsed::Ignored(format!("{name} is not an event this function handles")));
    }
    if let Some(code) = &record.error_code {
        return Ok(Parsed::Ignored(format!(
            "{name} failed with {code} ({}): nothing changed",
            record.error_message.as_deref().unwrap_or("no message")
        )));
    }
    let missing = |field| EventError::MissingField { event_name: name.to_owned(), field };
    let request = record.request_parameters.as_ref().filter(|v| !v.is_null());
    let call = || -> Result<AccountCall, EventError> {
        Ok(AccountCall {
            event_name: name.to_owned(),
            actor: record.actor(name)?,
            context: record.context(),
            account: record.account(envelope.account.clone(), name)?,
            region: record.region(envelope.region.clone()),
        })
    };
    if PASSWORD_POLICY_EVENT_NAMES.contains(&name) {
        return Ok(Parsed::Trigger(Trigger::PasswordPolicyChange(call()?)));
    }
    if ACCESS_EVENT_NAMES.contains(&name) {
        return Ok(match access_target(name, request)? {
            Ok(target) => Parsed::Trigger(Trigger::AccessChange(AccessChange { target, call: call()? })),
            Err(why) => Parsed::Ignored(why),
        });
    }
    let response = record.response_elements.as_ref().filter(|v| !v.is_null());
    let req_str = |k: &str| request.and_then(|r| r.get(k)).and_then(Value::as_str).map(str::to_owned);
    // A user acting on its own keys omits userName: the caller is then the subject.
    let caller_user = || {
        (record.user_identity.kind.as_deref() == Some("IAMUser"))
            .then(|| record.user_identity.user_name.clone())
            .flatten()
    };

    let (user_name, access_key_id, field) = match name {
        "CreateAccessKey" => {
            let key = response.and_then(|r| r.get("accessKey"));
            let from_response = key.and_then(|k| k.get("userName")).and_then(Value::as_str).map(str::to_owned);
            let id = key.and_then(|k| k.get("accessKeyId")).and_then(Value::as_str).map(str::to_owned);
            (
                req_str("userName").or(from_response).or_else(caller_user),
                id,
                "requestParameters.userName or responseElements.accessKey.userName",
            )
        }
        "UpdateAccessKey" | "DeleteAccessKey" => {
            (req_str("userName").or_else(caller_user), req_str("accessKeyId"), "requestParameters.userName")
        }
        _ => (req_str("userName"), None, "requestParameters.userName"),
    };
    // Root acting on itself: CloudTrail names no IAM user (or the literal "AWS ROOT USER").
    // That is the most important signal of all, never a malformed event.
    let about_root = match user_name.as_deref() {
        Some(ROOT_USER_NAME) => true,
        None => record.is_root_caller(),
        Some(_) => false,
    };
    if about_root {
        return Ok(Parsed::Trigger(Trigger::RootActivity(RootActivity {
            event_name: name.to_owned(),
            actor: record.actor(name)?,
            context: record.context(),
            access_key_id,
            caller_key_id: record.user_identity.access_key_id.clone(),
            account: record.account(envelope.account, name)?,
            region: record.region(envelope.region),
        })));
    }
    let user_name = user_name.ok_or_else(|| missing(field))?;
    if !is_valid_user_name(&user_name) {
        return Err(EventError::Malformed(format!("{name}: {user_name:?} is not a valid IAM user name")));
    }

    let tags_set = tags_set(name, request);
    let exception_value_set =
        tags_set.iter().find(|(k, _)| k.eq_ignore_ascii_case(exception_tag_key)).map(|(_, v)| v.clone());

    Ok(Parsed::Trigger(Trigger::IamChange(IamChange {
        event_name: name.to_owned(),
        user_name,
        actor: record.actor(name)?,
        exception_value_set,
        tags_set,
        access_key_id,
        account: record.account(envelope.account, name)?,
        region: record.region(envelope.region),
        context: record.context(),
    })))
}

/// What an access event changed; `Err` with the reason when it changed nothing in force.
fn access_target(name: &str, request: Option<&Value>) -> Result<Result<AccessTarget, String>, EventError> {
    let field = |key: &str, path: &'static str| {
        request
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| EventError::MissingField { event_name: name.to_owned(), field: path })
    };
    Ok(Ok(match name {
        "AttachGroupPolicy" | "DetachGroupPolicy" | "PutGroupPolicy" | "DeleteGroupPolicy" => {
            let group = field("groupName", "requestParameters.groupName")?;
            if !is_valid_group_name(&group) {
                return Err(EventError::Malformed(format!("{name}: {group:?} is not a valid IAM group name")));
            }
            AccessTarget::Group(group)
        }
        "CreatePolicyVersion" | "SetDefaultPolicyVersion" => {
            let arn = field("policyArn", "requestParameters.policyArn")?;
            if !(arn.starts_with("arn:") && arn.contains(":policy/")) {
                return Err(EventError::Malformed(format!("{name}: {arn:?} is not a managed policy ARN")));
            }
            let becomes_default = request.and_then(|r| r.get("setAsDefault")).and_then(Value::as_bool);
            if name == "CreatePolicyVersion" && becomes_default != Some(true) {
                return Ok(Err(format!(
                    "CreatePolicyVersion on {arn} without setAsDefault: the version in force did not change"
                )));
            }
            AccessTarget::Policy(arn)
        }
        _ => {
            let user = field("userName", "requestParameters.userName")?;
            if !is_valid_user_name(&user) {
                return Err(EventError::Malformed(format!("{name}: {user:?} is not a valid IAM user name")));
            }
            AccessTarget::User(user)
        }
    }))
}

/// IAM group names: 1–128 characters of `[A-Za-z0-9+=,.@_-]`.
#[must_use]
pub fn is_valid_group_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) mod samples {
    //! The files in `events/`, compiled in so tests read exactly what is shipped.
    macro_rules! samples {
        ($($f:literal),* $(,)?) => { pub const ALL: &[(&str, &str)] = &[$(($f, include_str!(concat!("../events/", $f)))),*]; };
    }
    samples!(
        "tag-user-access-exception.json",
        "tag-user-self-granted.json",
        "tag-user-failed-access-denied.json",
        "untag-user-access-exception.json",
        "untag-user-by-sentinel.json",
        "create-user-with-access-exception.json",
        "create-access-key.json",
        "create-access-key-self.json",
        "update-access-key.json",
        "delete-access-key.json",
        "create-login-profile.json",
        "enable-mfa-device.json",
        "deactivate-mfa-device.json",
        "delete-virtual-mfa-device.json",
        "scheduled-daily-scan.json",
        "root-create-access-key-self.json",
        "root-enable-mfa-device-self.json",
        "root-console-sign-in.json",
        "deactivate-mfa-device-by-root.json",
        "create-user-by-cloudformation.json",
        "update-access-key-console-mfa.json",
        "create-login-profile-no-recipient.json",
        "attach-user-policy-admin.json",
        "add-user-to-group.json",
        "attach-group-policy.json",
        "create-policy-version-default.json",
        "update-account-password-policy.json",
        "assume-role-break-glass.json",
        "console-sign-in-break-glass-user.json",
        "put-secret-value-registry.json",
        "organizations-attach-policy.json",
        "organizations-detach-policy.json",
        "organizations-update-policy.json",
        "organizations-delete-policy.json",
        "organizations-move-account.json",
        "organizations-create-account.json",
        "organizations-invite-account.json",
        "assume-root-create-password.json",
        "assume-root-audit.json",
        "assume-root-unlock-bucket-policy.json",
        "root-session-delete-bucket-policy.json",
        "root-session-delete-login-profile.json",
        "disable-organizations-root-sessions.json",
        "enable-organizations-root-credentials-management.json",
    );
}
