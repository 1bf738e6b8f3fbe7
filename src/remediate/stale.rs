//! Stale keys of everyone else (`DEACTIVATE_STALE_KEYS`, opt-in per account): an active key
//! unused for `KEY_UNUSED_DAYS + STALE_GRACE_DAYS` is deactivated — never deleted — unless its
//! user is a break-glass user or carries `STALE_KEY_EXEMPT_TAG`. A key that is only old (past
//! `KEY_MAX_AGE_DAYS + STALE_GRACE_DAYS` but in use) keeps its finding and is never
//! deactivated: that would break whatever uses it. Right before acting, the key's last use is
//! read again (`GetAccessKeyLastUsed`: the credential report can be hours old), and a key used
//! within `KEY_UNUSED_DAYS` is left active.
//!
//! [`plan`] decides purely; [`attach`] puts the decision on the `access-key-stale` or
//! `access-key-unused` finding that names the key; [`execute`] re-reads the user's keys, acts
//! on exactly the key the finding names (never a sibling) and records how to undo it.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::undo::{UndoRecord, record};
use crate::checks::whole_days;
use crate::config::{Policy, StaleKeyMode, StaleKeys};
use crate::finding::{Action, CheckId, Finding, Remediation, RemediationStatus};
use crate::ports::{CallError, KeyRotation, KeyState, UserDirectory};
use crate::snapshot::{AccessKey, KeyRef, UserSnapshot};

/// The remediation's name in findings.
pub use crate::domain::keys::DEACTIVATE as ACTION;

/// What to do about one key of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPlan {
    /// The key, as the snapshot names it (id or slot).
    pub key: AccessKey,
    /// The finding that carries the decision: `access-key-stale` when the key is past its age
    /// limit plus the grace, otherwise `access-key-unused`.
    pub check: CheckId,
    /// Deactivate, or leave alone and say why.
    pub decision: Decision,
}

/// The decision about a key past its limit plus the grace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Make the key inactive; the reason names the threshold crossed.
    Deactivate(String),
    /// The user is exempt (break-glass, or the exemption tag): the key stays active.
    Exempt(String),
    /// The key is only old, and in use: reported, never deactivated (it would break its consumer).
    InUse(String),
}

/// The keys of `user` past their limit plus the grace, and what to do about each. Inactive
/// keys grant nothing and are never planned; a key within the grace is only reported.
#[must_use]
pub fn plan(user: &UserSnapshot, policy: &Policy, rules: &StaleKeys, now: DateTime<Utc>) -> Vec<KeyPlan> {
    let exempt = if policy.is_break_glass_user(&user.name) {
        Some(format!("{} is a break-glass user (BREAK_GLASS_USERS): its keys are never deactivated", user.name))
    } else if rules.rotation.as_ref().is_some_and(|r| r.opts_in(&user.tags)) {
        Some(format!("{} is opted in to key rotation: the rotation retires its old keys", user.name))
    } else {
        user.tag(&rules.exempt_tag).map(|t| format!("{} carries the exemption tag {}", user.name, t.key))
    };
    user.keys
        .iter()
        .filter(|k| k.active)
        .filter_map(|k| {
            let age = whole_days(k.created, now);
            let idle = whole_days(k.last_used.unwrap_or(k.created), now);
            // The same comparisons as the checks (age > limit, idle >= limit), shifted by the grace.
            let old = age > policy.key_max_age_days + rules.grace_days;
            let unused = idle >= policy.key_unused_days + rules.grace_days;
            let check = if old { CheckId::AccessKeyStale } else { CheckId::AccessKeyUnused };
            if !unused {
                if !old {
                    return None;
                }
                let why = format!(
                    "{age} days old, past KEY_MAX_AGE_DAYS ({}) + STALE_GRACE_DAYS ({}), but used {idle} days ago: a \
                     key in use is never deactivated (rotate it)",
                    policy.key_max_age_days, rules.grace_days
                );
                return Some(KeyPlan { key: k.clone(), check, decision: Decision::InUse(why) });
            }
            let reason = format!(
                "unused for {idle} days, at least KEY_UNUSED_DAYS ({}) + STALE_GRACE_DAYS ({}){}",
                policy.key_unused_days,
                rules.grace_days,
                if old { format!(", and {age} days old") } else { String::new() }
            );
            let decision = exempt.clone().map_or(Decision::Deactivate(reason), Decision::Exempt);
            Some(KeyPlan { key: k.clone(), check, decision })
        })
        .collect()
}

/// Puts [`plan`]'s decisions on the findings about `user`'s keys: an [`Action::DeactivateKey`]
/// to carry out, or a `skipped` remediation saying why the user is exempt. Nothing when off.
pub fn attach(findings: &mut [Finding], user: &UserSnapshot, policy: &Policy, rules: &StaleKeys, now: DateTime<Utc>) {
    if rules.mode == StaleKeyMode::Off {
        return;
    }
    for p in plan(user, policy, rules, now) {
        let resource = p.key.resource();
        let Some(f) = findings.iter_mut().find(|f| {
            f.check == p.check && f.user.as_deref() == Some(&user.name) && f.resource.as_deref() == Some(&resource)
        }) else {
            continue;
        };
        match p.decision {
            Decision::Deactivate(reason) => {
                if let Some(evidence) = f.evidence.as_object_mut() {
                    evidence.insert("deactivate_because".into(), json!(reason));
                }
                f.action = Some(Action::DeactivateKey {
                    user: user.name.clone(),
                    key: p.key.key.clone(),
                    created: p.key.created,
                });
            }
            Decision::Exempt(why) | Decision::InUse(why) => {
                f.remediation =
                    Some(Remediation { action: ACTION.into(), status: RemediationStatus::Skipped, detail: Some(why) });
            }
        }
    }
}

/// The one key of `keys` the finding names: by id, or by exact creation time (to the second)
/// for a slot of the credential report. Anything but exactly one match is refused, with why.
pub fn resolve<'a>(keys: &'a [KeyState], key: &KeyRef, created: DateTime<Utc>) -> Result<&'a KeyState, String> {
    match key {
        KeyRef::Id(id) => keys.iter().find(|k| k.id == *id).ok_or_else(|| format!("key {id} no longer exists")),
        KeyRef::Slot(n) => {
            let matching: Vec<_> = keys.iter().filter(|k| k.created.timestamp() == created.timestamp()).collect();
            match matching.as_slice() {
                [one] => Ok(one),
                [] => Err(format!(
                    "no key was created at {} (access_key_{n} of the credential report): it was deleted or \
                     replaced since the report; nothing deactivated",
                    created.format("%Y-%m-%dT%H:%M:%SZ")
                )),
                many => Err(format!(
                    "{} keys were created at {}: cannot tell which is access_key_{n}; nothing deactivated",
                    many.len(),
                    created.format("%Y-%m-%dT%H:%M:%SZ")
                )),
            }
        }
    }
}

/// How far deactivation got when the deadline stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Keys deactivated.
    pub applied: usize,
    /// Keys planned.
    pub total: usize,
}

/// What the executor re-checks right before acting.
#[derive(Debug, Clone, Copy)]
pub struct Recheck {
    /// A key used within this many days of `now` is never deactivated (`KEY_UNUSED_DAYS`).
    pub unused_days: i64,
    /// The moment judged.
    pub now: DateTime<Utc>,
}

/// Carries out the findings' deactivations: `dry-run` (the mode or `--dry-run`) only says what
/// would happen; otherwise, per key, `ListAccessKeys` (the state now), `GetAccessKeyLastUsed`
/// (through `last_use`; without it nothing is deactivated) and only then `UpdateAccessKey`
/// (Inactive), checking `must_stop` before each key. Returns the failed calls.
pub async fn execute(
    directory: &impl UserDirectory,
    last_use: Option<&dyn KeyRotation>,
    findings: &mut [Finding],
    recheck: Recheck,
    mode: StaleKeyMode,
    dry_run: bool,
    must_stop: impl Fn() -> bool,
) -> Result<Vec<CallError>, Stopped> {
    let set = |f: &mut Finding, status, detail: String| {
        f.remediation = Some(Remediation { action: ACTION.into(), status, detail: Some(detail) });
    };
    let mut targets: Vec<&mut Finding> =
        findings.iter_mut().filter(|f| matches!(f.action, Some(Action::DeactivateKey { .. }))).collect();
    let total = targets.len();
    let (mut failures, mut applied) = (Vec::new(), 0);
    for f in &mut targets {
        let Some(Action::DeactivateKey { user, key, created }) = f.action.clone() else { continue };
        let named = f.resource.clone().unwrap_or_default();
        if mode != StaleKeyMode::On || dry_run {
            let why = if dry_run { "--dry-run" } else { "DEACTIVATE_STALE_KEYS=dry-run" };
            set(f, RemediationStatus::DryRun, format!("would deactivate {user}'s key {named} ({why})"));
            continue;
        }
        if must_stop() {
            return Err(Stopped { applied, total });
        }
        let keys = match directory.list_keys(&user).await {
            Ok(Some(keys)) => keys,
            Ok(None) => {
                set(f, RemediationStatus::Skipped, format!("{user} no longer exists"));
                continue;
            }
            Err(e) => {
                set(f, RemediationStatus::Failed, e.to_string());
                failures.push(e);
                continue;
            }
        };
        let target = match resolve(&keys, &key, created) {
            Ok(k) if !k.active => {
                set(f, RemediationStatus::Skipped, format!("{user}'s key {} is already inactive", k.id));
                continue;
            }
            Ok(k) => k.id.clone(),
            Err(why) => {
                set(f, RemediationStatus::Skipped, why);
                continue;
            }
        };
        let Some(reader) = last_use else {
            set(f, RemediationStatus::Skipped, format!("{user}'s key {target}: its last use cannot be read here"));
            continue;
        };
        match reader.last_use(&target).await {
            Ok(used) => {
                if let Some(at) = used.at.filter(|at| whole_days(*at, recheck.now) < recheck.unused_days) {
                    set(
                        f,
                        RemediationStatus::Skipped,
                        format!(
                            "{user}'s key {target} was used {} ({} days ago, within KEY_UNUSED_DAYS = {}): a key in \
                             use is never deactivated",
                            at.format("%Y-%m-%dT%H:%M:%SZ"),
                            whole_days(at, recheck.now),
                            recheck.unused_days
                        ),
                    );
                    continue;
                }
            }
            Err(e) => {
                set(f, RemediationStatus::Failed, format!("not deactivated: {e}"));
                failures.push(e);
                continue;
            }
        }
        match directory.set_key_status(&user, &target, false).await {
            Ok(()) => {
                tracing::warn!(user = %user, key_id = %target, check = %f.check, "deactivated stale access key");
                if let Some(evidence) = f.evidence.as_object_mut() {
                    evidence.insert("key_id".into(), json!(target));
                }
                record(
                    &mut f.evidence,
                    &UndoRecord::Deactivate {
                        user: user.clone(),
                        key_id: target.clone(),
                        previous_status: "Active".into(),
                    },
                );
                set(f, RemediationStatus::Applied, format!("deactivated {user}'s key {target} (never deleted)"));
                applied += 1;
            }
            Err(e) => {
                set(f, RemediationStatus::Failed, e.to_string());
                failures.push(e);
            }
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{days_ago, key, now, tagged, user};
    use crate::ports::BoxFuture;
    use crate::remediate::rotation::LastUse;
    use crate::snapshot::Tag;

    fn rules() -> StaleKeys {
        StaleKeys { mode: StaleKeyMode::On, ..StaleKeys::default() }
    }

    fn plan_keys(keys: Vec<AccessKey>) -> Vec<KeyPlan> {
        let mut u = user("svc");
        u.keys = keys;
        plan(&u, &Policy::default(), &rules(), now())
    }

    fn deactivated(p: &[KeyPlan]) -> Vec<(String, CheckId)> {
        p.iter()
            .filter(|p| matches!(p.decision, Decision::Deactivate(_)))
            .map(|p| (p.key.resource(), p.check))
            .collect()
    }

    #[test]
    fn a_key_in_use_is_never_deactivated_however_old_day_by_day() {
        // Used yesterday: past the age limit plus the grace it keeps its finding, marked in use.
        for age in [91, 120, 121, 400] {
            let p = plan_keys(vec![key("AKIA1", true, age, Some(1))]);
            assert!(deactivated(&p).is_empty(), "age {age}");
            let in_use = age > 120;
            assert_eq!(
                p.iter().any(|p| matches!(&p.decision, Decision::InUse(why) if why.contains("never deactivated"))),
                in_use,
                "age {age}"
            );
        }
        // Old and unused: deactivated, on its stale finding.
        let p = plan_keys(vec![key("AKIA1", true, 400, Some(75))]);
        assert_eq!(deactivated(&p), [("AKIA1".to_owned(), CheckId::AccessKeyStale)]);
    }

    #[test]
    fn disuse_is_deactivated_from_the_limit_plus_the_grace_day_by_day() {
        // Unused 45 + grace 30: the checks report from day 45, deactivation from day 75.
        for (idle, expected) in [(45, false), (74, false), (75, true), (80, true)] {
            let p = plan_keys(vec![key("AKIA1", true, 80, Some(idle))]);
            assert_eq!(!deactivated(&p).is_empty(), expected, "idle {idle}");
        }
        // Never used: counted from creation, as the checks count it.
        assert!(deactivated(&plan_keys(vec![key("AKIA1", true, 74, None)])).is_empty());
        assert_eq!(
            deactivated(&plan_keys(vec![key("AKIA1", true, 75, None)])),
            [("AKIA1".to_owned(), CheckId::AccessKeyUnused)]
        );
    }

    #[test]
    fn a_key_both_old_and_unused_is_planned_once_on_its_stale_finding() {
        let p = plan_keys(vec![key("AKIA1", true, 200, None)]);
        assert_eq!(deactivated(&p), [("AKIA1".to_owned(), CheckId::AccessKeyStale)]);
    }

    #[test]
    fn the_grace_is_configurable() {
        let mut u = user("svc");
        u.keys = vec![key("AKIA1", true, 91, Some(46))];
        let zero = StaleKeys { grace_days: 0, ..rules() };
        assert_eq!(plan(&u, &Policy::default(), &zero, now()).len(), 1);
        assert!(plan(&u, &Policy::default(), &rules(), now()).is_empty());
    }

    #[test]
    fn inactive_keys_are_never_planned() {
        assert!(plan_keys(vec![key("AKIA1", false, 400, None)]).is_empty());
    }

    #[test]
    fn of_two_keys_only_the_stale_one_is_planned() {
        let p = plan_keys(vec![key("AKIA-OLD", true, 300, Some(100)), key("AKIA-NEW", true, 10, Some(1))]);
        assert_eq!(deactivated(&p), [("AKIA-OLD".to_owned(), CheckId::AccessKeyStale)]);
    }

    #[test]
    fn break_glass_users_and_exempt_tags_keep_their_keys() {
        let policy = Policy { break_glass_users: vec!["BreakGlass".into()], ..Policy::default() };
        let mut bg = user("breakglass");
        bg.keys = vec![key("AKIA1", true, 400, None)];
        let p = plan(&bg, &policy, &rules(), now());
        assert!(matches!(&p[0].decision, Decision::Exempt(why) if why.contains("break-glass")), "{p:?}");
        // The tag key is matched as IAM matches tag keys (ignoring case); any value exempts.
        let mut kept = tagged("svc", "IAM-Sentinel:Keep-Keys", "until 2027-01");
        kept.keys = vec![key("AKIA1", true, 400, None)];
        let p = plan(&kept, &policy, &rules(), now());
        assert!(matches!(&p[0].decision, Decision::Exempt(why) if why.contains("exemption tag")), "{p:?}");
        // Users opted in to key rotation are the rotation's to retire keys from, when it runs.
        let mut rotated = tagged("svc-build", "iam-sentinel:rotation", "auto");
        rotated.keys = vec![key("AKIA1", true, 400, None)];
        let rotation = crate::config::Rotation { enabled: true, ..crate::config::Rotation::default() };
        let rotating = StaleKeys { rotation: Some(rotation), ..rules() };
        let p = plan(&rotated, &policy, &rotating, now());
        assert!(matches!(&p[0].decision, Decision::Exempt(why) if why.contains("opted in to key rotation")), "{p:?}");
        // With rotation off, the opt-in tag exempts nothing: the key is judged like any other.
        let p = plan(&rotated, &policy, &rules(), now());
        assert!(matches!(&p[0].decision, Decision::Deactivate(_)), "{p:?}");
    }

    fn finding_for(check: CheckId, resource: &str) -> Finding {
        let mut f = crate::checks::fixtures::scope().finding(check, "arn:aws:iam::123456789012:user/svc", "m".into());
        f.user = Some("svc".into());
        f.resource = Some(resource.into());
        f
    }

    #[test]
    fn attach_marks_exactly_the_named_finding_and_nothing_when_off() {
        let mut u = user("svc");
        let old =
            AccessKey { key: KeyRef::Slot(1), active: true, created: days_ago(300), last_used: Some(days_ago(100)) };
        let new = AccessKey { key: KeyRef::Slot(2), active: true, created: days_ago(5), last_used: None };
        u.keys = vec![old.clone(), new.clone()];
        let fresh = || {
            vec![
                finding_for(CheckId::AccessKeyStale, &old.resource()),
                finding_for(CheckId::AccessKeyMultipleActive, "both"),
                finding_for(CheckId::AccessKeyStale, &new.resource()),
            ]
        };
        let mut findings = fresh();
        attach(&mut findings, &u, &Policy::default(), &StaleKeys::default(), now());
        assert!(findings.iter().all(|f| f.action.is_none() && f.remediation.is_none()), "off by default");
        attach(&mut findings, &u, &Policy::default(), &rules(), now());
        assert_eq!(
            findings[0].action,
            Some(Action::DeactivateKey { user: "svc".into(), key: KeyRef::Slot(1), created: old.created })
        );
        assert!(findings[1].action.is_none() && findings[2].action.is_none());
    }

    fn state(id: &str, active: bool, created: DateTime<Utc>) -> KeyState {
        KeyState { id: id.into(), active, created }
    }

    #[test]
    fn a_slot_resolves_to_the_one_key_created_at_that_second_or_to_nothing() {
        let t = days_ago(300);
        let keys = [state("AKIA1", true, t + chrono::Duration::milliseconds(400)), state("AKIA2", true, days_ago(3))];
        assert_eq!(resolve(&keys, &KeyRef::Slot(1), t).unwrap().id, "AKIA1");
        let gone = resolve(&keys, &KeyRef::Slot(1), t - chrono::Duration::seconds(1)).unwrap_err();
        assert!(gone.contains("nothing deactivated"), "{gone}");
        let twins = [state("AKIA1", true, t), state("AKIA2", true, t)];
        assert!(resolve(&twins, &KeyRef::Slot(1), t).unwrap_err().contains("cannot tell"));
        assert_eq!(resolve(&keys, &KeyRef::Id("AKIA2".into()), t).unwrap().id, "AKIA2");
        assert!(resolve(&keys, &KeyRef::Id("AKIA9".into()), t).is_err());
    }

    /// A user's keys held in memory; records every status change.
    struct InMemory {
        keys: Vec<KeyState>,
        fail: bool,
        changed: std::sync::Mutex<Vec<(String, bool)>>,
    }

    impl UserDirectory for InMemory {
        async fn read_user(&self, _: &str) -> Result<Option<UserSnapshot>, CallError> {
            Ok(None)
        }
        async fn remove_tag(&self, _: &str, _: &str) -> Result<(), CallError> {
            Ok(())
        }
        async fn list_keys(&self, _: &str) -> Result<Option<Vec<KeyState>>, CallError> {
            Ok(Some(self.keys.clone()))
        }
        async fn set_key_status(&self, user: &str, key_id: &str, active: bool) -> Result<(), CallError> {
            if self.fail {
                return Err(CallError {
                    action: "iam:UpdateAccessKey",
                    target: format!("{user}/{key_id}"),
                    message: "AccessDenied".into(),
                });
            }
            self.changed.lock().unwrap().push((key_id.to_owned(), active));
            Ok(())
        }
        async fn read_tags(&self, _: &str) -> Result<Option<Vec<Tag>>, CallError> {
            Ok(Some(Vec::new()))
        }
        async fn add_tag(&self, _: &str, _: &str, _: &str) -> Result<(), CallError> {
            Ok(())
        }
    }

    fn planned(id: &str) -> Vec<Finding> {
        let mut f = finding_for(CheckId::AccessKeyStale, id);
        f.action =
            Some(Action::DeactivateKey { user: "svc".into(), key: KeyRef::Id(id.into()), created: days_ago(300) });
        vec![f]
    }

    fn keys(active: bool, fail: bool) -> InMemory {
        InMemory { keys: vec![state("AKIA1", active, days_ago(300))], fail, changed: std::sync::Mutex::new(Vec::new()) }
    }

    /// Answers `GetAccessKeyLastUsed` with one date; the rotation's other calls are not made here.
    struct LastUsed(Result<Option<DateTime<Utc>>, ()>);

    impl KeyRotation for LastUsed {
        fn last_use<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<LastUse, CallError>> {
            Box::pin(async move {
                match self.0 {
                    Ok(at) => Ok(LastUse { at, ..LastUse::default() }),
                    Err(()) => Err(CallError {
                        action: "iam:GetAccessKeyLastUsed",
                        target: key_id.to_owned(),
                        message: "Throttling".into(),
                    }),
                }
            })
        }
        fn vault<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<crate::remediate::rotation::Vault, CallError>> {
            unreachable!("not a stale-key call")
        }
        fn not_ours<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>> {
            unreachable!("not a stale-key call")
        }
        fn stage_key<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>> {
            unreachable!("not a stale-key call")
        }
        fn create_key<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<crate::ports::NewKey, CallError>> {
            unreachable!("not a stale-key call")
        }
        fn store<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a str,
            _: &'a crate::ports::NewKey,
        ) -> BoxFuture<'a, Result<(), CallError>> {
            unreachable!("not a stale-key call")
        }
        fn record_deactivation<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: DateTime<Utc>,
        ) -> BoxFuture<'a, Result<(), CallError>> {
            unreachable!("not a stale-key call")
        }
        fn forget_deactivation<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
            unreachable!("not a stale-key call")
        }
        fn delete_key<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
            unreachable!("not a stale-key call")
        }
        fn restore_previous<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, CallError>> {
            unreachable!("not a stale-key call")
        }
    }

    const RECHECK: fn() -> Recheck = || Recheck { unused_days: 45, now: now() };

    async fn run(dir: &InMemory, used: &LastUsed, findings: &mut [Finding], dry_run: bool) -> Vec<CallError> {
        execute(dir, Some(used), findings, RECHECK(), StaleKeyMode::On, dry_run, || false).await.unwrap()
    }

    const NEVER: LastUsed = LastUsed(Ok(None));

    #[tokio::test]
    async fn the_executor_stops_at_the_deadline_before_any_call() {
        let dir = keys(true, false);
        let mut findings = planned("AKIA1");
        let stopped =
            execute(&dir, Some(&NEVER), &mut findings, RECHECK(), StaleKeyMode::On, false, || true).await.unwrap_err();
        assert_eq!(stopped, Stopped { applied: 0, total: 1 });
        assert!(dir.changed.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_executor_acts_on_the_state_it_reads_now() {
        // Already inactive when re-read: nothing to do, nothing to undo.
        let dir = keys(false, false);
        let mut findings = planned("AKIA1");
        assert!(run(&dir, &NEVER, &mut findings, false).await.is_empty());
        assert_eq!(findings[0].remediation.as_ref().unwrap().status, RemediationStatus::Skipped);
        assert!(findings[0].evidence.get("undo").is_none());
        assert!(dir.changed.lock().unwrap().is_empty());
        // A failed call is a failure of the invocation, and leaves no undo record.
        let dir = keys(true, true);
        let mut findings = planned("AKIA1");
        let failures = run(&dir, &NEVER, &mut findings, false).await;
        assert_eq!(failures.len(), 1);
        assert_eq!(findings[0].remediation.as_ref().unwrap().status, RemediationStatus::Failed);
        assert!(findings[0].evidence.get("undo").is_none());
        // Dry-run (the mode or the flag): no call at all.
        let dir = keys(true, false);
        let mut findings = planned("AKIA1");
        run(&dir, &NEVER, &mut findings, true).await;
        assert_eq!(findings[0].remediation.as_ref().unwrap().status, RemediationStatus::DryRun);
        assert!(dir.changed.lock().unwrap().is_empty());
        // On: exactly that key, made inactive.
        let mut findings = planned("AKIA1");
        run(&dir, &NEVER, &mut findings, false).await;
        assert_eq!(*dir.changed.lock().unwrap(), [("AKIA1".to_owned(), false)]);
        assert_eq!(findings[0].evidence["undo"]["previous_status"], "Active");
    }

    /// The report judged the key unused; re-read right before acting, it was used since: a key
    /// used within KEY_UNUSED_DAYS is never deactivated, day by day around the limit.
    #[tokio::test]
    async fn a_key_used_since_the_report_is_left_active_day_by_day() {
        for (days_ago_used, deactivated) in [(0, false), (1, false), (44, false), (45, true), (200, true)] {
            let dir = keys(true, false);
            let mut findings = planned("AKIA1");
            let used = LastUsed(Ok(Some(days_ago(days_ago_used))));
            assert!(run(&dir, &used, &mut findings, false).await.is_empty());
            let r = findings[0].remediation.clone().unwrap();
            assert_eq!(!dir.changed.lock().unwrap().is_empty(), deactivated, "used {days_ago_used} days ago: {r:?}");
            if !deactivated {
                assert_eq!(r.status, RemediationStatus::Skipped);
                assert!(r.detail.unwrap().contains("a key in use is never deactivated"));
            }
        }
        // The last use cannot be read: nothing deactivated, the failure named.
        let dir = keys(true, false);
        let mut findings = planned("AKIA1");
        let failures = run(&dir, &LastUsed(Err(())), &mut findings, false).await;
        assert_eq!(failures[0].action, "iam:GetAccessKeyLastUsed");
        assert!(dir.changed.lock().unwrap().is_empty());
        // Without a reader at all: nothing deactivated.
        let mut findings = planned("AKIA1");
        execute(&dir, None, &mut findings, RECHECK(), StaleKeyMode::On, false, || false).await.unwrap();
        assert_eq!(findings[0].remediation.as_ref().unwrap().status, RemediationStatus::Skipped);
        assert!(dir.changed.lock().unwrap().is_empty());
    }

    #[test]
    fn tags_are_only_read_from_the_snapshot() {
        // The plan is pure: the exemption is the tag as the snapshot holds it.
        let mut u = user("svc");
        u.tags.push(Tag::new("iam-sentinel:keep-keys", ""));
        u.keys = vec![key("AKIA1", true, 400, None)];
        assert!(matches!(plan(&u, &Policy::default(), &rules(), now())[0].decision, Decision::Exempt(_)));
    }
}
