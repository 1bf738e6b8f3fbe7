//! An IAM call as CloudTrail records it: who made it, where and how, and what it changed.

use chrono::{DateTime, Utc};

/// Who made an IAM change, from the event's `userIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `userIdentity.arn` (for roles, the assumed-role session ARN).
    pub arn: String,
    /// `sessionContext.sessionIssuer.arn` for role sessions: the role itself.
    pub issuer_arn: Option<String>,
    /// `userIdentity.type` is `Root`: the account's root user made the call.
    pub root: bool,
}

impl Actor {
    /// Whether this actor is `principal`, by its own ARN or its role's.
    #[must_use]
    pub fn is(&self, principal: &str) -> bool {
        self.arn == principal || self.issuer_arn.as_deref() == Some(principal)
    }

    /// Whether this actor is the function itself: a session of `role_arn` and, when `session` is
    /// given, one carrying that session name (`…:assumed-role/ROLE/SESSION`), so that another
    /// session of the same role (an administrator's) is not mistaken for the function's.
    #[must_use]
    pub fn is_own(&self, role_arn: &str, session: Option<&str>) -> bool {
        match session {
            None => self.is(role_arn),
            Some(name) => {
                self.issuer_arn.as_deref() == Some(role_arn)
                    && self.arn.contains(":assumed-role/")
                    && self.arn.rsplit('/').next() == Some(name)
            }
        }
    }
}

/// Where and how a call was made: the evidence a person needs to judge it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// `detail.eventTime`.
    pub event_time: Option<DateTime<Utc>>,
    /// `detail.sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `detail.userAgent`.
    pub user_agent: Option<String>,
    /// Whether the caller signed in with MFA (`mfaAuthenticated`, or `MFAUsed` for sign-ins).
    pub mfa_authenticated: Option<bool>,
}

impl CallContext {
    /// The event's facts as a finding's evidence: which call, by whom, when, from where, with MFA.
    #[must_use]
    pub fn evidence(&self, event_name: &str, actor: &Actor) -> serde_json::Value {
        serde_json::json!({
            "event": event_name,
            "caller": actor.arn,
            "event_time": self.event_time,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "mfa_authenticated": self.mfa_authenticated,
        })
    }
}

/// What an IAM call changed that decides what reaches users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTarget {
    /// A user's own policies or group memberships.
    User(String),
    /// A group's policies: every member is concerned.
    Group(String),
    /// A managed policy's default version (ARN): every user it reaches is concerned.
    Policy(String),
}

impl std::fmt::Display for AccessTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessTarget::User(u) => write!(f, "user {u}"),
            AccessTarget::Group(g) => write!(f, "group {g}"),
            AccessTarget::Policy(p) => write!(f, "policy {p}"),
        }
    }
}
