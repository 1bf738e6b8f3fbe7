//! The function's memory, decided purely: what a run announces given what it announced
//! before. The records live in the state table (`STATE_TABLE`, see `aws::state`); this module
//! only compares them with the findings of a run and says what to send and what to write.
//!
//! A *thread* is one condition (account, check, principal, resource: [`Finding::thread_id`]),
//! the same on every day it holds. A run announces a thread when it is **new** (or back after
//! a resolution), when it **changed** (severity rose, remediation status changed), when it
//! is **resolved** (announced before, not produced now, and judged by this run), and, for high
//! and critical threads, as a **reminder** every `REMIND_DAYS`. Everything else is quiet: it
//! appears in the digest only.

pub mod journal;
pub mod resolution;

pub use crate::domain::memory::{Changes, ThreadRecord};

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};

use crate::domain::stored::StoredFinding;
use crate::finding::{CheckId, Finding, FindingState, Notice, NoticeKind, RemediationStatus, Severity};
use crate::state::resolution::{self as lifecycle, Coverage};

/// Findings of this severity or above are announced one message each (new, changed,
/// reminders); below it they appear in the digest only, as before the table existed.
pub const ANNOUNCE_SEVERITY: Severity = Severity::High;

/// How long a resolved thread is kept (for "back after a resolution" and the history) before
/// DynamoDB's TTL removes it.
pub const RESOLVED_RETENTION_DAYS: i64 = 90;

/// Checks that describe an act, not a state: always announced, never threaded.
#[must_use]
pub fn is_act(check: CheckId) -> bool {
    lifecycle::event_only(check) || check == CheckId::AccessKeyRotated
}

/// What one run must announce and write.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Open findings to announce one message each, with their [`Notice`] set.
    pub announce: Vec<Finding>,
    /// Resolved findings (announced ones to send; all of them to archive in Security Hub).
    pub resolved: Vec<Finding>,
    /// Records to write once the announcements are out, keyed by the message id that must
    /// have been sent for the write to happen (`None`: written whatever was sent).
    pub writes: Vec<(Option<String>, ThreadRecord)>,
    /// When each thread was first seen (for Security Hub's `FirstObservedAt`), by thread id.
    pub first_seen: HashMap<String, DateTime<Utc>>,
    /// The digest's view.
    pub changes: Changes,
}

fn notice(f: &mut Finding, kind: NoticeKind, first_seen: DateTime<Utc>, before: Option<String>) {
    f.notice = Some(Notice { kind, first_seen, before });
}

/// What changed in an open thread, if anything worth a message.
fn change(prev: &ThreadRecord, f: &Finding) -> Option<String> {
    let status = f.remediation.as_ref().map(|r| r.status);
    if f.severity > prev.severity {
        return Some(format!("severity {}", prev.severity));
    }
    if status != prev.remediation {
        return Some(format!("remediation {}", prev.remediation.map_or("none", RemediationStatus::as_str)));
    }
    None
}

fn due(prev: &ThreadRecord, now: DateTime<Utc>, remind_days: u32) -> bool {
    remind_days > 0
        && prev.severity >= ANNOUNCE_SEVERITY
        && prev.last_announced.is_some_and(|t| now - t >= Duration::days(i64::from(remind_days)))
}

/// Decides a scan: `previous` is every record of the account, `current` the scan's findings.
#[must_use]
pub fn plan_scan(
    previous: &[ThreadRecord],
    current: &[Finding],
    coverage: &Coverage<'_>,
    now: DateTime<Utc>,
    remind_days: u32,
) -> Plan {
    let by_thread: HashMap<&str, &ThreadRecord> = previous.iter().map(|r| (r.thread.as_str(), r)).collect();
    // Event findings name keys by id, the scan by slot: an open thread the event path
    // reported is the same condition as the scan's finding of that check and principal.
    let event_threads: HashMap<(CheckId, &str), &ThreadRecord> = previous
        .iter()
        .filter(|r| r.is_open() && r.trigger.starts_with("event:"))
        .map(|r| ((r.check, r.principal.as_str()), r))
        .collect();
    let mut plan =
        Plan { changes: Changes { previous_scan: !previous.is_empty(), ..Changes::default() }, ..Plan::default() };
    let mut adopted: HashSet<&str> = HashSet::new();
    for f in current.iter().filter(|f| !is_act(f.check)) {
        let thread = f.thread_id();
        let prev = by_thread.get(thread.as_str()).copied().filter(|r| r.is_open()).or_else(|| {
            let r = event_threads.get(&(f.check, f.principal.as_str())).copied()?;
            adopted.insert(r.thread.as_str());
            Some(r)
        });
        let announce = f.severity >= ANNOUNCE_SEVERITY;
        match prev {
            None => {
                plan.changes.new += 1;
                let mut record = ThreadRecord::of(f, now);
                plan.first_seen.insert(thread, now);
                if announce {
                    let mut f = f.clone();
                    notice(&mut f, NoticeKind::New, now, None);
                    record.last_announced = Some(now);
                    plan.writes.push((Some(f.id.clone()), record));
                    plan.announce.push(f);
                } else {
                    plan.writes.push((None, record));
                }
            }
            Some(prev) => {
                plan.changes.still_open += 1;
                plan.first_seen.insert(thread.clone(), prev.first_seen);
                let mut record =
                    ThreadRecord { last_announced: prev.last_announced, ..ThreadRecord::of(f, prev.first_seen) };
                record.trigger.clone_from(&prev.trigger);
                record.message.clone_from(&prev.message);
                let adopted_here = prev.thread != thread;
                let (kind, before) = match change(prev, f) {
                    Some(before) => (Some(NoticeKind::Changed), Some(before)),
                    None if announce && prev.last_announced.is_none() => (Some(NoticeKind::New), None),
                    None if due(prev, now, remind_days) => (Some(NoticeKind::Reminder), None),
                    None => (None, None),
                };
                match kind {
                    Some(kind) if announce => {
                        let mut f = f.clone();
                        notice(&mut f, kind, prev.first_seen, before);
                        record.last_announced = Some(now);
                        plan.writes.push((Some(f.id.clone()), record));
                        plan.announce.push(f);
                    }
                    Some(_) => plan.writes.push((None, record)),
                    None if adopted_here => plan.writes.push((None, record)),
                    None => {}
                }
            }
        }
    }
    // Resolutions: the open records this scan judged and no longer produced.
    let open: Vec<StoredFinding> = previous
        .iter()
        .filter(|r| r.is_open() && !adopted.contains(r.thread.as_str()))
        .map(ThreadRecord::as_stored)
        .collect();
    for mut f in lifecycle::resolved(&open, current, coverage, now) {
        let Some(prev) = by_thread.get(f.thread_id().as_str()).copied() else { continue };
        plan.changes.resolved += 1;
        plan.first_seen.insert(prev.thread.clone(), prev.first_seen);
        notice(&mut f, NoticeKind::Resolved, prev.first_seen, None);
        let record = ThreadRecord { state: FindingState::Resolved, resolved_at: Some(now), ..prev.clone() };
        // Announced threads end with a message of their own; quiet ones only in the digest.
        let key = prev.last_announced.map(|_| f.id.clone());
        plan.writes.push((key, record));
        plan.resolved.push(f);
    }
    // Adopted event threads are closed quietly: the scan's thread carries the condition on.
    for r in previous.iter().filter(|r| adopted.contains(r.thread.as_str())) {
        plan.writes.push((None, ThreadRecord { state: FindingState::Resolved, resolved_at: Some(now), ..r.clone() }));
    }
    let resolved: HashSet<String> = plan.resolved.iter().map(Finding::thread_id).collect();
    let oldest = current
        .iter()
        .filter(|f| !is_act(f.check))
        .filter_map(|f| plan.first_seen.get(&f.thread_id()).map(|t| (*t, f.check)))
        .chain(
            previous
                .iter()
                .filter(|r| r.is_open() && !resolved.contains(&r.thread) && !adopted.contains(r.thread.as_str()))
                .map(|r| (r.first_seen, r.check)),
        )
        .min_by_key(|(t, _)| *t);
    plan.changes.oldest_open_since = oldest.map(|(t, _)| t);
    plan.changes.oldest_open_check = oldest.map(|(_, c)| c);
    plan
}

/// Decides an event: `previous` holds the records of the event's findings' threads (those the
/// table has); nothing is resolved or reminded on the event path.
#[must_use]
pub fn plan_event(previous: &[ThreadRecord], current: &[Finding], now: DateTime<Utc>) -> Plan {
    let by_thread: HashMap<&str, &ThreadRecord> = previous.iter().map(|r| (r.thread.as_str(), r)).collect();
    let mut plan = Plan::default();
    for f in current {
        if is_act(f.check) {
            plan.announce.push(f.clone());
            continue;
        }
        let thread = f.thread_id();
        match by_thread.get(thread.as_str()).copied().filter(|r| r.is_open()) {
            None => {
                plan.changes.new += 1;
                let mut f = f.clone();
                notice(&mut f, NoticeKind::New, now, None);
                let record = ThreadRecord { last_announced: Some(now), ..ThreadRecord::of(&f, now) };
                plan.first_seen.insert(thread, now);
                plan.writes.push((Some(f.id.clone()), record));
                plan.announce.push(f);
            }
            Some(prev) => {
                plan.first_seen.insert(thread, prev.first_seen);
                let before = change(prev, f);
                let never_announced = prev.last_announced.is_none();
                if before.is_some() || never_announced {
                    let mut f = f.clone();
                    let kind = if before.is_some() { NoticeKind::Changed } else { NoticeKind::New };
                    notice(&mut f, kind, prev.first_seen, before);
                    let mut record = ThreadRecord::of(&f, prev.first_seen);
                    record.last_announced = Some(now);
                    record.trigger.clone_from(&prev.trigger);
                    record.message.clone_from(&prev.message);
                    plan.writes.push((Some(f.id.clone()), record));
                    plan.announce.push(f);
                } else {
                    plan.changes.still_open += 1;
                }
            }
        }
    }
    plan
}

/// The writes whose condition holds: every unconditional write, and those whose message was
/// sent. A record whose message did not go out is not written, so the next run announces it.
#[must_use]
pub fn writes_after<S: std::hash::BuildHasher>(plan: &Plan, sent: &HashSet<String, S>) -> Vec<ThreadRecord> {
    plan.writes
        .iter()
        .filter(|(key, _)| key.as_ref().is_none_or(|id| sent.contains(id)))
        .map(|(_, r)| r.clone())
        .collect()
}

#[cfg(test)]
mod tests;
