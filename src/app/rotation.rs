//! Carries out the rotation steps [`crate::remediate::rotation::next_step`] decides, one user
//! at a time, reading fresh state just before acting and recording what was done.

use serde_json::json;

use super::{App, Failure, RunOptions};
use crate::finding::{CheckId, Finding, Remediation, RemediationStatus, Scope};
use crate::ports::{AccountReader, ApprovalsStore, CallError, FindingsSink, KeyRotation, UserDirectory};
use crate::remediate::rotation::{Schedule, Step, Uses, next_step};
use crate::remediate::undo::{UndoRecord, record};
use crate::snapshot::UserSnapshot;

/// The user's rotation secret.
#[must_use]
pub fn secret_name(account: &str, user: &str) -> String {
    format!("iam-sentinel/keys/{account}/{user}")
}

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    fn schedule(&self) -> Schedule {
        let p = &self.config.policy;
        Schedule {
            rotate_at_days: p.key_max_age_days - p.key_warn_days,
            deactivate_after_days: self.config.rotation.deactivate_after_days,
            delete_after_days: self.config.rotation.delete_after_days,
        }
    }

    /// Whether `user` opted in and a step may be due (a key at the rotation point, or a
    /// rotation in flight): only those cost per-user calls. Break-glass users are never
    /// rotated (the role denies it too).
    fn rotation_candidate(&self, user: &UserSnapshot, now: chrono::DateTime<chrono::Utc>) -> bool {
        let opted_in = self.config.rotation.opts_in(&user.tags) && !self.config.policy.is_break_glass_user(&user.name);
        let due = |k: &crate::snapshot::AccessKey| {
            k.active && crate::checks::whole_days(k.created, now) >= self.schedule().rotate_at_days
        };
        opted_in && (user.keys.len() > 1 || user.keys.iter().any(due))
    }

    /// A call that set `user`'s opt-in tag is reported, naming who opted whom in. With
    /// `APPROVER_PRINCIPALS` set, an opt-in by anyone else is not honoured: the tag is removed
    /// again (when `ROTATE_KEYS=true` and not `--dry-run`; otherwise the finding says it would be).
    pub(super) async fn judge_opt_in(
        &self,
        change: &crate::event::IamChange,
        user: &UserSnapshot,
        scope: &Scope,
        opts: &RunOptions,
    ) -> (Vec<Finding>, Vec<Failure>) {
        let rotation = &self.config.rotation;
        let set = change
            .tags_set
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(&rotation.tag_key) && v.eq_ignore_ascii_case(&rotation.tag_value));
        let Some((tag_key, tag_value)) = set else { return (Vec::new(), Vec::new()) };
        let approvers = &self.config.policy.approver_principals;
        let approved = approvers.is_empty() || approvers.iter().any(|p| change.actor.is(p));
        let by = &change.actor.arn;
        let mut f = scope.finding(
            CheckId::RotationOptIn,
            &user.arn,
            if approved {
                format!("{by} opted {} in to key rotation ({tag_key}={tag_value})", user.name)
            } else {
                format!(
                    "{by} opted {} in to key rotation ({tag_key}={tag_value}) but is not one of APPROVER_PRINCIPALS: \
                     not honoured",
                    user.name
                )
            },
        );
        f.user = Some(user.name.clone());
        f.evidence = json!({ "tag_key": tag_key, "tag_value": tag_value, "opted_in_by": by, "honoured": approved });
        if approved {
            return (vec![f], Vec::new());
        }
        let mut failures = Vec::new();
        let remediation = if !rotation.enabled || opts.dry_run {
            let why = if opts.dry_run { "--dry-run" } else { "ROTATE_KEYS=false" };
            Remediation {
                action: "untag".into(),
                status: RemediationStatus::DryRun,
                detail: Some(format!("would remove {tag_key} ({why})")),
            }
        } else {
            match self.directory.remove_tag(&user.name, tag_key).await {
                Ok(()) => Remediation { action: "untag".into(), status: RemediationStatus::Applied, detail: None },
                Err(e) => {
                    let detail = Some(e.to_string());
                    failures.push(Failure::Rotation(e));
                    Remediation { action: "untag".into(), status: RemediationStatus::Failed, detail }
                }
            }
        };
        f.remediation = Some(remediation);
        (vec![f], failures)
    }

    /// The scan's rotations: every opted-in user the credential report knows.
    pub(super) async fn rotate_scanned(
        &self,
        snapshot: &crate::ports::AccountSnapshot,
        scope: &Scope,
        opts: &RunOptions,
        findings: &mut Vec<Finding>,
        failures: &mut Vec<Failure>,
    ) {
        let users: Vec<&UserSnapshot> =
            snapshot.users.iter().filter(|u| !snapshot.users_not_in_report.contains(&u.name)).collect();
        let (f, e) = self.rotate_keys(&users, scope, opts).await;
        findings.extend(f);
        failures.extend(e);
    }

    /// Judges and carries out the rotation of every opted-in user among `users`.
    pub(super) async fn rotate_keys(
        &self,
        users: &[&UserSnapshot],
        scope: &Scope,
        opts: &RunOptions,
    ) -> (Vec<Finding>, Vec<Failure>) {
        let (mut findings, mut failures) = (Vec::new(), Vec::new());
        let Some(rotation) = self.key_rotation.as_deref() else { return (findings, failures) };
        for user in users.iter().filter(|u| self.rotation_candidate(u, opts.now)) {
            if opts.must_stop() {
                failures.push(Failure::Rotation(CallError {
                    action: "rotation",
                    target: user.name.clone(),
                    message: "stopped before the Lambda deadline; the next run takes the step".into(),
                }));
                break;
            }
            // Boxed: a rotation step holds several SDK calls; the scan future stays small.
            match Box::pin(self.rotate_one(rotation, user, scope, opts)).await {
                Ok(f) => findings.extend(f),
                Err((f, e)) => {
                    findings.extend(f);
                    failures.push(Failure::Rotation(e));
                }
            }
        }
        (findings, failures)
    }

    async fn rotate_one(
        &self,
        rotation: &dyn KeyRotation,
        user: &UserSnapshot,
        scope: &Scope,
        opts: &RunOptions,
    ) -> Result<Option<Finding>, (Option<Finding>, CallError)> {
        let secret = secret_name(&scope.account, &user.name);
        let (keys, vault, not_ours) = tokio::join!(
            self.directory.list_keys(&user.name),
            rotation.vault(&secret),
            rotation.not_ours(&secret, &user.arn)
        );
        let (keys, mut vault) = (keys.map_err(|e| (None, e))?, vault.map_err(|e| (None, e))?);
        vault.not_ours = not_ours.map_err(|e| (None, e))?;
        // The user was deleted since it was read: nothing to rotate.
        let Some(keys) = keys else { return Ok(None) };
        let schedule = self.schedule();
        let mut step = next_step(&keys, &vault, None, &schedule, opts.now);
        if let Step::NeedsLastUse { old, new } = &step {
            let (old, new) = tokio::join!(rotation.last_use(old), rotation.last_use(new));
            let evidence = Uses { old: old.map_err(|e| (None, e))?, new: new.map_err(|e| (None, e))? };
            step = next_step(&keys, &vault, Some(&evidence), &schedule, opts.now);
        }
        let act = self.config.rotation.enabled && !opts.dry_run;
        let why_not = if opts.dry_run { "--dry-run" } else { "ROTATE_KEYS=false" };
        let finding = |check: CheckId, resource: &str, message: String, evidence: serde_json::Value| {
            let mut f = scope.finding(check, &user.arn, message);
            f.user = Some(user.name.clone());
            f.resource = Some(resource.to_owned());
            f.evidence = evidence;
            f
        };
        let done = |f: &mut Finding, action: &str, status, detail: Option<String>| {
            f.remediation = Some(Remediation { action: action.into(), status, detail });
        };
        if act && vault.not_ours.is_none() {
            // Records of keys deleted since (a crash between the delete and its clean-up).
            for (gone, _) in vault.deactivated.iter().filter(|(id, _)| !keys.iter().any(|k| k.id == *id)) {
                rotation.forget_deactivation(&secret, gone).await.map_err(|e| (None, e))?;
            }
        }
        match step {
            Step::Wait(_) | Step::NeedsLastUse { .. } => Ok(None),
            Step::Stalled { old, new, missing, uses } => {
                let evidence = json!({
                    "old_key_id": old, "new_key_id": new, "secret": secret, "missing_evidence": missing,
                    "old_key_last_used": uses.old.at, "service": uses.old.service, "region": uses.old.region,
                    "new_key_last_used": uses.new.at,
                });
                let message = format!(
                    "{}'s old key {old} is not deactivated: no evidence that its consumer moved to {new} ({missing})",
                    user.name
                );
                Ok(Some(finding(CheckId::RotationStalled, &old, message, evidence)))
            }
            Step::Blocked(reason) => Ok(Some(blocked(user, &reason, &keys, &secret, scope))),
            Step::Rotate { old } => {
                let mut f = finding(
                    CheckId::AccessKeyRotated,
                    &old,
                    format!("{}'s key {old} is due for rotation: a new key goes to secret {secret}", user.name),
                    json!({ "step": "rotate", "old_key_id": old, "secret": secret }),
                );
                if !act {
                    done(&mut f, "rotate", RemediationStatus::DryRun, Some(format!("would rotate ({why_not})")));
                    return Ok(Some(f));
                }
                Box::pin(rotate_now(rotation, user, &old, &secret, f)).await
            }
            Step::Deactivate { old, new } => {
                let f = finding(
                    CheckId::AccessKeyRotated,
                    &old,
                    format!("{}'s old key {old} is deactivated: {new} in secret {secret} replaces it", user.name),
                    json!({ "step": "deactivate", "old_key_id": old, "new_key_id": new, "secret": secret }),
                );
                let work = async {
                    rotation.record_deactivation(&secret, &old, opts.now).await?;
                    self.directory.set_key_status(&user.name, &old, false).await
                };
                let undo = UndoRecord::Deactivate {
                    user: user.name.clone(),
                    key_id: old.clone(),
                    previous_status: "Active".into(),
                };
                carry_out(f, "deactivate", act.then_some(work).ok_or(why_not), Some(&undo)).await
            }
            Step::Delete { old } => {
                let f = finding(
                    CheckId::AccessKeyRotated,
                    &old,
                    format!("{}'s old key {old}, inactive since the rotation, is deleted", user.name),
                    json!({ "step": "delete", "old_key_id": old, "secret": secret }),
                );
                let work = async {
                    rotation.delete_key(&user.name, &old).await?;
                    rotation.forget_deactivation(&secret, &old).await
                };
                // Journaled like every step, though a deletion cannot be undone.
                let deleted = UndoRecord::Delete { user: user.name.clone(), key_id: old.clone() };
                carry_out(f, "delete", act.then_some(work).ok_or(why_not), Some(&deleted)).await
            }
        }
    }
}

/// Takes a step that changes a key, or reports it as `dry-run` when `work` is `Err(why not)`;
/// records what was done (and how to undo it) in the finding.
async fn carry_out(
    mut f: Finding,
    action: &str,
    work: Result<impl std::future::Future<Output = Result<(), CallError>>, &str>,
    undo: Option<&UndoRecord>,
) -> Result<Option<Finding>, (Option<Finding>, CallError)> {
    let set = |f: &mut Finding, status, detail| {
        f.remediation = Some(Remediation { action: action.into(), status, detail });
    };
    let work = match work {
        Ok(work) => work,
        Err(why_not) => {
            set(&mut f, RemediationStatus::DryRun, Some(format!("would {action} ({why_not})")));
            return Ok(Some(f));
        }
    };
    if let Err(e) = work.await {
        set(&mut f, RemediationStatus::Failed, Some(e.to_string()));
        return Err((Some(f), e));
    }
    if let Some(undo) = undo {
        record(&mut f.evidence, undo);
    }
    set(&mut f, RemediationStatus::Applied, None);
    Ok(Some(f))
}

/// Creates the new key and stores it. If storing reports a failure, the secret is read again
/// (which key its current version holds) before anything is undone: a write that took effect
/// despite the error (a timeout after the write) is kept; only a key certainly not stored is
/// deleted again; when the re-read fails too, the key is left as it is and the failure says so.
async fn rotate_now(
    rotation: &dyn KeyRotation,
    user: &UserSnapshot,
    old: &str,
    secret: &str,
    mut f: Finding,
) -> Result<Option<Finding>, (Option<Finding>, CallError)> {
    let new = rotation.create_key(&user.name).await.map_err(|e| (None, e))?;
    if let Err(e) = rotation.store(secret, &user.name, &user.arn, &new).await {
        let failed = |f: &mut Finding, detail: String| {
            f.remediation =
                Some(Remediation { action: "rotate".into(), status: RemediationStatus::Failed, detail: Some(detail) });
        };
        match rotation.stage_key(secret, "AWSCURRENT").await {
            Ok(Some(held)) if held == new.id => {
                tracing::warn!(user = %user.name, new_key = %new.id, error = %e, "secret written despite the error");
            }
            Ok(_) => {
                let detail = match rotation.delete_key(&user.name, &new.id).await {
                    Ok(()) => format!("the secret does not hold the new key {}, so it was deleted again", new.id),
                    Err(c) => {
                        format!("the secret does not hold the new key {} and it could not be deleted: {c}", new.id)
                    }
                };
                failed(&mut f, detail);
                return Err((Some(f), e));
            }
            Err(c) => {
                failed(
                    &mut f,
                    format!(
                        "unclear whether the secret holds the new key {}: it could not be read again ({c}); the key is \
                         left as it is and the next run judges it",
                        new.id
                    ),
                );
                return Err((Some(f), e));
            }
        }
    }
    tracing::warn!(user = %user.name, old_key = %old, new_key = %new.id, "rotated access key");
    f.message = format!("{}'s key {old} was rotated: {} is in secret {secret}", user.name, new.id);
    f.evidence["new_key_id"] = json!(new.id);
    record(
        &mut f.evidence,
        &UndoRecord::Rotate {
            user: user.name.clone(),
            old_key_id: old.to_owned(),
            new_key_id: new.id.clone(),
            secret: secret.to_owned(),
        },
    );
    f.remediation = Some(Remediation { action: "rotate".into(), status: RemediationStatus::Applied, detail: None });
    Ok(Some(f))
}

fn blocked(
    user: &UserSnapshot,
    reason: &str,
    keys: &[crate::remediate::rotation::Key],
    secret: &str,
    scope: &Scope,
) -> Finding {
    let mut f = scope.finding(
        CheckId::RotationStalled,
        &user.arn,
        format!("{}'s key rotation is blocked: {reason}", user.name),
    );
    f.user = Some(user.name.clone());
    f.evidence = json!({ "secret": secret, "keys": keys.iter().map(|k| json!({
        "id": k.id, "active": k.active, "created": k.created })).collect::<Vec<_>>() });
    f
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::ports::{BoxFuture, KeySecret, NewKey};
    use crate::remediate::rotation::{LastUse, Vault};

    /// What a failed `PutSecretValue` left behind, as a re-read finds it.
    #[derive(Default, Clone, Copy)]
    enum AfterFailure {
        /// The store succeeded.
        #[default]
        NoFailure,
        /// The write failed and the secret does not hold the key.
        NotWritten,
        /// A timeout after the write: the secret holds the key.
        WrittenAnyway,
        /// The write failed and the secret cannot be read either.
        Unreadable,
    }

    /// IAM and Secrets Manager in memory; storing the secret can be made to fail.
    #[derive(Default)]
    struct Fake {
        keys: Mutex<Vec<String>>,
        stored: Mutex<Vec<String>>,
        failure: AfterFailure,
    }

    fn err(action: &'static str) -> CallError {
        CallError { action, target: "svc-app".into(), message: "InternalFailure: injected".into() }
    }

    impl KeyRotation for Fake {
        fn last_use<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<LastUse, CallError>> {
            Box::pin(async { Ok(LastUse::default()) })
        }
        fn vault<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vault, CallError>> {
            Box::pin(async { Ok(Vault::default()) })
        }
        fn not_ours<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>> {
            Box::pin(async { Ok(None) })
        }
        fn stage_key<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>> {
            Box::pin(async move {
                match self.failure {
                    AfterFailure::Unreadable => Err(err("secretsmanager:DescribeSecret")),
                    AfterFailure::WrittenAnyway => Ok(Some("AKIANEW".into())),
                    _ => Ok(self.stored.lock().unwrap().last().cloned()),
                }
            })
        }
        fn create_key<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<NewKey, CallError>> {
            Box::pin(async {
                self.keys.lock().unwrap().push("AKIANEW".into());
                Ok(NewKey { id: "AKIANEW".into(), secret: KeySecret("s3cr3t-never-printed".into()) })
            })
        }
        fn store<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: &'a str,
            key: &'a NewKey,
        ) -> BoxFuture<'a, Result<(), CallError>> {
            Box::pin(async move {
                if !matches!(self.failure, AfterFailure::NoFailure) {
                    return Err(err("secretsmanager:PutSecretValue"));
                }
                self.stored.lock().unwrap().push(key.id.clone());
                Ok(())
            })
        }
        fn record_deactivation<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: chrono::DateTime<chrono::Utc>,
        ) -> BoxFuture<'a, Result<(), CallError>> {
            Box::pin(async { Ok(()) })
        }
        fn forget_deactivation<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
            Box::pin(async { Ok(()) })
        }
        fn delete_key<'a>(&'a self, _: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
            Box::pin(async move {
                self.keys.lock().unwrap().retain(|k| k != key_id);
                Ok(())
            })
        }
        fn restore_previous<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<bool, CallError>> {
            Box::pin(async { Ok(false) })
        }
    }

    fn finding() -> Finding {
        let scope = crate::checks::fixtures::scope();
        scope.finding(CheckId::AccessKeyRotated, "arn:aws:iam::123456789012:user/svc-app", "due".into())
    }

    async fn rotate(fake: &Fake) -> Result<Option<Finding>, (Option<Finding>, CallError)> {
        let user = crate::checks::fixtures::user("svc-app");
        rotate_now(fake, &user, "AKIAOLD", "iam-sentinel/keys/1/svc-app", finding()).await
    }

    #[tokio::test]
    async fn a_secret_certainly_not_written_deletes_the_new_key_and_fails() {
        let fake = Fake { failure: AfterFailure::NotWritten, ..Fake::default() };
        let (f, e) = rotate(&fake).await.unwrap_err();
        assert_eq!(e.action, "secretsmanager:PutSecretValue");
        assert!(fake.keys.lock().unwrap().is_empty(), "the new key was deleted again");
        let r = f.unwrap().remediation.unwrap();
        assert_eq!(r.status, RemediationStatus::Failed);
        assert!(r.detail.unwrap().contains("does not hold the new key AKIANEW, so it was deleted again"));
    }

    #[tokio::test]
    async fn a_write_that_took_effect_despite_the_error_is_kept() {
        let fake = Fake { failure: AfterFailure::WrittenAnyway, ..Fake::default() };
        let f = rotate(&fake).await.unwrap().unwrap();
        assert_eq!(*fake.keys.lock().unwrap(), ["AKIANEW"], "the key the secret names is never deleted");
        assert_eq!(f.remediation.unwrap().status, RemediationStatus::Applied);
    }

    #[tokio::test]
    async fn an_unclear_failure_with_an_unreadable_secret_undoes_nothing() {
        let fake = Fake { failure: AfterFailure::Unreadable, ..Fake::default() };
        let (f, _) = rotate(&fake).await.unwrap_err();
        assert_eq!(*fake.keys.lock().unwrap(), ["AKIANEW"], "not deleted on uncertainty");
        assert!(f.unwrap().remediation.unwrap().detail.unwrap().contains("unclear whether the secret holds"));
    }

    /// The SDK's own fault: `PutSecretValue` fails after the write took effect (the secret's
    /// `AWSCURRENT` names the new key when read again). The key is kept: no `DeleteAccessKey`.
    #[tokio::test]
    async fn a_put_secret_value_failure_after_the_write_deletes_nothing() {
        use aws_sdk_secretsmanager::operation::describe_secret::{DescribeSecretError, DescribeSecretOutput};
        use aws_sdk_secretsmanager::types::error::{InternalServiceError, ResourceNotFoundException};
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let created = mock!(aws_sdk_iam::Client::create_access_key).then_output(|| {
            let key = aws_sdk_iam::types::AccessKey::builder()
                .user_name("svc-app")
                .access_key_id("AKIANEWKEY0000000001")
                .status(aws_sdk_iam::types::StatusType::Active)
                .secret_access_key("s3cr3t-never-printed")
                .build()
                .unwrap();
            aws_sdk_iam::operation::create_access_key::CreateAccessKeyOutput::builder().access_key(key).build()
        });
        let deleted = mock!(aws_sdk_iam::Client::delete_access_key)
            .then_output(|| aws_sdk_iam::operation::delete_access_key::DeleteAccessKeyOutput::builder().build());
        let described = mock!(aws_sdk_secretsmanager::Client::describe_secret)
            .sequence()
            .error(|| DescribeSecretError::ResourceNotFoundException(ResourceNotFoundException::builder().build()))
            .output(|| {
                DescribeSecretOutput::builder()
                    .version_ids_to_stages("iam-sentinel-key-AKIANEWKEY0000000001", vec!["AWSCURRENT".to_owned()])
                    .build()
            })
            .build();
        let create = mock!(aws_sdk_secretsmanager::Client::create_secret)
            .then_output(|| aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput::builder().build());
        let policy = mock!(aws_sdk_secretsmanager::Client::put_resource_policy).then_output(|| {
            aws_sdk_secretsmanager::operation::put_resource_policy::PutResourcePolicyOutput::builder().build()
        });
        let put = mock!(aws_sdk_secretsmanager::Client::put_secret_value).then_error(|| {
            aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError::InternalServiceError(
                InternalServiceError::builder().message("timed out after the write").build(),
            )
        });
        let no_retry = |c: aws_sdk_secretsmanager::config::Builder| {
            c.retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled())
        };
        let secrets =
            mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&described, &create, &policy, &put], no_retry);
        let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&created, &deleted]);
        let rotation = crate::aws::rotation::AwsKeyRotation::new(iam, secrets, None);
        let user = crate::checks::fixtures::user("svc-app");
        let f =
            rotate_now(&rotation, &user, "AKIAOLD", "iam-sentinel/keys/1/svc-app", finding()).await.unwrap().unwrap();
        assert_eq!(put.num_calls(), 1, "the write was attempted once and failed");
        assert_eq!(described.num_calls(), 2, "the secret was read again after the failure");
        assert_eq!(deleted.num_calls(), 0, "the key the secret holds is never deleted");
        assert_eq!(f.remediation.unwrap().status, RemediationStatus::Applied);
        assert_eq!(f.evidence["new_key_id"], "AKIANEWKEY0000000001");
    }

    #[tokio::test]
    async fn a_rotation_names_both_keys_and_never_the_secret() {
        let fake = Fake::default();
        let f = rotate(&fake).await.unwrap().unwrap();
        assert_eq!(*fake.stored.lock().unwrap(), ["AKIANEW"]);
        assert_eq!(f.evidence["new_key_id"], "AKIANEW");
        assert!(f.message.contains("AKIAOLD") && f.message.contains("AKIANEW"));
        let text = serde_json::to_string(&f).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(format!("{:?}", KeySecret("s3cr3t".into())), "KeySecret(redacted)");
    }
}
