//! Break-glass access (seed 000, 6.3): every use is reported at once, and the path is kept
//! ready — each configured role still exists, each configured user exists and has MFA.

use serde_json::json;

use super::{Actor, CallContext};
use crate::config::Policy;
use crate::finding::{CheckId, Finding, Scope};
use crate::snapshot::UserSnapshot;

/// Whether `role_arn` is one of `BREAK_GLASS_ROLE_ARNS` (compared ignoring case, as IAM names are).
#[must_use]
pub fn is_break_glass_role(policy: &Policy, role_arn: &str) -> bool {
    policy.break_glass_roles.iter().any(|r| r.eq_ignore_ascii_case(role_arn))
}

fn how(context: &CallContext) -> String {
    let from = context.source_ip.as_deref().map(|ip| format!(" from {ip}")).unwrap_or_default();
    let mfa = match context.mfa_authenticated {
        Some(true) => " with MFA",
        Some(false) => " WITHOUT MFA",
        None => "",
    };
    format!("{from}{mfa}")
}

/// The session a role assumption created: what the finding is about.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    /// The break-glass role.
    pub role_arn: &'a str,
    /// `roleSessionName`.
    pub name: Option<&'a str>,
    /// The assumed-role session's ARN (`arn:aws:sts::…:assumed-role/ROLE/SESSION`), if recorded.
    pub arn: Option<&'a str>,
}

/// `break-glass-used`: a configured break-glass role was assumed. The principal is the session
/// (each session its own finding), or the role when CloudTrail recorded no session ARN.
#[must_use]
pub fn role_assumed(session: &Session<'_>, actor: &Actor, context: &CallContext, scope: &Scope) -> Finding {
    let Session { role_arn, name: session_name, arn: session_arn } = *session;
    let session = session_name.map(|s| format!(" (session {s})")).unwrap_or_default();
    let mut f = scope.finding(
        CheckId::BreakGlassUsed,
        session_arn.unwrap_or(role_arn),
        format!(
            "break-glass role {role_arn} was assumed by {}{}{session}: confirm the emergency",
            actor.arn,
            how(context)
        ),
    );
    f.evidence = context.evidence("AssumeRole", actor);
    f.evidence["role_arn"] = json!(role_arn);
    f.evidence["role_session_name"] = json!(session_name);
    f
}

/// `break-glass-used`: a configured break-glass user signed in to the console.
#[must_use]
pub fn user_signed_in(user_name: &str, actor: &Actor, context: &CallContext, scope: &Scope) -> Finding {
    let mut f = scope.finding(
        CheckId::BreakGlassUsed,
        &actor.arn,
        format!("break-glass user {user_name} signed in to the console{}: confirm the emergency", how(context)),
    );
    f.user = Some(user_name.to_owned());
    f.evidence = context.evidence("ConsoleLogin", actor);
    f
}

/// What the scan learnt about the break-glass path, beyond the users' snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Readiness<'a> {
    /// Every user, from the scan.
    pub users: &'a [UserSnapshot],
    /// Users too new for the credential report: their MFA is unknown, so not judged.
    pub users_not_in_report: &'a [String],
    /// Configured roles that `iam:GetRole` says no longer exist.
    pub missing_roles: &'a [String],
}

/// `break-glass-not-ready`: a configured role is gone, a configured user is gone or has no MFA.
#[must_use]
pub fn not_ready(policy: &Policy, readiness: &Readiness<'_>, scope: &Scope) -> Vec<Finding> {
    let mut out = Vec::new();
    for role in readiness.missing_roles {
        let mut f = scope.finding(
            CheckId::BreakGlassNotReady,
            role,
            format!("break-glass role {role} no longer exists: the emergency path is broken"),
        );
        f.evidence = json!({ "role_arn": role, "exists": false });
        out.push(f);
    }
    for name in &policy.break_glass_users {
        let user = readiness.users.iter().find(|u| u.name.eq_ignore_ascii_case(name));
        let (principal, message, evidence) = match user {
            None => (
                format!("arn:aws:iam::{}:user/{name}", scope.account),
                format!("break-glass user {name} does not exist: the emergency path is broken"),
                json!({ "user": name, "exists": false }),
            ),
            Some(u) if readiness.users_not_in_report.iter().any(|n| n.eq_ignore_ascii_case(&u.name)) => continue,
            Some(u) if !u.mfa_active => (
                u.arn.clone(),
                format!("break-glass user {} has no MFA device: enrol one before it is needed", u.name),
                json!({ "user": u.name, "exists": true, "mfa_active": false }),
            ),
            Some(_) => continue,
        };
        let mut f = scope.finding(CheckId::BreakGlassNotReady, &principal, message);
        f.user = Some(user.map_or_else(|| name.clone(), |u| u.name.clone()));
        f.evidence = evidence;
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/BreakGlassAdmin";

    fn policy() -> Policy {
        Policy {
            break_glass_roles: vec![ROLE.into()],
            break_glass_users: vec!["break-glass-admin".into()],
            ..Policy::default()
        }
    }

    fn context(mfa: Option<bool>) -> CallContext {
        CallContext {
            event_time: Some("2026-11-23T09:41:07Z".parse().unwrap()),
            source_ip: Some("203.0.113.45".into()),
            user_agent: Some("aws-cli/2.22.4".into()),
            mfa_authenticated: mfa,
        }
    }

    fn actor(arn: &str) -> Actor {
        Actor { arn: arn.into(), issuer_arn: None, root: false }
    }

    #[test]
    fn configured_roles_match_ignoring_case_and_others_do_not() {
        assert!(is_break_glass_role(&policy(), "arn:aws:iam::123456789012:role/breakglassadmin"));
        assert!(!is_break_glass_role(&policy(), "arn:aws:iam::123456789012:role/Deploy"));
        assert!(!is_break_glass_role(&Policy::default(), ROLE));
    }

    #[test]
    fn a_role_assumption_is_critical_with_who_where_and_mfa() {
        let session_arn = "arn:aws:sts::123456789012:assumed-role/BreakGlassAdmin/incident-7";
        let session = Session { role_arn: ROLE, name: Some("incident-7"), arn: Some(session_arn) };
        let f =
            role_assumed(&session, &actor("arn:aws:iam::123456789012:user/ops-kim"), &context(Some(false)), &scope());
        assert_eq!((f.check, f.severity), (CheckId::BreakGlassUsed, crate::finding::Severity::Critical));
        assert_eq!(f.principal, session_arn, "each session is its own finding");
        assert_eq!(f.evidence["role_arn"], ROLE);
        assert!(
            f.message.contains("by arn:aws:iam::123456789012:user/ops-kim from 203.0.113.45 WITHOUT MFA"),
            "{}",
            f.message
        );
        assert_eq!(f.evidence["role_session_name"], "incident-7");
        assert_eq!(f.evidence["source_ip"], "203.0.113.45");
        assert_eq!(f.evidence["user_agent"], "aws-cli/2.22.4");
        assert_eq!(f.evidence["mfa_authenticated"], false);
        assert_eq!(f.evidence["event_time"], "2026-11-23T09:41:07Z");
        assert_eq!(f.resource, None, "not about a key");
        let unrecorded = Session { arn: None, ..session };
        let f = role_assumed(&unrecorded, &actor("arn:aws:iam::123456789012:user/ops-kim"), &context(None), &scope());
        assert_eq!(f.principal, ROLE);
    }

    #[test]
    fn a_user_sign_in_names_the_user() {
        let arn = "arn:aws:iam::123456789012:user/break-glass-admin";
        let f = user_signed_in("break-glass-admin", &actor(arn), &context(Some(true)), &scope());
        assert_eq!(f.user.as_deref(), Some("break-glass-admin"));
        assert_eq!(f.principal, arn);
        assert!(f.message.contains("signed in to the console from 203.0.113.45 with MFA"), "{}", f.message);
        assert_eq!(f.evidence["event"], "ConsoleLogin");
    }

    #[test]
    fn readiness_reports_missing_roles_missing_users_and_users_without_mfa() {
        let no_mfa = user("break-glass-admin");
        let missing = [ROLE.to_owned()];
        let r = Readiness { users: std::slice::from_ref(&no_mfa), users_not_in_report: &[], missing_roles: &missing };
        let f = not_ready(&policy(), &r, &scope());
        assert_eq!(checks_of(&f), ["break-glass-not-ready", "break-glass-not-ready"]);
        assert_eq!(f[0].principal, ROLE);
        assert_eq!(f[1].evidence["mfa_active"], false);

        let mut ready = user("Break-Glass-Admin");
        ready.mfa_active = true;
        let r = Readiness { users: std::slice::from_ref(&ready), users_not_in_report: &[], missing_roles: &[] };
        assert!(not_ready(&policy(), &r, &scope()).is_empty());

        let r = Readiness { users: &[], users_not_in_report: &[], missing_roles: &[] };
        let f = not_ready(&policy(), &r, &scope());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].principal, "arn:aws:iam::123456789012:user/break-glass-admin");
        assert_eq!(f[0].evidence["exists"], false);

        let not_in_report = ["break-glass-admin".to_owned()];
        let r =
            Readiness { users: std::slice::from_ref(&no_mfa), users_not_in_report: &not_in_report, missing_roles: &[] };
        assert!(not_ready(&policy(), &r, &scope()).is_empty(), "MFA unknown until the report lists the user");
        assert!(not_ready(&Policy::default(), &r, &scope()).is_empty(), "nothing configured, nothing judged");
    }
}
