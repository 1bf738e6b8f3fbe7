//! Day-by-day tests of what a run announces, with plain values and a clock we set.

use super::*;
use crate::finding::{Remediation, Scope};

const ACCOUNT: &str = "123456789012";

fn day(n: i64) -> DateTime<Utc> {
    "2026-12-01T06:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(n)
}

fn finding(check: CheckId, user: &str, now: DateTime<Utc>) -> Finding {
    let scope = Scope { account: ACCOUNT.into(), region: "us-east-1".into(), trigger: "schedule".into(), now };
    let mut f = scope.finding(check, &format!("arn:aws:iam::{ACCOUNT}:user/{user}"), format!("{check} on {user}"));
    f.user = Some(user.into());
    f.id = f.stable_id();
    f
}

fn coverage() -> Coverage<'static> {
    Coverage {
        account: ACCOUNT,
        registry_read: true,
        root_checked: true,
        users_not_in_report: &[],
        break_glass_checked: true,
    }
}

/// Runs a scan on `now` with `current`, applying the writes as if every message was sent.
fn scan(table: &mut Vec<ThreadRecord>, current: &[Finding], now: DateTime<Utc>, remind: u32) -> Plan {
    let plan = plan_scan(table, current, &coverage(), now, remind);
    let sent: HashSet<String> = plan.writes.iter().filter_map(|(k, _)| k.clone()).collect();
    apply(table, writes_after(&plan, &sent));
    plan
}

fn apply(table: &mut Vec<ThreadRecord>, writes: Vec<ThreadRecord>) {
    for w in writes {
        table.retain(|r| r.thread != w.thread);
        table.push(w);
    }
}

fn kinds(plan: &Plan) -> Vec<(NoticeKind, String)> {
    let mut v: Vec<(NoticeKind, String)> = plan
        .announce
        .iter()
        .chain(&plan.resolved)
        .map(|f| (f.notice.as_ref().unwrap().kind, format!("{}:{}", f.check, f.user.as_deref().unwrap_or(""))))
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

#[test]
fn day_two_is_quiet_and_a_fix_is_announced_once_in_its_thread() {
    let mut table = Vec::new();
    let day1 = [
        finding(CheckId::ConsoleWithoutMfa, "alice", day(0)),
        finding(CheckId::ExceptionUnapproved, "bob", day(0)),
        finding(CheckId::AccessKeyRotationDue, "carol", day(0)),
    ];
    let plan = scan(&mut table, &day1, day(0), 7);
    assert_eq!(
        kinds(&plan),
        [
            (NoticeKind::New, "console-without-mfa:alice".to_owned()),
            (NoticeKind::New, "exception-unapproved:bob".to_owned()),
        ],
        "high findings are announced one by one; the low one only in the digest"
    );
    assert_eq!(plan.changes.new, 3);
    assert_eq!(table.len(), 3, "every thread is remembered, announced or not");

    let day2: Vec<Finding> = day1.iter().map(|f| finding(f.check, f.user.as_deref().unwrap(), day(1))).collect();
    let plan = scan(&mut table, &day2, day(1), 7);
    assert!(plan.announce.is_empty() && plan.resolved.is_empty(), "{:?}", kinds(&plan));
    assert!(plan.writes.is_empty(), "an unchanged day writes nothing");
    assert_eq!((plan.changes.new, plan.changes.still_open, plan.changes.resolved), (0, 3, 0));
    assert_eq!(plan.changes.oldest_open_since, Some(day(0)));

    // Alice enrols MFA on day 3: exactly one resolution, in her finding's thread.
    let plan = scan(&mut table, &day2[1..], day(2), 7);
    assert_eq!(kinds(&plan), [(NoticeKind::Resolved, "console-without-mfa:alice".to_owned())]);
    assert_eq!(plan.resolved[0].thread_id(), day1[0].thread_id());
    assert_eq!(plan.resolved[0].notice.as_ref().unwrap().first_seen, day(0));
    assert!(!table.iter().find(|r| r.thread == day1[0].thread_id()).unwrap().is_open());
    // Day 4: nothing more about alice.
    let plan = scan(&mut table, &day2[1..], day(3), 7);
    assert!(plan.announce.is_empty() && plan.resolved.is_empty());
}

#[test]
fn a_quiet_thread_resolves_quietly_in_the_digest() {
    let mut table = Vec::new();
    scan(&mut table, &[finding(CheckId::AccessKeyRotationDue, "carol", day(0))], day(0), 7);
    let plan = scan(&mut table, &[], day(1), 7);
    assert_eq!(plan.changes.resolved, 1);
    let (key, _) = plan.writes.iter().find(|(_, r)| !r.is_open()).unwrap();
    assert!(key.is_none(), "never announced: no message for its end either");
}

#[test]
fn reminders_come_every_remind_days_and_never_with_zero() {
    let mut table = Vec::new();
    let f = |n| finding(CheckId::ConsoleWithoutMfa, "alice", day(n));
    scan(&mut table, &[f(0)], day(0), 7);
    let mut reminded = Vec::new();
    for n in 1..=15 {
        let plan = scan(&mut table, &[f(n)], day(n), 7);
        if !plan.announce.is_empty() {
            assert_eq!(kinds(&plan), [(NoticeKind::Reminder, "console-without-mfa:alice".to_owned())]);
            reminded.push(n);
        }
    }
    assert_eq!(reminded, [7, 14]);
    let mut table = Vec::new();
    scan(&mut table, &[f(0)], day(0), 0);
    assert!((1..=30).all(|n| scan(&mut table, &[f(n)], day(n), 0).announce.is_empty()), "REMIND_DAYS=0: never");
    // Low findings are never reminded.
    let mut table = Vec::new();
    let low = |n| finding(CheckId::AccessKeyRotationDue, "carol", day(n));
    scan(&mut table, &[low(0)], day(0), 7);
    assert!((1..=30).all(|n| scan(&mut table, &[low(n)], day(n), 7).announce.is_empty()));
}

#[test]
fn a_rise_in_severity_or_a_new_remediation_status_is_a_change() {
    let mut table = Vec::new();
    let mut f = finding(CheckId::ExceptionUnapproved, "bob", day(0));
    f.remediation = Some(Remediation { action: "untag".into(), status: RemediationStatus::DryRun, detail: None });
    scan(&mut table, std::slice::from_ref(&f), day(0), 7);
    let mut g = finding(CheckId::ExceptionUnapproved, "bob", day(1));
    g.remediation = Some(Remediation { action: "untag".into(), status: RemediationStatus::Failed, detail: None });
    let plan = scan(&mut table, &[g], day(1), 7);
    assert_eq!(kinds(&plan), [(NoticeKind::Changed, "exception-unapproved:bob".to_owned())]);
    assert_eq!(plan.announce[0].notice.as_ref().unwrap().before.as_deref(), Some("remediation dry-run"));
    let mut h = finding(CheckId::AccessKeyRotationDue, "carol", day(0));
    scan(&mut table, std::slice::from_ref(&h), day(0), 7);
    h.severity = Severity::Critical;
    h.observed_at = day(1);
    let plan = scan(&mut table, &[h], day(1), 7);
    assert_eq!(plan.announce[0].notice.as_ref().unwrap().before.as_deref(), Some("severity low"));
}

#[test]
fn a_message_not_sent_is_not_remembered_and_goes_out_next_time() {
    let mut table = Vec::new();
    let f = finding(CheckId::ConsoleWithoutMfa, "alice", day(0));
    let plan = plan_scan(&table, std::slice::from_ref(&f), &coverage(), day(0), 7);
    apply(&mut table, writes_after(&plan, &HashSet::new()));
    assert!(table.is_empty(), "the announcement failed: nothing remembered");
    let plan = scan(&mut table, &[finding(CheckId::ConsoleWithoutMfa, "alice", day(0))], day(0), 7);
    assert_eq!(kinds(&plan), [(NoticeKind::New, "console-without-mfa:alice".to_owned())]);
}

#[test]
fn what_the_scan_could_not_judge_is_not_resolved() {
    let mut table = Vec::new();
    scan(&mut table, &[finding(CheckId::ExceptionUnapproved, "bob", day(0))], day(0), 7);
    let blind = Coverage { registry_read: false, ..coverage() };
    let plan = plan_scan(&table, &[], &blind, day(1), 7);
    assert!(plan.resolved.is_empty(), "the registry was not read: bob's exception was not judged");
}

#[test]
fn the_event_path_announces_once_and_the_scan_adopts_its_thread() {
    let mut table = Vec::new();
    let mut e = finding(CheckId::AccessKeyUnused, "dave", day(0));
    e.trigger = "event:CreateAccessKey".into();
    e.resource = Some("AKIAEXAMPLE".into());
    e.severity = Severity::High;
    let plan = plan_event(&table, std::slice::from_ref(&e), day(0));
    assert_eq!(plan.announce.len(), 1);
    apply(&mut table, writes_after(&plan, &HashSet::from([e.id.clone()])));
    // The same event again (or another event finding the same): not announced again.
    assert!(plan_event(&table, std::slice::from_ref(&e), day(0)).announce.is_empty());
    // Acts are always announced.
    let act = finding(CheckId::RootUsed, "root", day(0));
    assert_eq!(plan_event(&table, &[act.clone(), act], day(0)).announce.len(), 2);
    // The scan names the key by slot: same condition, no new announcement, one thread left open.
    let mut s = finding(CheckId::AccessKeyUnused, "dave", day(1));
    s.resource = Some("access_key_1 created 2026-09-01".into());
    s.severity = Severity::High;
    let plan = scan(&mut table, &[s], day(1), 7);
    assert!(plan.announce.is_empty() && plan.resolved.is_empty(), "{:?}", kinds(&plan));
    assert_eq!(table.iter().filter(|r| r.is_open()).count(), 1);
    assert_eq!(table.iter().find(|r| r.is_open()).unwrap().first_seen, day(0));
}
