//! Plain data the checks look at: what IAM says about one user at one moment.
//!
//! Both collectors fill these: the event path from per-user IAM calls, the scan
//! from the credential report and `GetAccountAuthorizationDetails`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::policy::{PolicyDocument, PolicyError};

/// One IAM tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Tag key as stored on the user.
    pub key: String,
    /// Tag value as stored on the user.
    pub value: String,
}

impl Tag {
    /// Builds a tag from its key and value.
    #[must_use]
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag { key: key.into(), value: value.into() }
    }
}

/// How a key is named in findings: by id (event path) or by slot (scan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// The access key id, known on the event path.
    Id(String),
    /// The credential report's slot (1 or 2); the report has no key id.
    Slot(u8),
}

/// One access key of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// Which key this is.
    pub key: KeyRef,
    /// `Active` (true) or `Inactive`.
    pub active: bool,
    /// When the key was created (the report's `last_rotated`).
    pub created: DateTime<Utc>,
    /// When the key was last used; `None` if never.
    pub last_used: Option<DateTime<Utc>>,
}

impl AccessKey {
    /// The `resource` of a finding about this key: the id, or `access_key_N created YYYY-MM-DD`.
    #[must_use]
    pub fn resource(&self) -> String {
        match &self.key {
            KeyRef::Id(id) => id.clone(),
            KeyRef::Slot(n) => {
                format!("access_key_{n} created {}", self.created.format("%Y-%m-%d"))
            }
        }
    }
}

/// Everything the checks need to know about one IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSnapshot {
    /// IAM user name.
    pub name: String,
    /// User ARN.
    pub arn: String,
    /// Tags on the user.
    pub tags: Vec<Tag>,
    /// Access keys (at most two in IAM).
    pub keys: Vec<AccessKey>,
    /// Whether the user has a console password (a login profile).
    pub password_enabled: bool,
    /// When the password was last used to sign in; `None` if never (or unknown).
    pub password_last_used: Option<DateTime<Utc>>,
    /// When the current password was set (login profile creation or last change), if known.
    pub password_set: Option<DateTime<Utc>>,
    /// Whether the user has at least one MFA device.
    pub mfa_active: bool,
    /// The policies that reach the user, when they were read (GetAccountAuthorizationDetails);
    /// `None` on paths that do not read them: the policy checks are then not judged.
    pub policies: Option<UserPolicies>,
}

/// A policy embedded in a user or a group, parsed (or why it could not be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicy {
    /// The policy name.
    pub name: String,
    /// The document, or why it could not be read.
    pub document: Result<PolicyDocument, PolicyError>,
}

/// How policies reach one user: attached managed policies (ARNs), inline policies and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPolicies {
    /// Managed policies attached to the user itself.
    pub attached: Vec<String>,
    /// The user's inline policies.
    pub inline: Vec<InlinePolicy>,
    /// The groups the user is in.
    pub groups: Vec<String>,
}

impl UserPolicies {
    /// Whether a policy is attached to the user itself (managed or inline).
    #[must_use]
    pub fn has_direct(&self) -> bool {
        !self.attached.is_empty() || !self.inline.is_empty()
    }
}

/// A customer managed policy: its name and default version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// The policy name.
    pub name: String,
    /// The default version's document, or why it could not be read.
    pub document: Result<PolicyDocument, PolicyError>,
}

/// A group's own policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPolicies {
    /// Managed policies attached to the group (ARNs).
    pub attached: Vec<String>,
    /// The group's inline policies.
    pub inline: Vec<InlinePolicy>,
}

/// The account's groups and customer managed policies, as `GetAccountAuthorizationDetails`
/// returns them; AWS managed policies are known by ARN (see `checks::access`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyCatalogue {
    /// Customer managed policies that are attached somewhere, by ARN.
    pub managed: HashMap<String, ManagedPolicy>,
    /// Groups by name.
    pub groups: HashMap<String, GroupPolicies>,
}

impl UserSnapshot {
    /// Whether the user can make requests at all: a console password or an active key.
    #[must_use]
    pub fn has_credentials(&self) -> bool {
        self.password_enabled || self.keys.iter().any(|k| k.active)
    }

    /// The value of the tag `key`, matched case-insensitively as IAM matches tag keys.
    #[must_use]
    pub fn tag(&self, key: &str) -> Option<&Tag> {
        self.tags.iter().find(|t| t.key.eq_ignore_ascii_case(key))
    }
}

/// The root account's credential state, from the credential report's `<root_account>` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSnapshot {
    /// `arn:aws:iam::<account>:root`.
    pub arn: String,
    /// Root access keys.
    pub keys: Vec<AccessKey>,
    /// Whether root has MFA.
    pub mfa_active: bool,
}
