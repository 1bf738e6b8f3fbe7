//! Turns an EventBridge event into a [`Trigger`]: an IAM change to one user, or the daily schedule.
//!
//! Malformed events are errors; well-formed events this function has nothing to do
//! with (another event name, a call that failed) are [`Parsed::Ignored`] with a reason.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::checks::Actor;

/// `detail-type` of CloudTrail API calls forwarded by EventBridge.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// `detail-type` of EventBridge schedules.
pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";

/// The IAM API calls the function reacts to (the EventBridge rule's `eventName` list).
pub const SUPPORTED_EVENT_NAMES: &[&str] = &[
    "TagUser",
    "UntagUser",
    "CreateUser",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateLoginProfile",
    "EnableMFADevice",
    "DeactivateMFADevice",
    "DeleteVirtualMFADevice",
];

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
}

/// One successful IAM call about one user, from a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamChange {
    /// `detail.eventName`, one of [`SUPPORTED_EVENT_NAMES`].
    pub event_name: String,
    /// The user the call changed.
    pub user_name: String,
    /// Who made the call.
    pub actor: Actor,
    /// The exception tag value the call set (`TagUser`, `CreateUser`), if any.
    pub exception_value_set: Option<String>,
    /// The access key the call was about, if any.
    pub access_key_id: Option<String>,
    /// Account from the event.
    pub account: String,
    /// Region from the event (`detail.awsRegion`).
    pub region: String,
    /// `detail.eventTime`.
    pub event_time: Option<DateTime<Utc>>,
}

/// The result of parsing a well-formed event.
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
    session_context: Option<SessionContext>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionContext {
    #[serde(default)]
    session_issuer: Option<SessionIssuer>,
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
        CLOUDTRAIL_DETAIL_TYPE => parse_cloudtrail(envelope, exception_tag_key),
        other => Ok(Parsed::Ignored(format!("detail-type {other:?} from {} is not handled", envelope.source))),
    }
}

fn parse_cloudtrail(envelope: EventBridgeEvent<Value>, exception_tag_key: &str) -> Result<Parsed, EventError> {
    let record: CloudTrailRecord = serde_json::from_value(envelope.detail)
        .map_err(|e| EventError::Malformed(format!("detail is not a CloudTrail record ({e})")))?;
    let name = record.event_name.as_str();
    if envelope.source != "aws.iam" || record.event_source.as_deref().is_some_and(|s| s != "iam.amazonaws.com") {
        return Ok(Parsed::Ignored(format!("{name} from {} is not an IAM call", envelope.source)));
    }
    if !SUPPORTED_EVENT_NAMES.contains(&name) {
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
    let response = record.response_elements.as_ref().filter(|v| !v.is_null());
    let req_str = |k: &str| request.and_then(|r| r.get(k)).and_then(Value::as_str).map(str::to_owned);
    // A user acting on its own keys omits userName: the caller is then the subject.
    let caller_user = || {
        (record.user_identity.kind.as_deref() == Some("IAMUser"))
            .then(|| record.user_identity.user_name.clone())
            .flatten()
    };

    let (user_name, access_key_id) = match name {
        "CreateAccessKey" => {
            let key = response.and_then(|r| r.get("accessKey"));
            let from_response = key.and_then(|k| k.get("userName")).and_then(Value::as_str).map(str::to_owned);
            let user = req_str("userName").or(from_response).or_else(caller_user);
            let id = key.and_then(|k| k.get("accessKeyId")).and_then(Value::as_str).map(str::to_owned);
            (user.ok_or_else(|| missing("requestParameters.userName or responseElements.accessKey.userName"))?, id)
        }
        "UpdateAccessKey" | "DeleteAccessKey" => (
            req_str("userName").or_else(caller_user).ok_or_else(|| missing("requestParameters.userName"))?,
            req_str("accessKeyId"),
        ),
        "DeleteVirtualMFADevice" => {
            // CloudTrail records only the serial (arn:aws:iam::ACCOUNT:mfa/NAME); by convention NAME is the user.
            let serial = req_str("serialNumber").ok_or_else(|| missing("requestParameters.serialNumber"))?;
            let device = serial.rsplit('/').next().filter(|s| !s.is_empty() && serial.contains(":mfa/"));
            (
                req_str("userName")
                    .or_else(|| device.map(str::to_owned))
                    .ok_or_else(|| missing("requestParameters.serialNumber (arn:aws:iam::ACCOUNT:mfa/NAME)"))?,
                None,
            )
        }
        _ => (req_str("userName").ok_or_else(|| missing("requestParameters.userName"))?, None),
    };
    if !is_valid_user_name(&user_name) {
        return Err(EventError::Malformed(format!("{name}: {user_name:?} is not a valid IAM user name")));
    }

    let exception_value_set = match name {
        "TagUser" | "CreateUser" => request
            .and_then(|r| r.get("tags"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| t.get("key").and_then(Value::as_str).is_some_and(|k| k.eq_ignore_ascii_case(exception_tag_key)))
            .map(|t| t.get("value").and_then(Value::as_str).unwrap_or_default().to_owned()),
        _ => None,
    };

    let actor_arn = record.user_identity.arn.clone().ok_or_else(|| missing("userIdentity.arn"))?;
    let issuer_arn = record
        .user_identity
        .session_context
        .as_ref()
        .and_then(|s| s.session_issuer.as_ref())
        .and_then(|i| i.arn.clone());
    let account = envelope
        .account
        .or(record.recipient_account_id)
        .ok_or(EventError::Malformed(format!("{name}: account is missing")))?;
    Ok(Parsed::Trigger(Trigger::IamChange(IamChange {
        event_name: name.to_owned(),
        user_name,
        actor: Actor { arn: actor_arn, issuer_arn },
        exception_value_set,
        access_key_id,
        account,
        region: record.aws_region.or(envelope.region).unwrap_or_else(|| "us-east-1".to_owned()),
        event_time: record.event_time.or(envelope.time),
    })))
}

/// IAM user names: 1–64 characters of `[A-Za-z0-9+=,.@_-]`.
#[must_use]
pub fn is_valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, EventError> {
        parse_event_str(text, "AccessException")
    }

    fn change(text: &str) -> IamChange {
        match parse(text).unwrap() {
            Parsed::Trigger(Trigger::IamChange(c)) => c,
            other => panic!("expected an IAM change, got {other:?}"),
        }
    }

    #[test]
    fn tag_user_sample() {
        let c = change(include_str!("../events/tag-user-access-exception.json"));
        assert_eq!(c.event_name, "TagUser");
        assert_eq!(c.user_name, "svc-legacy-erp");
        assert_eq!(c.exception_value_set.as_deref(), Some("True"));
        assert_eq!(c.actor.issuer_arn.as_deref(), Some("arn:aws:iam::123456789012:role/SecurityAdmin"));
        assert_eq!(c.account, "123456789012");
    }

    #[test]
    fn create_access_key_for_oneself_takes_the_user_from_the_response() {
        let c = change(include_str!("../events/create-access-key-self.json"));
        assert_eq!(c.user_name, "dev-mallory");
        assert_eq!(c.access_key_id.as_deref(), Some("AKIAEXAMPLEMALLORY02"));
    }

    #[test]
    fn delete_virtual_mfa_device_takes_the_user_from_the_serial() {
        assert_eq!(change(include_str!("../events/delete-virtual-mfa-device.json")).user_name, "analyst-dave");
    }

    #[test]
    fn every_sample_parses() {
        for (name, text) in crate::event::samples::ALL {
            let parsed = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            if *name == "tag-user-failed-access-denied.json" {
                assert!(matches!(parsed, Parsed::Ignored(ref r) if r.contains("AccessDenied")), "{name}: {parsed:?}");
            } else {
                assert!(matches!(parsed, Parsed::Trigger(_)), "{name}: {parsed:?}");
            }
        }
    }

    #[test]
    fn schedule_sample() {
        assert!(matches!(
            parse(include_str!("../events/scheduled-daily-scan.json")).unwrap(),
            Parsed::Trigger(Trigger::Schedule { .. })
        ));
    }

    #[test]
    fn malformed_events_are_errors_that_say_why() {
        assert!(parse("{").unwrap_err().to_string().contains("not JSON"));
        assert!(parse("[]").unwrap_err().to_string().contains("not an EventBridge event"));
        let no_user = include_str!("../events/tag-user-access-exception.json")
            .replace("\"userName\": \"svc-legacy-erp\"", "\"user\": \"x\"");
        assert_eq!(
            parse(&no_user).unwrap_err().to_string(),
            "malformed TagUser event: requestParameters.userName is missing"
        );
        let bad_name = include_str!("../events/tag-user-access-exception.json").replace("svc-legacy-erp", "a b");
        assert!(parse(&bad_name).unwrap_err().to_string().contains("not a valid IAM user name"));
    }

    #[test]
    fn other_event_names_are_ignored() {
        let text = include_str!("../events/tag-user-access-exception.json").replace("\"TagUser\"", "\"TagRole\"");
        assert!(matches!(parse(&text).unwrap(), Parsed::Ignored(r) if r.contains("TagRole")));
    }
}

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
    );
}
