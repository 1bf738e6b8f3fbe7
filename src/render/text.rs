//! Words shared by the renderings people read (e-mail, chat): what to do about each check,
//! what remediation did, and safe, bounded text from values anyone can set (tag values,
//! user names), so one hostile value can neither forge a line nor overflow a channel's limit.

use crate::finding::{CheckId, Finding, FindingState, RemediationStatus, Severity};

/// What a person should do about a finding of `check`, in one or two sentences.
#[must_use]
#[allow(clippy::too_many_lines)] // one arm per check, each named: the length grows with the vocabulary
pub fn what_to_do(check: CheckId) -> &'static str {
    // Named one by one, not `_`, so that a new check must say what to do about it.
    match check {
        CheckId::ExceptionUnapproved => {
            "Remove the AccessException tag, or, if the exception is legitimate, record an approval \
             (approver, ticket, expiry) in the approvals registry."
        }
        CheckId::ExceptionExpired => {
            "Renew the approval in the registry with a new expiry, or remove the AccessException tag."
        }
        CheckId::ExceptionExpiring => "Renew the approval before it expires, or let it lapse and remove the tag.",
        CheckId::ExceptionSelfGranted => {
            "Ask who set the tag and why: only an approver may grant it. Remove the tag unless an approver \
             confirms it, and review who may call iam:TagUser."
        }
        CheckId::ExceptionTagMalformed => {
            "Set the tag to exactly True if the exception is approved (the SCP compares case-sensitively), \
             or remove it."
        }
        CheckId::ExceptionApprovedUntagged => {
            "Tag the user AccessException=True if the exception is still needed, or delete the approval \
             from the registry."
        }
        CheckId::RequiredTagMissing => "Add the missing tag to the user.",
        CheckId::AccessKeyRotationDue => {
            "Plan the rotation: create a second key, move every consumer to it, then deactivate and delete this one."
        }
        CheckId::AccessKeyStale => {
            "Rotate the key now: create a second key, move every consumer to it, then deactivate and delete this one."
        }
        CheckId::AccessKeyUnused => "Deactivate the key; delete it once nothing has broken.",
        CheckId::ConsolePasswordUnused => {
            "Remove the console password (delete the login profile) if the user no longer signs in."
        }
        CheckId::AccessKeyMultipleActive => "Deactivate the key that is no longer in use, then delete it.",
        CheckId::ConsoleWithoutMfa => "Have the user enrol an MFA device, or remove the console password.",
        CheckId::UserWithoutMfa => "Have the user enrol an MFA device.",
        CheckId::RootAccessKey => "Delete the root user's access key; use IAM roles for automation.",
        CheckId::RootWithoutMfa => "Enable MFA on the root user (a hardware key where possible).",
        CheckId::ApprovalsRegistryUnavailable => {
            "Fix the registry secret (the function's read access, its JSON): until then no exception tag is \
             judged or removed."
        }
        CheckId::RootUsed => {
            "Confirm who used the root user and why; if nobody expected it, secure the root credentials at once."
        }
        CheckId::NetworkRestrictionMissing => {
            "Attach the EnterpriseNetworkRestriction policy (deny outside the enterprise CIDRs) to the user's \
             group, or remove the user's credentials."
        }
        CheckId::NetworkRestrictionWeakened => {
            "Restore the network restriction policy to the published one: the enterprise CIDRs exactly, the deny \
             on everything and the aws:ViaAWSService exemption."
        }
        CheckId::MfaPolicyMissing => {
            "Put the user in a group with the RequireMFA policy (deny everything but MFA enrolment without MFA)."
        }
        CheckId::PasswordPolicyWeak => {
            "Set the account password policy to at least the minimums (length, reuse prevention, maximum age)."
        }
        CheckId::UserAdminAccess => {
            "Remove the administrator policy from the user; grant administration through a role assumed with MFA."
        }
        CheckId::UserDirectPolicy => "Move the user's policies to a group and detach them from the user.",
        CheckId::BreakGlassUsed => {
            "Confirm the emergency with whoever holds the break-glass credentials; if nobody declared one, \
             treat it as a compromise: revoke the sessions and rotate the credentials."
        }
        CheckId::BreakGlassNotReady => {
            "Restore the break-glass path now (recreate the role, enrol MFA for the user): it must work in an emergency."
        }
        CheckId::RegistryChangedByNonApprover => {
            "Revert the registry to its previous version unless an approver confirms the change, and review who \
             may write the secret."
        }
        CheckId::AccessKeyRotated => {
            "Nothing to do if the key's consumers read it from the rotation secret; the old key is deactivated, \
             then deleted, on schedule."
        }
        CheckId::RotationOptIn => "Confirm the opt-in; one by a non-approver was removed: an approver sets it again.",
        CheckId::RotationStalled => {
            "Move the consumer still using the old key to the rotation secret (or clear the blocking state the \
             finding names); the rotation resumes by itself."
        }
        CheckId::ScpNotAttached => {
            "Attach the RestrictIAMUserAccessWithExceptions SCP (SCP_POLICY) to the OU the finding names, or to \
             the root to cover every account; until then IAM users there need no AccessException tag."
        }
        CheckId::ScpWeakened => {
            "Restore the SCP's content to the published policy (deny untagged IAM users; deny tagged users outside \
             ENTERPRISE_CIDRS unless aws:ViaAWSService), or attach the unmodified policy where the finding says."
        }
        CheckId::ManagementAccountIamUsers => {
            "Move the management account's IAM users to roles or to a member account, then delete them: no SCP \
             restricts them there."
        }
        CheckId::RootAccessNotCentralized => {
            "Enable RootCredentialsManagement and RootSessions (IAM console, Root access management), then delete \
             the members' root credentials through AssumeRoot sessions."
        }
        CheckId::MemberRootCredentialsPresent => {
            "From the management account, open an AssumeRoot session with IAMDeleteRootUserCredentials in the \
             member and delete its root password, access keys, MFA devices and signing certificates."
        }
        CheckId::RootSessionStarted => {
            "Confirm the root task was planned (ticket, caller, task); if not, revoke the caller's access and \
             review what the session did in the member account."
        }
        CheckId::RootAccessCentralized => "Nothing to do: a centralized root access feature was enabled.",
        CheckId::ExceptionUnused => {
            "Ask the approver to end the exception: remove the AccessException tag and the approval."
        }
    }
}

/// What to do, as the renderings say it: nothing for a resolved finding.
#[must_use]
pub fn next_step(f: &Finding) -> &'static str {
    match f.state {
        FindingState::Open => what_to_do(f.check),
        FindingState::Resolved => "Nothing: the condition no longer holds. This closes the finding.",
    }
}

/// What remediation did, in words: `untag: applied (the exception tag was removed)`.
#[must_use]
pub fn remediation(f: &Finding) -> String {
    let Some(r) = &f.remediation else { return "none (this check is reported, not remediated)".to_owned() };
    let deactivate = r.action == crate::domain::keys::DEACTIVATE;
    let what = match (r.status, deactivate) {
        (RemediationStatus::Applied, false) => "the exception tag was removed",
        (RemediationStatus::Applied, true) => "the key was deactivated, not deleted",
        (RemediationStatus::DryRun, false) => "not removed: remediation is off",
        (RemediationStatus::DryRun, true) => "not deactivated: dry-run",
        (RemediationStatus::Skipped, false) => "not removed on purpose",
        (RemediationStatus::Skipped, true) => "not deactivated on purpose",
        (RemediationStatus::Failed, _) => "the call failed; the invocation fails and is retried",
    };
    match &r.detail {
        Some(detail) => format!("{}: {} ({what}; {})", r.action, r.status.as_str(), one_line(detail)),
        None => format!("{}: {} ({what})", r.action, r.status.as_str()),
    }
}

/// Who a finding is about: the user name, else the principal's ARN.
#[must_use]
pub fn who(f: &Finding) -> &str {
    f.user.as_deref().unwrap_or(&f.principal)
}

/// One line: control characters (line breaks included) become spaces, so a value cannot
/// start a line of its own in an e-mail or a chat message.
#[must_use]
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// At most `max` characters: longer text is cut and ends with `…`.
#[must_use]
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if s.chars().count() > max => format!("{}…", &s[..i]),
        _ => s.to_owned(),
    }
}

/// An evidence value as text: strings as they are, anything else as compact JSON.
#[must_use]
pub fn value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The evidence as (key, value) lines, in the JSON's order; an evidence that is not an
/// object is one line keyed `evidence`.
#[must_use]
pub fn evidence(f: &Finding) -> Vec<(String, String)> {
    match &f.evidence {
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| (one_line(k), one_line(&value(v)))).collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![("evidence".to_owned(), one_line(&value(other)))],
    }
}

/// `7 findings: 1 critical, 3 high, 2 medium, 1 low` (or `no findings`).
#[must_use]
pub fn summary(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no findings".to_owned();
    }
    let parts: Vec<String> = Severity::ALL_DESCENDING
        .iter()
        .filter_map(|s| {
            let n = findings.iter().filter(|f| f.severity == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    let plural = if findings.len() == 1 { "" } else { "s" };
    format!("{} finding{plural}: {}", findings.len(), parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deactivation_is_described_as_one() {
        use crate::finding::{CheckId, Remediation};
        let mut f = crate::checks::fixtures::scope().finding(CheckId::AccessKeyStale, "arn:u", "m".into());
        f.remediation =
            Some(Remediation { action: "deactivate".into(), status: RemediationStatus::Applied, detail: None });
        assert_eq!(remediation(&f), "deactivate: applied (the key was deactivated, not deleted)");
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde…");
        assert_eq!(truncate("ééééééé", 3).chars().count(), 3);
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn one_line_removes_line_breaks_and_controls() {
        assert_eq!(one_line("a\nb\r\tc\u{7}"), "a b  c ");
    }

    #[test]
    fn every_check_says_what_to_do() {
        for check in CheckId::ALL {
            assert!(what_to_do(*check).ends_with('.'), "{check}");
        }
    }
}
