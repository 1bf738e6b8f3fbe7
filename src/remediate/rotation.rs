//! Access key rotation for opted-in users (seed 004: "rotation is not a feature of IAM"),
//! decided purely: the user's keys, what the rotation secret holds and "now" give one
//! [`Step`]. Judged again on every trigger from the current state, so running it twice, at
//! the same time, or after a crash never creates a third key, never deactivates the key the
//! secret holds, and never deletes an active key.
//!
//! The lifecycle (days configurable, defaults from AWS's sample rotation):
//! 1. **rotate** when the active key reaches the rotation-due point: a new key, written to the
//!    user's secret as its current version;
//! 2. **deactivate** the old key `deactivate_after_days` after the new key was created, unless
//!    it was used since (then `rotation-stalled`: its consumer has not moved yet);
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

pub use crate::domain::keys::{LastUse, Vault};

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
    /// Deciding on deactivation needs the old key's last use (one `GetAccessKeyLastUsed`).
    NeedsLastUse {
        /// The replaced key.
        old: String,
    },
    /// `old` was used after `new` was created: its consumer still uses it; not deactivated.
    Stalled {
        /// The replaced key.
        old: String,
        /// The key in the secret.
        new: String,
        /// Its last use.
        last_use: LastUse,
    },
    /// Delete `old`: deactivated long enough ago and still inactive.
    Delete {
        /// The replaced, inactive key.
        old: String,
    },
    /// The state is not one the rotation can act on safely; the reason says why.
    Blocked(String),
}

/// Decides the next step for one opted-in user. `old_last_use` is the old key's last use when
/// it was read (after a [`Step::NeedsLastUse`]).
#[must_use]
pub fn next_step(
    keys: &[Key],
    vault: &Vault,
    old_last_use: Option<&LastUse>,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> Step {
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
            match old_last_use {
                None => Step::NeedsLastUse { old: old.id.clone() },
                Some(u) if u.at.is_some_and(|t| t > new.created) => {
                    Step::Stalled { old: old.id.clone(), new: new.id.clone(), last_use: u.clone() }
                }
                Some(_) => Step::Deactivate { old: old.id.clone(), new: new.id.clone() },
            }
        }
        [old] => match &vault.deactivated {
            Some((id, at)) if *id == old.id => {
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

    fn vault(current: Option<&str>, deactivated: Option<(&str, i64)>) -> Vault {
        Vault { current_key: current.map(Into::into), deactivated: deactivated.map(|(id, d)| (id.to_owned(), day(d))) }
    }

    fn step(keys: &[Key], v: &Vault, used: Option<&LastUse>, now: i64) -> Step {
        next_step(keys, v, used, &SCHEDULE, day(now))
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
        let v = vault(Some("AKIANEW"), None);
        let keys = [old.clone(), new.clone()];
        assert!(matches!(step(&keys, &v, None, 85), Step::Wait(_)));
        // Day 86: deactivation is due, once the old key's last use is known.
        assert_eq!(step(&keys, &v, None, 86), Step::NeedsLastUse { old: "AKIAOLD".into() });
        let unused_since = LastUse { at: Some(day(70)), service: Some("s3".into()), region: Some("eu-west-1".into()) };
        assert_eq!(
            step(&keys, &v, Some(&unused_since), 86),
            Step::Deactivate { old: "AKIAOLD".into(), new: "AKIANEW".into() }
        );
        // Deactivated on day 90: deleted from day 100.
        let keys = [key("AKIAOLD", false, 0), new.clone()];
        let v = vault(Some("AKIANEW"), Some(("AKIAOLD", 90)));
        assert!(matches!(step(&keys, &v, None, 99), Step::Wait(_)));
        assert_eq!(step(&keys, &v, None, 100), Step::Delete { old: "AKIAOLD".into() });
        // After deletion: the new key waits for its own rotation at 76 days (day 152).
        let v = vault(Some("AKIANEW"), Some(("AKIAOLD", 90)));
        assert!(matches!(step(std::slice::from_ref(&new), &v, None, 120), Step::Wait(_)));
        assert_eq!(step(&[new], &v, None, 152), Step::Rotate { old: "AKIANEW".into() });
    }

    #[test]
    fn an_old_key_used_after_the_rotation_stalls_instead_of_breaking_its_consumer() {
        let keys = [key("AKIAOLD", true, 0), key("AKIANEW", true, 76)];
        let used = LastUse { at: Some(day(88)), service: Some("s3".into()), region: Some("eu-west-1".into()) };
        let s = step(&keys, &vault(Some("AKIANEW"), None), Some(&used), 90);
        assert_eq!(s, Step::Stalled { old: "AKIAOLD".into(), new: "AKIANEW".into(), last_use: used });
    }

    #[test]
    fn no_third_key_and_no_guessing_with_two_keys_outside_the_secret() {
        // Two keys, no secret: no free slot.
        let keys = [key("AKIAONE", true, 0), key("AKIATWO", true, 5)];
        assert!(matches!(step(&keys, &Vault::default(), None, 200), Step::Blocked(r) if r.contains("no free slot")));
        // A crash after creating the key and before storing it: the secret still holds the old
        // key and a newer one exists. Never deactivate or delete it blindly: blocked, named.
        let keys = [key("AKIAOLD", true, 0), key("AKIAORPHAN", true, 76)];
        let s = step(&keys, &vault(Some("AKIAOLD"), None), None, 90);
        assert!(matches!(&s, Step::Blocked(r) if r.contains("AKIAORPHAN is newer")), "{s:?}");
    }

    #[test]
    fn never_the_key_in_the_secret_and_never_an_active_key_is_deleted() {
        // The old key was reactivated after the rotation deactivated it: deactivation is judged
        // again (it is active), never deletion.
        let keys = [key("AKIAOLD", true, 0), key("AKIANEW", true, 76)];
        let v = vault(Some("AKIANEW"), Some(("AKIAOLD", 90)));
        assert_eq!(step(&keys, &v, None, 120), Step::NeedsLastUse { old: "AKIAOLD".into() });
        // The key in the secret was deactivated by someone: blocked.
        let keys = [key("AKIANEW", false, 76)];
        assert!(matches!(step(&keys, &vault(Some("AKIANEW"), None), None, 200), Step::Blocked(_)));
        // An inactive old key the rotation did not deactivate is not its to delete.
        let keys = [key("AKIAOLD", false, 0), key("AKIANEW", true, 76)];
        assert!(
            matches!(step(&keys, &vault(Some("AKIANEW"), None), None, 200), Step::Wait(r) if r.contains("not deactivated by the rotation"))
        );
    }

    #[test]
    fn a_secret_naming_a_deleted_key_starts_over_from_the_keys() {
        let keys = [key("AKIAMANUAL", true, 0)];
        assert_eq!(step(&keys, &vault(Some("AKIAGONE"), None), None, 80), Step::Rotate { old: "AKIAMANUAL".into() });
        assert!(matches!(step(&[], &Vault::default(), None, 80), Step::Wait(_)));
        assert!(matches!(step(&[key("AKIAOFF", false, 0)], &Vault::default(), None, 80), Step::Wait(_)));
    }
}
