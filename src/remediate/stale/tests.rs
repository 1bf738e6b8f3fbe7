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
    p.iter().filter(|p| matches!(p.decision, Decision::Deactivate(_))).map(|p| (p.key.resource(), p.check)).collect()
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
    let old = AccessKey { key: KeyRef::Slot(1), active: true, created: days_ago(300), last_used: Some(days_ago(100)) };
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
    f.action = Some(Action::DeactivateKey { user: "svc".into(), key: KeyRef::Id(id.into()), created: days_ago(300) });
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
