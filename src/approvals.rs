//! The approvals registry: who may carry the exception tag, approved by whom, until when.
//!
//! The registry is a JSON document (kept in Secrets Manager). Parsing is strict: a
//! registry with one bad entry is rejected whole, because remediation must never act
//! on a registry it does not fully understand.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One approved exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionApproval {
    /// IAM user name the approval is for.
    pub user: String,
    /// Who approved it.
    pub approved_by: String,
    /// Change or security ticket.
    pub ticket: String,
    /// When the approval lapses.
    pub expires: DateTime<Utc>,
    /// Why, free text.
    pub reason: Option<String>,
    /// The 12-digit account the user lives in: required in organization mode, where user names
    /// repeat across accounts; optional (and only validated) in single-account mode.
    pub account: Option<String>,
}

/// A parsed, validated approvals registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approvals {
    entries: Vec<ExceptionApproval>,
}

/// Why a registry document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Not JSON, or not the documented shape.
    #[error("approvals registry is not valid: {0}")]
    Invalid(String),
    /// An entry is missing a field or has a bad value.
    #[error("approvals registry entry {index} ({user}): {problem}")]
    BadEntry {
        /// Position in `exceptions`, from 0.
        index: usize,
        /// The entry's user, or `?`.
        user: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    exceptions: Vec<RawApproval>,
}

#[derive(Deserialize)]
struct RawApproval {
    user: Option<String>,
    approved_by: Option<String>,
    ticket: Option<String>,
    expires: Option<String>,
    reason: Option<String>,
    account: Option<String>,
}

impl Approvals {
    /// Builds a registry from already-validated approvals.
    #[must_use]
    pub fn new(entries: Vec<ExceptionApproval>) -> Self {
        Approvals { entries }
    }

    /// Parses the registry JSON (`{"exceptions": [...]}`); any bad entry rejects the whole document.
    pub fn parse(json: &str) -> Result<Approvals, RegistryError> {
        Approvals::parse_with(json, false)
    }

    /// Parses the registry of an organization: as [`Approvals::parse`], and every entry must name
    /// its `account`, so an approval for `alice` in one account never exempts `alice` in another.
    pub fn parse_for_organization(json: &str) -> Result<Approvals, RegistryError> {
        Approvals::parse_with(json, true)
    }

    /// The approvals for users of `account` only (organization mode).
    #[must_use]
    pub fn in_account(&self, account: &str) -> Approvals {
        Approvals { entries: self.entries.iter().filter(|a| a.account.as_deref() == Some(account)).cloned().collect() }
    }

    fn parse_with(json: &str, account_required: bool) -> Result<Approvals, RegistryError> {
        // serde's message can quote the document; report only where and what kind of error.
        let raw: RawRegistry = serde_json::from_str(json).map_err(|e| {
            RegistryError::Invalid(format!(
                "{:?} error at line {}, column {} (expected {{\"exceptions\": [{{\"user\", \"approved_by\", \"ticket\", \"expires\"}}]}})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let mut entries = Vec::with_capacity(raw.exceptions.len());
        for (index, r) in raw.exceptions.into_iter().enumerate() {
            let user_label = r.user.clone().unwrap_or_else(|| "?".to_owned());
            let bad = |problem: String| RegistryError::BadEntry { index, user: user_label.clone(), problem };
            let required = |v: Option<String>, field: &str| {
                v.filter(|s| !s.trim().is_empty()).ok_or_else(|| bad(format!("field `{field}` is missing or empty")))
            };
            let user = required(r.user, "user")?;
            let approved_by = required(r.approved_by, "approved_by")?;
            let ticket = required(r.ticket, "ticket")?;
            let expires_raw = required(r.expires, "expires")?;
            let expires = DateTime::parse_from_rfc3339(expires_raw.trim())
                .map_err(|e| bad(format!("`expires` is not an RFC 3339 date-time ({e})")))?
                .with_timezone(&Utc);
            let account = match r.account.map(|a| a.trim().to_owned()) {
                Some(a) if crate::domain::names::is_account_id(&a) => Some(a),
                Some(a) => return Err(bad(format!("`account` {a:?} is not a 12-digit AWS account id"))),
                None if account_required => {
                    return Err(bad("field `account` is missing: in organization mode every approval names the \
                                    12-digit account its user lives in"
                        .into()));
                }
                None => None,
            };
            entries.push(ExceptionApproval {
                user: user.trim().to_owned(),
                approved_by,
                ticket,
                expires,
                reason: r.reason,
                account,
            });
        }
        Ok(Approvals { entries })
    }

    /// The approval for `user` (IAM user names are case-insensitive); when several
    /// exist, the one that lasts longest, so a renewal never reads as an expiry.
    #[must_use]
    pub fn for_user(&self, user: &str) -> Option<&ExceptionApproval> {
        self.entries.iter().filter(|a| a.user.eq_ignore_ascii_case(user)).max_by_key(|a| a.expires)
    }

    /// Whether `user` has an approval that is still in force at `now`.
    #[must_use]
    pub fn is_valid_for(&self, user: &str, now: DateTime<Utc>) -> bool {
        self.for_user(user).is_some_and(|a| a.expires > now)
    }

    /// All approvals, in registry order.
    #[must_use]
    pub fn entries(&self) -> &[ExceptionApproval] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let a = Approvals::parse(
            r#"{"exceptions":[{"user":"alice","approved_by":"sec-lead@example.com","ticket":"SEC-1042","expires":"2027-01-31T00:00:00Z","reason":"vendor VPN"}]}"#,
        )
        .unwrap();
        let e = a.for_user("ALICE").unwrap();
        assert_eq!(e.ticket, "SEC-1042");
        assert_eq!(e.expires.to_rfc3339(), "2027-01-31T00:00:00+00:00");
    }

    #[test]
    fn an_empty_registry_is_valid_and_approves_nobody() {
        let a = Approvals::parse(r#"{"exceptions":[]}"#).unwrap();
        assert!(a.for_user("alice").is_none());
    }

    #[test]
    fn one_bad_entry_rejects_the_whole_registry() {
        let err = Approvals::parse(
            r#"{"exceptions":[{"user":"a","approved_by":"b","ticket":"T","expires":"2027-01-31T00:00:00Z"},{"user":"bob","approved_by":"x","ticket":"T-2","expires":"next week"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("entry 1 (bob)"), "{err}");
        assert!(err.to_string().contains("expires"), "{err}");
    }

    #[test]
    fn missing_fields_and_wrong_shapes_are_named() {
        let err = Approvals::parse(r#"{"exceptions":[{"user":"a","ticket":"T","expires":"2027-01-31T00:00:00Z"}]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("approved_by"), "{err}");
        assert!(Approvals::parse("[]").is_err());
        assert!(Approvals::parse("").is_err());
        assert!(Approvals::parse(r#"{"approvals":[]}"#).is_err());
    }

    #[test]
    fn organization_approvals_name_their_account_and_exempt_only_there() {
        let doc = r#"{"exceptions":[{"user":"alice","approved_by":"b","ticket":"T1","expires":"2027-01-01T00:00:00Z","account":"111122223333"}]}"#;
        let a = Approvals::parse_for_organization(doc).unwrap();
        assert_eq!(a.in_account("111122223333").for_user("alice").unwrap().ticket, "T1");
        assert!(a.in_account("444455556666").for_user("alice").is_none());
        let without =
            r#"{"exceptions":[{"user":"alice","approved_by":"b","ticket":"T1","expires":"2027-01-01T00:00:00Z"}]}"#;
        let err = Approvals::parse_for_organization(without).unwrap_err().to_string();
        assert!(err.contains("entry 0 (alice)") && err.contains("`account` is missing"), "{err}");
        assert!(Approvals::parse(without).is_ok(), "single-account registries need no account");
        let bad = r#"{"exceptions":[{"user":"alice","approved_by":"b","ticket":"T1","expires":"2027-01-01T00:00:00Z","account":"prod"}]}"#;
        let err = Approvals::parse(bad).unwrap_err().to_string();
        assert!(err.contains("12-digit"), "{err}");
    }

    #[test]
    fn the_longest_approval_wins_when_a_user_has_several() {
        let a = Approvals::parse(
            r#"{"exceptions":[{"user":"a","approved_by":"b","ticket":"T1","expires":"2026-01-01T00:00:00Z"},{"user":"A","approved_by":"b","ticket":"T2","expires":"2027-01-01T00:00:00Z"}]}"#,
        )
        .unwrap();
        assert_eq!(a.for_user("a").unwrap().ticket, "T2");
    }
}
