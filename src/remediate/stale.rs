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
mod tests;
