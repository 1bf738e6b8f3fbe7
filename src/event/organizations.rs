//! AWS Organizations calls that change which SCPs apply to which accounts (source
//! `aws.organizations`, CloudTrail in the management account): an SCP attached, detached,
//! edited or deleted, an account moved, created or invited.
//!
//! Parsing says which accounts a change reaches, as far as the event tells; the app reads the
//! organization and judges those accounts. Failed calls are ignored (nothing changed), and so
//! are policies of other types when the event names the type (tag, backup, AI opt-out policies).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde_json::Value;

use super::{AccountCall, CloudTrailRecord, EventError, Parsed, Trigger};
use crate::domain::names::is_account_id;

/// The Organizations calls the function reacts to (the organization rule's `eventName` list).
pub const ORGANIZATIONS_EVENT_NAMES: &[&str] = &[
    "AttachPolicy",
    "DetachPolicy",
    "UpdatePolicy",
    "DeletePolicy",
    "MoveAccount",
    "CreateAccount",
    "InviteAccountToOrganization",
];

/// `source` of Organizations events on EventBridge.
pub const ORGANIZATIONS_SOURCE: &str = "aws.organizations";

/// How CloudTrail records the names and e-mail addresses it withholds (`CreateAccount`).
const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Which member accounts a change can have left unprotected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeReach {
    /// An SCP attached to or detached from a root, an OU or an account: every account at or under it.
    Target {
        /// `requestParameters.targetId`: `r-…`, `ou-…` or an account id.
        target: String,
        /// `requestParameters.policyId`.
        policy: String,
    },
    /// An SCP's content changed: the accounts it applies to.
    Policy(String),
    /// One account (moved, created, invited).
    Account(String),
    /// An account known only by its name (a `CreateAccount` still in progress).
    AccountNamed(String),
    /// Not knowable from the event (a deleted policy is attached nowhere any more): every account.
    Organization,
}

impl std::fmt::Display for ChangeReach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeReach::Target { target, policy } => write!(f, "policy {policy} on {target}"),
            ChangeReach::Policy(p) => write!(f, "policy {p}"),
            ChangeReach::Account(a) => write!(f, "account {a}"),
            ChangeReach::AccountNamed(n) => write!(f, "account named {n:?}"),
            ChangeReach::Organization => f.write_str("the organization"),
        }
    }
}

/// A successful Organizations call that may change SCP coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationChange {
    /// The accounts it can reach.
    pub reach: ChangeReach,
    /// Who, when, from where; the account is the management account the call was made in.
    pub call: AccountCall,
}

/// Whether a CloudTrail event from `source` is an Organizations call.
pub(super) fn is_organizations_source(source: &str) -> bool {
    source == ORGANIZATIONS_SOURCE
}

pub(super) fn parse(envelope: EventBridgeEvent<Value>) -> Result<Parsed, EventError> {
    let record = CloudTrailRecord::from_detail(envelope.detail)?;
    let name = record.event_name.as_str();
    if record.event_source.as_deref().is_some_and(|s| s != "organizations.amazonaws.com") {
        return Ok(Parsed::Ignored(format!("{name} from {} is not an Organizations call", envelope.source)));
    }
    if !ORGANIZATIONS_EVENT_NAMES.contains(&name) {
        return Ok(Parsed::Ignored(format!("{name} is not an Organizations event this function handles")));
    }
    if let Some(code) = &record.error_code {
        return Ok(Parsed::Ignored(format!(
            "{name} failed with {code} ({}): nothing changed",
            record.error_message.as_deref().unwrap_or("no message")
        )));
    }
    let request = record.request_parameters.as_ref().filter(|v| !v.is_null());
    let response = record.response_elements.as_ref().filter(|v| !v.is_null());
    let reach = match reach(name, request, response)? {
        Ok(reach) => reach,
        Err(why) => return Ok(Parsed::Ignored(why)),
    };
    let call = AccountCall {
        event_name: name.to_owned(),
        actor: record.actor(name)?,
        context: record.context(),
        account: record.account(envelope.account, name)?,
        region: record.region(envelope.region),
    };
    Ok(Parsed::Trigger(Trigger::OrganizationChange(OrganizationChange { reach, call })))
}

/// What the call reaches; `Err` with the reason when it cannot change SCP coverage.
fn reach(
    name: &str,
    request: Option<&Value>,
    response: Option<&Value>,
) -> Result<Result<ChangeReach, String>, EventError> {
    let field = |key: &str, path: &'static str| {
        request
            .and_then(|r| r.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| EventError::MissingField { event_name: name.to_owned(), field: path })
    };
    let policy = || {
        let id = field("policyId", "requestParameters.policyId")?;
        if is_policy_id(&id) {
            Ok(id)
        } else {
            Err(EventError::Malformed(format!("{name}: {id:?} is not an Organizations policy id (p-…)")))
        }
    };
    let account = |id: String| {
        if is_account_id(&id) {
            Ok(id)
        } else {
            Err(EventError::Malformed(format!("{name}: {id:?} is not an AWS account id (12 digits)")))
        }
    };
    Ok(Ok(match name {
        "AttachPolicy" | "DetachPolicy" => {
            let policy = policy()?;
            let target = field("targetId", "requestParameters.targetId")?;
            if !(is_root_id(&target) || is_ou_id(&target) || is_account_id(&target)) {
                return Err(EventError::Malformed(format!(
                    "{name}: {target:?} is not a root (r-…), OU (ou-…) or account id"
                )));
            }
            ChangeReach::Target { target, policy }
        }
        "UpdatePolicy" => {
            let policy = policy()?;
            let kind = response.and_then(|r| r.pointer("/policy/policySummary/type")).and_then(Value::as_str);
            if let Some(kind) = kind.filter(|k| *k != "SERVICE_CONTROL_POLICY") {
                return Ok(Err(format!(
                    "UpdatePolicy on {policy}, a {kind}: only service control policies are judged"
                )));
            }
            ChangeReach::Policy(policy)
        }
        "DeletePolicy" => {
            policy()?;
            // A policy is detached everywhere before it can be deleted: whom it protected is
            // no longer in the organization's state.
            ChangeReach::Organization
        }
        "MoveAccount" => ChangeReach::Account(account(field("accountId", "requestParameters.accountId")?)?),
        "CreateAccount" => {
            let status = response.and_then(|r| r.get("createAccountStatus"));
            let str_at =
                |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_str).map(str::to_owned);
            if str_at(status, "state").as_deref() == Some("FAILED") {
                return Ok(Err(format!(
                    "CreateAccount failed ({}): no account was created",
                    str_at(status, "failureReason").unwrap_or_else(|| "no reason recorded".into())
                )));
            }
            match (str_at(status, "accountId"), str_at(request, "accountName")) {
                (Some(id), _) => ChangeReach::Account(account(id)?),
                (None, Some(n)) if n != HIDDEN && !n.is_empty() => ChangeReach::AccountNamed(n),
                // Account creation is asynchronous and CloudTrail withholds the name.
                _ => ChangeReach::Organization,
            }
        }
        "InviteAccountToOrganization" => {
            let target = request.and_then(|r| r.get("target"));
            let id = target.and_then(|t| t.get("id")).and_then(Value::as_str).ok_or_else(|| {
                EventError::MissingField { event_name: name.to_owned(), field: "requestParameters.target.id" }
            })?;
            match target.and_then(|t| t.get("type")).and_then(Value::as_str) {
                Some("ACCOUNT") | None => ChangeReach::Account(account(id.to_owned())?),
                // Invited by e-mail address: the account id is known only once it joins.
                Some(_) => ChangeReach::Organization,
            }
        }
        other => return Ok(Err(format!("{other} is not an Organizations event this function handles"))),
    }))
}

/// `p-` then 8 to 128 of `[0-9a-zA-Z_]` (AWS's own `p-FullAWSAccess` included).
fn is_policy_id(id: &str) -> bool {
    id.strip_prefix("p-").is_some_and(|rest| {
        (8..=128).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// `r-` then 4 to 32 lowercase letters or digits.
fn is_root_id(id: &str) -> bool {
    id.strip_prefix("r-").is_some_and(|rest| (4..=32).contains(&rest.len()) && lower_alnum(rest))
}

/// `ou-` then 4 to 32 lowercase letters or digits (the root's), `-`, 8 to 32 more.
fn is_ou_id(id: &str) -> bool {
    id.strip_prefix("ou-").and_then(|rest| rest.split_once('-')).is_some_and(|(root, ou)| {
        (4..=32).contains(&root.len()) && (8..=32).contains(&ou.len()) && lower_alnum(root) && lower_alnum(ou)
    })
}

fn lower_alnum(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event_str;

    fn parse(text: &str) -> Result<Parsed, EventError> {
        parse_event_str(text, "AccessException")
    }

    fn change(text: &str) -> OrganizationChange {
        match parse(text).unwrap() {
            Parsed::Trigger(Trigger::OrganizationChange(c)) => c,
            other => panic!("expected an organization change, got {other:?}"),
        }
    }

    const ATTACH: &str = include_str!("../../events/organizations-attach-policy.json");
    const DETACH: &str = include_str!("../../events/organizations-detach-policy.json");
    const UPDATE: &str = include_str!("../../events/organizations-update-policy.json");
    const DELETE: &str = include_str!("../../events/organizations-delete-policy.json");
    const MOVE: &str = include_str!("../../events/organizations-move-account.json");
    const CREATE: &str = include_str!("../../events/organizations-create-account.json");
    const INVITE: &str = include_str!("../../events/organizations-invite-account.json");

    #[test]
    fn every_sample_names_what_it_reaches_and_who_changed_it() {
        let c = change(ATTACH);
        assert_eq!(c.reach, ChangeReach::Target { target: "ou-a1b2-c3d4e5f6".into(), policy: "p-examplescp1".into() });
        assert_eq!(c.call.event_name, "AttachPolicy");
        assert_eq!(c.call.account, "111111111111");
        assert_eq!(c.call.actor.issuer_arn.as_deref(), Some("arn:aws:iam::111111111111:role/OrgAdmin"));
        assert_eq!(
            change(DETACH).reach,
            ChangeReach::Target { target: "ou-a1b2-s4n5d6b7".into(), policy: "p-examplescp1".into() }
        );
        assert_eq!(change(UPDATE).reach, ChangeReach::Policy("p-examplescp1".into()));
        assert_eq!(change(DELETE).reach, ChangeReach::Organization);
        assert_eq!(change(MOVE).reach, ChangeReach::Account("222222222222".into()));
        assert_eq!(change(CREATE).reach, ChangeReach::Organization, "CloudTrail hides the new account's name");
        assert_eq!(change(INVITE).reach, ChangeReach::Account("444444444444".into()));
        let named = CREATE.replacen(&format!("\"accountName\": \"{HIDDEN}\""), "\"accountName\": \"sandbox-2\"", 1);
        assert_eq!(change(&named).reach, ChangeReach::AccountNamed("sandbox-2".into()));
    }

    #[test]
    fn every_event_name_has_a_sample_and_the_list_has_no_duplicates() {
        let names: Vec<String> =
            [ATTACH, DETACH, UPDATE, DELETE, MOVE, CREATE, INVITE].iter().map(|t| change(t).call.event_name).collect();
        assert_eq!(names, ORGANIZATIONS_EVENT_NAMES);
    }

    #[test]
    fn other_policy_types_failed_calls_and_other_names_are_ignored_with_a_reason() {
        let tag = UPDATE.replace("\"SERVICE_CONTROL_POLICY\"", "\"TAG_POLICY\"");
        assert!(matches!(parse(&tag).unwrap(), Parsed::Ignored(r) if r.contains("a TAG_POLICY")));
        let failed = ATTACH.replace(
            "\"eventName\": \"AttachPolicy\",",
            "\"eventName\": \"AttachPolicy\", \"errorCode\": \"DuplicatePolicyAttachmentException\",",
        );
        assert!(
            matches!(parse(&failed).unwrap(), Parsed::Ignored(r) if r.contains("DuplicatePolicyAttachmentException"))
        );
        let other = ATTACH.replace("\"AttachPolicy\"", "\"CreateOrganizationalUnit\"");
        assert!(matches!(parse(&other).unwrap(), Parsed::Ignored(r) if r.contains("CreateOrganizationalUnit")));
        let failed_create = CREATE.replace("\"IN_PROGRESS\"", "\"FAILED\"");
        assert!(matches!(parse(&failed_create).unwrap(), Parsed::Ignored(r) if r.contains("no account was created")));
    }

    #[test]
    fn malformed_ids_and_missing_fields_are_named() {
        let no_target = ATTACH.replace("\"targetId\"", "\"target\"");
        assert_eq!(
            parse(&no_target).unwrap_err().to_string(),
            "malformed AttachPolicy event: requestParameters.targetId is missing"
        );
        let bad_target = ATTACH.replace("ou-a1b2-c3d4e5f6", "Sandbox");
        assert!(parse(&bad_target).unwrap_err().to_string().contains("not a root (r-…), OU (ou-…) or account id"));
        let bad_policy = UPDATE.replace("\"p-examplescp1\"", "\"RestrictIAMUserAccessWithExceptions\"");
        assert!(parse(&bad_policy).unwrap_err().to_string().contains("not an Organizations policy id"));
        let bad_account = MOVE.replace("\"222222222222\"", "\"2222\"");
        assert!(parse(&bad_account).unwrap_err().to_string().contains("not an AWS account id"));
    }

    #[test]
    fn ids_follow_the_organizations_patterns() {
        assert!(is_policy_id("p-FullAWSAccess") && is_policy_id("p-abcd1234") && !is_policy_id("p-abc"));
        assert!(is_root_id("r-ab12") && !is_root_id("r-AB12"));
        assert!(is_ou_id("ou-ab12-cdef5678") && !is_ou_id("ou-ab12") && !is_ou_id("ou-ab12-c"));
        assert!(is_account_id("123456789012") && !is_account_id("12345678901a"));
    }
}
