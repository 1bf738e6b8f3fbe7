//! Access key rotation for opted-in users (seed 004: "rotation is not a feature of IAM"),
//! decided purely: the user's keys, what the rotation secret holds and "now" give one
//! [`Step`]. Judged again on every trigger from the current state, so running it twice, at
//! the same time, or after a crash never creates a third key, never deactivates the key the
//! secret holds, and never deletes an active key.
//!
//! The lifecycle (days configurable, defaults from AWS's sample rotation):
//! 1. **rotate** when the active key reaches the rotation-due point: a new key, written to the
//!    user's secret as its current version;
//! 2. **deactivate** the old key `deactivate_after_days` after the new key was created, only
//!    with evidence that its consumer moved: the new key was used since its creation and the old
//!    key was not (otherwise `rotation-stalled`, naming the missing evidence);
//! 3. **delete** the old key `delete_after_days` after it was deactivated, if it stayed inactive.

use chrono::{DateTime, Utc};

use crate::checks::whole_days;

/// When each step is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Key age at which the active key is rotated (`KEY_MAX_AGE_DAYS − KEY_WARN_DAYS`).
    pub rotate_at_days: i64,
    /// Days after the new key's creation before the old key is deactivated.
    pub deactivate_after_days: i64,
    /// Days after the old key's deactivation before it is deleted.
    pub delete_after_days: i64,
}

/// One access key as IAM describes it now (`ListAccessKeys`).
pub type Key = crate::domain::keys::KeyState;

pub use crate::domain::keys::{LastUse, Uses, Vault};

/// The one thing to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing is due; the reason says what comes next.
    Wait(String),
    /// Create a new key and store it as the secret's current version.
    Rotate {
        /// The key being replaced.
        old: String,
    },
    /// Deactivate `old`: the secret has held `new` long enough, and `old` was not used since.
    Deactivate {
        /// The replaced key.
        old: String,
        /// The key in the secret.
        new: String,
    },
    /// Deciding on deactivation needs both keys' last use (`GetAccessKeyLastUsed` each).
    NeedsLastUse {
        /// The replaced key.
        old: String,
        /// The key in the secret.
        new: String,
    },
    /// No evidence that the consumer moved to `new`: `old` is not deactivated.
    Stalled {
        /// The replaced key.
        old: String,
        /// The key in the secret.
        new: String,
        /// Which evidence is missing.
        missing: String,
        /// Both keys' last use.
        uses: Uses,
    },
    /// Delete `old`: deactivated long enough ago and still inactive.
    Delete {
        /// The replaced, inactive key.
        old: String,
    },
    /// The state is not one the rotation can act on safely; the reason says why.
    Blocked(String),
}

/// Decides the next step for one opted-in user. `uses` is both keys' last use when it was read
/// (after a [`Step::NeedsLastUse`]).
#[must_use]
pub fn next_step(keys: &[Key], vault: &Vault, uses: Option<&Uses>, schedule: &Schedule, now: DateTime<Utc>) -> Step {
    if let Some(why) = &vault.not_ours {
        return Step::Blocked(format!(
            "the secret at the rotation's name was not created by the rotation ({why}): no key is written into it"
        ));
    }
    let current = vault.current_key.as_deref().and_then(|id| keys.iter().find(|k| k.id == id));
    let Some(new) = current else { return first_rotation(keys, schedule, now) };
    if !new.active {
        return Step::Blocked(format!(
            "the key in the secret ({}) is inactive: reactivate it or delete the secret to start over",
            new.id
        ));
    }
    let others: Vec<&Key> = keys.iter().filter(|k| k.id != new.id).collect();
    match others.as_slice() {
        [] => {
            let age = whole_days(new.created, now);
            if age >= schedule.rotate_at_days {
                Step::Rotate { old: new.id.clone() }
            } else {
                Step::Wait(format!("{} is {age} days old; rotation at {} days", new.id, schedule.rotate_at_days))
            }
        }
        [old] if old.created > new.created => Step::Blocked(format!(
            "{} is newer than the key in the secret ({}): created outside the rotation, or by a rotation \
             interrupted before it stored the key; delete it (nobody holds its secret) or store it yourself",
            old.id, new.id
        )),
        [old] if old.active => {
            let since = whole_days(new.created, now);
            if since < schedule.deactivate_after_days {
                return Step::Wait(format!(
                    "{} stays active until {} days after {} was created ({since} so far)",
                    old.id, schedule.deactivate_after_days, new.id
                ));
            }
            let Some(uses) = uses else { return Step::NeedsLastUse { old: old.id.clone(), new: new.id.clone() } };
            match missing_evidence(old, new, uses) {
                Some(missing) => {
                    Step::Stalled { old: old.id.clone(), new: new.id.clone(), missing, uses: uses.clone() }
                }
                None => Step::Deactivate { old: old.id.clone(), new: new.id.clone() },
            }
        }
        [old] => match vault.deactivated.iter().find(|(id, _)| *id == old.id) {
            Some((_, at)) => {
                let since = whole_days(*at, now);
                if since >= schedule.delete_after_days {
                    Step::Delete { old: old.id.clone() }
                } else {
                    Step::Wait(format!(
                        "{} was deactivated {since} days ago; deleted after {}",
                        old.id, schedule.delete_after_days
                    ))
                }
            }
            // Deactivated by someone else: not the rotation's to delete.
            _ => Step::Wait(format!("{} is inactive but was not deactivated by the rotation: left as it is", old.id)),
        },
        _ => Step::Blocked("more than two keys reported".into()),
    }
}

/// What is missing from the evidence that the consumer moved from `old` to `new`: the new key
/// used since its creation, the old key not used since; `None` when both hold.
fn missing_evidence(old: &Key, new: &Key, uses: &Uses) -> Option<String> {
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let mut missing = Vec::new();
    match uses.new.at {
        Some(t) if t >= new.created => {}
        _ => missing.push(format!("{} has not been used since it was created ({})", new.id, day(new.created))),
    }
    if let Some(t) = uses.old.at.filter(|t| *t >= new.created) {
        let place = match (&uses.old.service, &uses.old.region) {
            (Some(s), Some(r)) => format!(", {s} in {r}"),
            (Some(s), None) => format!(", {s}"),
            _ => String::new(),
        };
        missing.push(format!("{} was still used after {} replaced it (last {}{place})", old.id, new.id, day(t)));
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

/// No key of the user is in a secret yet: rotate the single active key once it is due.
fn first_rotation(keys: &[Key], schedule: &Schedule, now: DateTime<Utc>) -> Step {
    match keys {
        [] => Step::Wait("the user has no access key".into()),
        [key] if !key.active => Step::Wait(format!("{} is inactive", key.id)),
        [key] => {
            let age = whole_days(key.created, now);
            if age >= schedule.rotate_at_days {
                Step::Rotate { old: key.id.clone() }
            } else {
                Step::Wait(format!("{} is {age} days old; rotation at {} days", key.id, schedule.rotate_at_days))
            }
        }
        _ => Step::Blocked(
            "two keys and neither is in the rotation secret: no free slot to rotate into (IAM allows two); \
             delete the key no longer used"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    const SCHEDULE: Schedule = Schedule { rotate_at_days: 76, deactivate_after_days: 10, delete_after_days: 10 };

    fn day(n: i64) -> DateTime<Utc> {
        "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::days(n)
    }

    fn key(id: &str, active: bool, created_day: i64) -> Key {
        Key { id: id.into(), active, created: day(created_day) }
    }

    fn vault(current: Option<&str>, deactivated: &[(&str, i64)]) -> Vault {
        Vault {
            current_key: current.map(Into::into),
            deactivated: deactivated.iter().map(|(id, d)| ((*id).to_owned(), day(*d))).collect(),
            not_ours: None,
        }
    }

    fn used(d: Option<i64>) -> LastUse {
        LastUse { at: d.map(day), service: d.map(|_| "s3".into()), region: d.map(|_| "eu-west-1".into()) }
    }

    /// The consumer moved: the new key used on `new_day`, the old one last on `old_day`.
    fn uses(old_day: Option<i64>, new_day: Option<i64>) -> Uses {
        Uses { old: used(old_day), new: used(new_day) }
    }

    fn step(keys: &[Key], v: &Vault, u: Option<&Uses>, now: i64) -> Step {
        next_step(keys, v, u, &SCHEDULE, day(now))
    }

    #[test]
    fn the_whole_lifecycle_day_by_day() {
        // Day 75: not due. Day 76: rotate the only key.
        let old = key("AKIAOLD", true, 0);
        assert!(matches!(step(std::slice::from_ref(&old), &Vault::default(), None, 75), Step::Wait(_)));
        assert_eq!(
            step(std::slice::from_ref(&old), &Vault::default(), None, 76),
            Step::Rotate { old: "AKIAOLD".into() }
        );
        // Rotated on day 76: the secret holds the new key; the old one stays active 10 days.
        let new = key("AKIANEW", true, 76);
        let v = vault(Some("AKIANEW"), &[]);
        let keys = [old.clone(), new.clone()];
        assert!(matches!(step(&keys, &v, None, 85), Step::Wait(_)));
        // Day 86: deactivation is due, once both keys' last use is known.
        assert_eq!(step(&keys, &v, None, 86), Step::NeedsLastUse { old: "AKIAOLD".into(), new: "AKIANEW".into() });
        assert_eq!(
            step(&keys, &v, Some(&uses(Some(70), Some(80))), 86),
            Step::Deactivate { old: "AKIAOLD".into(), new: "AKIANEW".into() }
        );
        // Deactivated on day 90: deleted from day 100.
        let keys = [key("AKIAOLD", false, 0), new.clone()];
        let v = vault(Some("AKIANEW"), &[("AKIAOLD", 90)]);
        assert!(matches!(step(&keys, &v, None, 99), Step::Wait(_)));
        assert_eq!(step(&keys, &v, None, 100), Step::Delete { old: "AKIAOLD".into() });
        // After deletion: the new key waits for its own rotation at 76 days (day 152).
        let v = vault(Some("AKIANEW"), &[]);
        assert!(matches!(step(std::slice::from_ref(&new), &v, None, 120), Step::Wait(_)));
        assert_eq!(step(&[new], &v, None, 152), Step::Rotate { old: "AKIANEW".into() });
    }

    /// Three cycles, one day at a time: each cycle rotates, deactivates and deletes exactly
    /// once, on the day it is due, and the deactivation record of a finished cycle (left
    /// behind by a crash before its clean-up) never decides a later cycle.
    #[test]
    fn three_cycles_day_by_day_each_step_once_and_on_time() {
        let mut keys = vec![key("AKIA0", true, 0)];
        let mut v = Vault::default();
        let mut serial = 0;
        let mut log = Vec::new();
        for today in 0..=500 {
            let mut s = step(&keys, &v, None, today);
            if let Step::NeedsLastUse { old, new } = &s {
                // The consumer switches to the new key the day after the rotation.
                let new_created = keys.iter().find(|k| k.id == *new).unwrap().created;
                let old_created = keys.iter().find(|k| k.id == *old).unwrap().created;
                let u = Uses {
                    old: LastUse { at: Some(old_created), ..used(None) },
                    new: LastUse { at: Some(new_created + Duration::days(1)), ..used(None) },
                };
                s = step(&keys, &v, Some(&u), today);
            }
            match s {
                Step::Rotate { old } => {
                    serial += 1;
                    let id = format!("AKIA{serial}");
                    keys.push(key(&id, true, today));
                    v.current_key = Some(id);
                    log.push((today, "rotate", old));
                }
                Step::Deactivate { old, .. } => {
                    keys.iter_mut().find(|k| k.id == old).unwrap().active = false;
                    v.deactivated.push((old.clone(), day(today)));
                    log.push((today, "deactivate", old));
                }
                Step::Delete { old } => {
                    keys.retain(|k| k.id != old);
                    // The clean-up of cycle 1 is "lost" (a crash after the delete): its record stays.
                    if serial != 1 {
                        v.deactivated.retain(|(id, _)| *id != old);
                    }
                    log.push((today, "delete", old));
                }
                Step::Wait(_) => {}
                other => panic!("day {today}: {other:?}"),
            }
            assert!(keys.len() <= 2, "day {today}: never a third key");
        }
        let expected = [
            (76, "rotate", "AKIA0"),
            (86, "deactivate", "AKIA0"),
            (96, "delete", "AKIA0"),
            (152, "rotate", "AKIA1"),
            (162, "deactivate", "AKIA1"),
            (172, "delete", "AKIA1"),
            (228, "rotate", "AKIA2"),
            (238, "deactivate", "AKIA2"),
            (248, "delete", "AKIA2"),
        ];
        let got: Vec<(i64, &str, &str)> = log.iter().take(9).map(|(d, s, k)| (*d, *s, k.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn deactivation_needs_evidence_that_the_consumer_moved() {
        let keys = [key("AKIAOLD", true, 0), key("AKIANEW", true, 76)];
        let v = vault(Some("AKIANEW"), &[]);
        // The old key used after the rotation: its consumer has not moved.
        let s = step(&keys, &v, Some(&uses(Some(88), Some(89))), 90);
        assert!(
            matches!(&s, Step::Stalled { missing, .. } if missing == "AKIAOLD was still used after AKIANEW replaced it (last 2026-03-30, s3 in eu-west-1)"),
            "{s:?}"
        );
        // A monthly job that has not run since the rotation: neither key used since. Day 90 is
        // not enough evidence; the old key stays active.
        let s = step(&keys, &v, Some(&uses(Some(40), None)), 90);
        assert!(
            matches!(&s, Step::Stalled { missing, .. } if missing == "AKIANEW has not been used since it was created (2026-03-18)"),
            "{s:?}"
        );
        // The old key last used before the rotation, the new one since: deactivate.
        assert_eq!(
            step(&keys, &v, Some(&uses(Some(75), Some(77))), 90),
            Step::Deactivate { old: "AKIAOLD".into(), new: "AKIANEW".into() }
        );
        // Both missing: both named.
        let s = step(&keys, &v, Some(&uses(Some(80), None)), 90);
        assert!(
            matches!(&s, Step::Stalled { missing, .. } if missing.contains("AKIANEW has not") && missing.contains("AKIAOLD was still")),
            "{s:?}"
        );
    }

    #[test]
    fn a_secret_the_rotation_did_not_create_blocks_every_step() {
        let mut v = vault(Some("AKIANEW"), &[("AKIAOLD", 90)]);
        v.not_ours = Some("it has no iam-sentinel:managed-by tag".into());
        for keys in [vec![key("AKIAOLD", true, 0)], vec![key("AKIAOLD", false, 0), key("AKIANEW", true, 76)]] {
            let s = step(&keys, &v, None, 200);
            assert!(matches!(&s, Step::Blocked(r) if r.contains("not created by the rotation (it has no")), "{s:?}");
        }
    }

    #[test]
    fn no_third_key_and_no_guessing_with_two_keys_outside_the_secret() {
        // Two keys, no secret: no free slot.
        let keys = [key("AKIAONE", true, 0), key("AKIATWO", true, 5)];
        assert!(matches!(step(&keys, &Vault::default(), None, 200), Step::Blocked(r) if r.contains("no free slot")));
        // A crash after creating the key and before storing it: the secret still holds the old
        // key and a newer one exists. Never deactivate or delete it blindly: blocked, named.
        let keys = [key("AKIAOLD", true, 0), key("AKIAORPHAN", true, 76)];
        let s = step(&keys, &vault(Some("AKIAOLD"), &[]), None, 90);
        assert!(matches!(&s, Step::Blocked(r) if r.contains("AKIAORPHAN is newer")), "{s:?}");
    }

    #[test]
    fn never_the_key_in_the_secret_and_never_an_active_key_is_deleted() {
        // The old key was reactivated after the rotation deactivated it: deactivation is judged
        // again (it is active), never deletion.
        let keys = [key("AKIAOLD", true, 0), key("AKIANEW", true, 76)];
        let v = vault(Some("AKIANEW"), &[("AKIAOLD", 90)]);
        assert_eq!(step(&keys, &v, None, 120), Step::NeedsLastUse { old: "AKIAOLD".into(), new: "AKIANEW".into() });
        // The key in the secret was deactivated by someone: blocked.
        let keys = [key("AKIANEW", false, 76)];
        assert!(matches!(step(&keys, &vault(Some("AKIANEW"), &[]), None, 200), Step::Blocked(_)));
        // An inactive old key the rotation did not deactivate is not its to delete, even when
        // a record of another cycle's key is still on the secret.
        let keys = [key("AKIAOLD", false, 0), key("AKIANEW", true, 76)];
        let v = vault(Some("AKIANEW"), &[("AKIAEARLIER", 10)]);
        assert!(matches!(step(&keys, &v, None, 200), Step::Wait(r) if r.contains("not deactivated by the rotation")),);
    }

    #[test]
    fn a_secret_naming_a_deleted_key_starts_over_from_the_keys() {
        let keys = [key("AKIAMANUAL", true, 0)];
        assert_eq!(step(&keys, &vault(Some("AKIAGONE"), &[]), None, 80), Step::Rotate { old: "AKIAMANUAL".into() });
        assert!(matches!(step(&[], &Vault::default(), None, 80), Step::Wait(_)));
        assert!(matches!(step(&[key("AKIAOFF", false, 0)], &Vault::default(), None, 80), Step::Wait(_)));
    }
}
