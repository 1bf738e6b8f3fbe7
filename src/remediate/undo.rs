//! Undo: every credential action is recorded in its finding's evidence (`evidence.undo`: what
//! was changed, from which state), and `iam-sentinel undo FINDING_ID --from FILE` reverses it
//! — only if the current state is still exactly what the action left.
//!
//! There is no database: the record travels with the finding (the SNS message, the CLI's
//! `--format json` lines), and the engineer points `undo` at a file holding it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::Config;
use crate::ports::{ApprovalsStore, CallError, KeyState, UserDirectory};
use crate::snapshot::Tag;

pub use crate::domain::memory::UndoRecord;

/// Writes `undo` into a finding's evidence (an object; anything else is kept under `facts`).
pub fn record(evidence: &mut Value, undo: &UndoRecord) {
    if !evidence.is_object() {
        *evidence = serde_json::json!({ "facts": evidence.take() });
    }
    evidence["undo"] = serde_json::to_value(undo).unwrap_or(Value::Null);
}

/// Why an undo did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndoError {
    /// The finding or its record could not be found or read.
    #[error("{0}")]
    NoRecord(String),
    /// The current state no longer matches what the action left, or the registry does not allow it.
    #[error("refused: {0}")]
    Refused(String),
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Finds finding `id` in `text` — one finding (an SNS message body), a JSON array of them, an
/// object with a `findings` array, or JSON lines (`--format json`) — and reads its undo record.
pub fn find_record(text: &str, id: &str) -> Result<UndoRecord, UndoError> {
    let items: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        Ok(Value::Object(o)) if o.get("findings").is_some_and(Value::is_array) => {
            o["findings"].as_array().cloned().unwrap_or_default()
        }
        Ok(v) => vec![v],
        Err(_) => text.lines().filter_map(|l| serde_json::from_str(l.trim()).ok()).collect(),
    };
    let finding = items
        .iter()
        .find(|f| f["id"].as_str() == Some(id))
        .ok_or_else(|| UndoError::NoRecord(format!("no finding with id {id} in the file")))?;
    let status = finding["remediation"]["status"].as_str().unwrap_or("none");
    if status != "applied" {
        return Err(UndoError::NoRecord(format!(
            "finding {id} records no applied remediation (status: {status}): nothing to undo"
        )));
    }
    serde_json::from_value(finding["evidence"]["undo"].clone())
        .map_err(|e| UndoError::NoRecord(format!("finding {id} has no readable undo record in its evidence: {e}")))
}

/// Whether a deactivation can be reversed: the key must still exist and still be inactive,
/// and the user must be exempt (`exempt`: break-glass or tagged `STALE_KEY_EXEMPT_TAG`) —
/// otherwise the function, seeing the `UpdateAccessKey` event of the undo, would deactivate
/// the key again within seconds.
pub fn check_reactivation(
    user: &str,
    key_id: &str,
    keys: Option<&[KeyState]>,
    exempt: bool,
    exempt_tag: &str,
    rotating: bool,
) -> Result<(), String> {
    let keys = keys.ok_or_else(|| format!("{user} no longer exists"))?;
    if rotating {
        // The user is opted in to key rotation, which would retire the key again.
        return Err(format!(
            "{user} is opted in to key rotation, which would deactivate {key_id} again: remove the rotation \
             tag first, then undo again"
        ));
    }
    match keys.iter().find(|k| k.id == key_id) {
        None => Err(format!("{user}'s key {key_id} no longer exists (deleted since it was deactivated)")),
        Some(k) if k.active => Err(format!(
            "{user}'s key {key_id} is Active again: someone changed it since it was deactivated; nothing to undo"
        )),
        Some(_) if !exempt => Err(format!(
            "{user} is not exempt: the function would deactivate {key_id} again on the UpdateAccessKey event of \
             this undo; tag {user} with {exempt_tag} (or rotate the key), then undo again"
        )),
        Some(_) => Ok(()),
    }
}

/// Whether an untag can be reversed: the user must exist, still lack the tag, and the
/// registry must approve the user now (re-tagging otherwise would grant an unapproved exception).
pub fn check_retag(user: &str, tag_key: &str, tags: Option<&[Tag]>, approved_now: bool) -> Result<(), String> {
    let tags = tags.ok_or_else(|| format!("{user} no longer exists"))?;
    if let Some(t) = tags.iter().find(|t| t.key.eq_ignore_ascii_case(tag_key)) {
        return Err(format!("{user} carries {}={} again: someone changed it since it was removed", t.key, t.value));
    }
    if !approved_now {
        return Err(format!(
            "the approvals registry does not approve {user} now: add a valid approval first, then undo again"
        ));
    }
    Ok(())
}

/// Whether a rotation can be reversed: the user opted out (or the rotation would run again),
/// the old key still exists and is active (its consumers keep working), the new key still
/// exists, and the secret still holds the new key.
pub fn check_unrotate(
    undo: (&str, &str, &str),
    keys: Option<&[KeyState]>,
    in_secret: Option<&str>,
    rotating: bool,
) -> Result<(), String> {
    let (user, old, new) = undo;
    let keys = keys.ok_or_else(|| format!("{user} no longer exists"))?;
    if rotating {
        return Err(format!(
            "{user} is still opted in to key rotation, which would rotate again: remove the rotation tag first"
        ));
    }
    match keys.iter().find(|k| k.id == old) {
        None => {
            return Err(format!("{user}'s old key {old} no longer exists: its consumers have nothing to go back to"));
        }
        Some(k) if !k.active => {
            return Err(format!(
                "{user}'s old key {old} is inactive: undo its deactivation first, or keep the rotation"
            ));
        }
        Some(_) => {}
    }
    if !keys.iter().any(|k| k.id == new) {
        return Err(format!("{user}'s new key {new} no longer exists: nothing to undo"));
    }
    if in_secret != Some(new) {
        return Err(format!("the rotation secret no longer holds {new}: it changed since the rotation"));
    }
    Ok(())
}

/// Reverses `undo` after checking the current state (`dry_run`: checks only). Returns what
/// was (or would be) done. `config` says who is exempt from stale-key deactivation.
pub async fn apply(
    directory: &impl UserDirectory,
    approvals: &impl ApprovalsStore,
    rotation: Option<&dyn crate::ports::KeyRotation>,
    config: &Config,
    undo: &UndoRecord,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<String, UndoError> {
    let would = if dry_run { "would " } else { "" };
    match undo {
        UndoRecord::Deactivate { user, key_id, .. } => {
            let (keys, tags) = tokio::join!(directory.list_keys(user), directory.read_tags(user));
            let (keys, tags) = (keys?, tags?);
            let rotating =
                tags.as_deref().is_some_and(|t| crate::config::opted_in_to_rotation(t, &config.rotation.tag_key));
            let exempt_tag = &config.stale_keys.exempt_tag;
            let exempt = config.policy.is_break_glass_user(user)
                || tags.iter().flatten().any(|t| t.key.eq_ignore_ascii_case(exempt_tag));
            check_reactivation(user, key_id, keys.as_deref(), exempt, exempt_tag, rotating)
                .map_err(UndoError::Refused)?;
            if !dry_run {
                directory.set_key_status(user, key_id, true).await?;
            }
            Ok(format!("{would}reactivate {user}'s key {key_id}"))
        }
        UndoRecord::Untag { user, tag_key, previous_value } => {
            // Only the exception tag is ever removed, so only it is ever put back.
            if !tag_key.eq_ignore_ascii_case(&config.policy.exception_tag_key) {
                return Err(UndoError::Refused(format!(
                    "the record names tag {tag_key:?}, not the exception tag {:?}: the function never removes \
                     any other tag",
                    config.policy.exception_tag_key
                )));
            }
            let (tags, registry) = tokio::join!(directory.read_tags(user), approvals.load());
            let registry = registry.map_err(|e| UndoError::Refused(format!("the approvals registry: {e}")))?;
            check_retag(user, tag_key, tags?.as_deref(), registry.is_valid_for(user, now))
                .map_err(UndoError::Refused)?;
            if !dry_run {
                directory.add_tag(user, tag_key, previous_value).await?;
            }
            Ok(format!("{would}tag {user} {tag_key}={previous_value} again (approved in the registry)"))
        }
        UndoRecord::Delete { user, key_id } => Err(UndoError::Refused(format!(
            "{user}'s key {key_id} was deleted by the rotation: AWS keeps no copy of a deleted key, so it cannot \
             be restored (the key that replaced it is in the rotation secret)"
        ))),
        UndoRecord::Rotate { user, old_key_id, new_key_id, secret } => {
            let rotation = rotation.ok_or_else(|| UndoError::Refused("key rotation is not available here".into()))?;
            let (keys, tags, vault, previous) = tokio::join!(
                directory.list_keys(user),
                directory.read_tags(user),
                rotation.vault(secret),
                rotation.stage_key(secret, "AWSPREVIOUS")
            );
            let (keys, tags, vault, previous) = (keys?, tags?, vault?, previous?);
            let rotating = tags.as_deref().is_some_and(|t| config.rotation.opts_in(t));
            check_unrotate((user, old_key_id, new_key_id), keys.as_deref(), vault.current_key.as_deref(), rotating)
                .map_err(UndoError::Refused)?;
            // The version to go back to must hold the old key; none at all means this rotation
            // created the secret (the user's first), which is then scheduled for deletion.
            if let Some(held) = previous.as_deref().filter(|held| held != old_key_id) {
                return Err(UndoError::Refused(format!(
                    "{secret}'s previous version holds {held}, not the old key {old_key_id}: it changed since the rotation"
                )));
            }
            if dry_run {
                return Ok(format!(
                    "would restore {secret}'s previous value and deactivate (not delete) {user}'s new key {new_key_id}"
                ));
            }
            let restored = rotation.restore_previous(secret).await?;
            directory.set_key_status(user, new_key_id, false).await?;
            Ok(if restored {
                format!(
                    "restored {secret}'s previous value ({old_key_id}) and deactivated {user}'s new key {new_key_id} \
                     (not deleted: delete it once nothing uses it)"
                )
            } else {
                format!(
                    "scheduled {secret} (created by this rotation) for deletion in 7 days and deactivated {user}'s new \
                     key {new_key_id}; {old_key_id} stays active"
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deactivation() -> Value {
        json!({ "id": "f1", "check": "access-key-stale", "remediation": { "action": "deactivate", "status": "applied" },
                "evidence": { "undo": { "action": "deactivate", "user": "svc", "key_id": "AKIA1", "previous_status": "Active" } } })
    }

    #[test]
    fn records_serialise_as_documented() {
        let r =
            UndoRecord::Untag { user: "bob".into(), tag_key: "AccessException".into(), previous_value: "True".into() };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({ "action": "untag", "user": "bob", "tag_key": "AccessException", "previous_value": "True" })
        );
        let mut evidence = json!({ "tag_value": "True" });
        record(&mut evidence, &r);
        assert_eq!(evidence["tag_value"], "True");
        assert_eq!(evidence["undo"]["action"], "untag");
    }

    #[test]
    fn the_record_is_found_in_a_message_an_array_or_json_lines() {
        let expected =
            UndoRecord::Deactivate { user: "svc".into(), key_id: "AKIA1".into(), previous_status: "Active".into() };
        let one = serde_json::to_string_pretty(&deactivation()).unwrap();
        assert_eq!(find_record(&one, "f1").unwrap(), expected);
        let array = json!([{ "id": "f0" }, deactivation()]).to_string();
        assert_eq!(find_record(&array, "f1").unwrap(), expected);
        // A scan's digest message: the findings under `findings`.
        let digest = json!({ "digest": { "part": 1 }, "findings": [deactivation()] }).to_string();
        assert_eq!(find_record(&digest, "f1").unwrap(), expected);
        let lines = format!("{}\n{}\n", json!({ "id": "f0" }), deactivation());
        assert_eq!(find_record(&lines, "f1").unwrap(), expected);
        assert!(matches!(find_record(&lines, "f9"), Err(UndoError::NoRecord(m)) if m.contains("no finding")));
    }

    #[test]
    fn only_an_applied_remediation_can_be_undone() {
        let mut f = deactivation();
        f["remediation"]["status"] = json!("dry-run");
        let e = find_record(&f.to_string(), "f1").unwrap_err();
        assert!(e.to_string().contains("status: dry-run"), "{e}");
    }

    #[test]
    fn reactivation_requires_the_key_still_inactive() {
        let at = Utc::now();
        let key = |active| vec![KeyState { id: "AKIA1".into(), active, created: at }];
        let check = |keys: Option<&[KeyState]>, exempt| check_reactivation("svc", "AKIA1", keys, exempt, "keep", false);
        assert_eq!(check(Some(&key(false)), true), Ok(()));
        assert!(check(Some(&key(false)), false).unwrap_err().contains("tag svc with keep"));
        assert!(check(Some(&key(true)), true).unwrap_err().contains("Active again"));
        assert!(check(Some(&[]), true).unwrap_err().contains("no longer exists"));
        assert!(check(None, true).unwrap_err().contains("svc no longer exists"));
        // A user opted in to rotation (no exemption applies): refused, naming the way out.
        let rotating = check_reactivation("svc", "AKIA1", Some(&key(false)), true, "keep", true);
        assert!(rotating.unwrap_err().contains("remove the rotation tag first"));
    }

    #[test]
    fn a_rotation_is_undone_only_from_the_state_it_left() {
        let at = Utc::now();
        let k = |id: &str, active| KeyState { id: id.into(), active, created: at };
        let both = [k("AKIAOLD", true), k("AKIANEW", true)];
        let check = |keys: &[KeyState], secret: Option<&str>, rotating| {
            check_unrotate(("svc", "AKIAOLD", "AKIANEW"), Some(keys), secret, rotating)
        };
        assert_eq!(check(&both, Some("AKIANEW"), false), Ok(()));
        assert!(check(&both, Some("AKIANEW"), true).unwrap_err().contains("still opted in"));
        assert!(
            check(&[k("AKIAOLD", false), k("AKIANEW", true)], Some("AKIANEW"), false).unwrap_err().contains("inactive")
        );
        assert!(check(&[k("AKIANEW", true)], Some("AKIANEW"), false).unwrap_err().contains("AKIAOLD no longer exists"));
        assert!(check(&[k("AKIAOLD", true)], Some("AKIANEW"), false).unwrap_err().contains("AKIANEW no longer exists"));
        assert!(check(&both, Some("AKIAOTHER"), false).unwrap_err().contains("no longer holds"));
    }

    #[test]
    fn retagging_requires_the_tag_absent_and_an_approval_now() {
        assert_eq!(check_retag("bob", "AccessException", Some(&[]), true), Ok(()));
        let tagged = [Tag::new("accessexception", "True")];
        assert!(check_retag("bob", "AccessException", Some(&tagged), true).unwrap_err().contains("again"));
        assert!(check_retag("bob", "AccessException", Some(&[]), false).unwrap_err().contains("does not approve"));
        assert!(check_retag("bob", "AccessException", None, true).is_err());
    }
}
