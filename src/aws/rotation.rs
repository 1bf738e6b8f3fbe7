//! Key rotation's AWS side: the user's keys in IAM, the new key in the user's Secrets Manager
//! secret. The secret access key is read from `CreateAccessKey` and written to Secrets
//! Manager; it is never logged, kept or returned anywhere else, and never read back: which key a
//! version holds is in the version's id.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{call_error, to_utc};
use crate::ports::{BoxFuture, CallError, KeyRotation, KeySecret, NewKey};
use crate::remediate::rotation::{LastUse, Vault};

/// The tag on a rotation secret that records which old key the rotation deactivated, and when.
const DEACTIVATED_TAG_PREFIX: &str = "iam-sentinel:deactivated:";

/// The tag that marks a secret the rotation created.
pub const MARKER_TAG: (&str, &str) = ("iam-sentinel:managed-by", "key-rotation");

/// A version the rotation writes has this id followed by the key id it holds, so which key a
/// version holds is known without reading its value (version ids are 32 to 64 characters).
const VERSION_PREFIX: &str = "iam-sentinel-key-";

/// The version id of a rotation write for `key_id`; `None` when it would not fit the limits.
fn version_id(key_id: &str) -> Option<String> {
    let id = format!("{VERSION_PREFIX}{key_id}");
    (32..=64).contains(&id.len()).then_some(id)
}

/// The key id a rotation version id names.
fn key_of_version(version_id: &str) -> Option<String> {
    version_id.strip_prefix(VERSION_PREFIX).filter(|k| !k.is_empty()).map(str::to_owned)
}

/// The actions only the function may take on a rotation secret.
const WRITES: [&str; 4] = [
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
];

/// Who may read and write the rotation secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretAccess {
    /// Principal ARNs that may read every rotation secret besides the user itself
    /// (`ROTATION_SECRET_READERS`).
    pub readers: Vec<String>,
    /// The function's role (`SELF_ROLE_ARN`): the only principal that writes the secret. `None`
    /// (a run outside the deployment): no write restriction is expressed.
    pub writer: Option<String>,
}

/// The resource policy of `user_arn`'s rotation secret: reading it is denied to everyone but
/// the user and the configured readers, writing it (and changing this policy) to everyone but
/// the function; the user and the readers are allowed to read it.
#[must_use]
pub fn secret_policy(user_arn: &str, access: &SecretAccess) -> Value {
    let mut readers = vec![user_arn.to_owned()];
    readers.extend(access.readers.iter().filter(|r| *r != user_arn).cloned());
    let mut statements = vec![json!({
        "Sid": "OnlyTheUserAndNamedReadersRead",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": { "StringNotEquals": { "aws:PrincipalArn": readers } },
    })];
    if let Some(writer) = &access.writer {
        statements.push(json!({
            "Sid": "OnlyTheFunctionWrites",
            "Effect": "Deny",
            "Principal": "*",
            "Action": WRITES,
            "Resource": "*",
            "Condition": { "StringNotEquals": { "aws:PrincipalArn": [writer] } },
        }));
    }
    statements.push(json!({
        "Sid": "TheUserReads",
        "Effect": "Allow",
        "Principal": { "AWS": readers },
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    }));
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The AWS adapter for key rotation.
#[derive(Debug, Clone)]
pub struct AwsKeyRotation {
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    kms_key_id: Option<String>,
    access: SecretAccess,
}

impl AwsKeyRotation {
    /// Wraps clients built once at start-up; new secrets are encrypted with `kms_key_id` (the
    /// stack's key) when given, else with Secrets Manager's default key.
    #[must_use]
    pub fn new(iam: aws_sdk_iam::Client, secrets: aws_sdk_secretsmanager::Client, kms_key_id: Option<String>) -> Self {
        AwsKeyRotation { iam, secrets, kms_key_id, access: SecretAccess::default() }
    }

    /// Who may read and write the secrets this adapter creates (and accepts as its own).
    #[must_use]
    pub fn with_access(mut self, access: SecretAccess) -> Self {
        self.access = access;
        self
    }

    /// `DescribeSecret`; `None` when the secret does not exist.
    async fn describe(
        &self,
        secret: &str,
    ) -> Result<Option<aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput>, CallError> {
        use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
        match self.secrets.describe_secret().secret_id(secret).send().await {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.as_service_error().is_some_and(DescribeSecretError::is_resource_not_found_exception) => {
                Ok(None)
            }
            Err(e) => Err(call_error("secretsmanager:DescribeSecret", secret, &e)),
        }
    }

    /// Creates the secret without a value, with the KMS key and the marker, and gives it its
    /// resource policy before any value is written.
    async fn create(&self, secret: &str, user: &str, user_arn: &str) -> Result<(), CallError> {
        let marker = aws_sdk_secretsmanager::types::Tag::builder().key(MARKER_TAG.0).value(MARKER_TAG.1).build();
        let mut create = self
            .secrets
            .create_secret()
            .name(secret)
            .description(format!("Access key of IAM user {user}, rotated by iam-sentinel"))
            .tags(marker);
        if let Some(kms) = &self.kms_key_id {
            create = create.kms_key_id(kms);
        }
        create.send().await.map_err(|e| call_error("secretsmanager:CreateSecret", secret, &e))?;
        self.secrets
            .put_resource_policy()
            .secret_id(secret)
            .resource_policy(secret_policy(user_arn, &self.access).to_string())
            .block_public_policy(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("secretsmanager:PutResourcePolicy", secret, &e))
    }
}

/// The secret's JSON, as consumers read it (`AccessKeyId`, `SecretAccessKey`).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Stored<'a> {
    user_name: &'a str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
}

/// The version (id) that holds `stage`.
fn holding(
    described: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
    stage: &str,
) -> Option<String> {
    described
        .version_ids_to_stages()
        .and_then(|m| m.iter().find(|(_, stages)| stages.iter().any(|s| s == stage)).map(|(v, _)| v.clone()))
}

impl KeyRotation for AwsKeyRotation {
    fn last_use<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<LastUse, CallError>> {
        Box::pin(async move {
            let out = self
                .iam
                .get_access_key_last_used()
                .access_key_id(key_id)
                .send()
                .await
                .map_err(|e| call_error("iam:GetAccessKeyLastUsed", key_id, &e))?;
            let used = out.access_key_last_used();
            // IAM answers "N/A" for the service and region of a key never used.
            let known = |s: &str| (s != "N/A").then(|| s.to_owned());
            Ok(LastUse {
                at: used.and_then(|u| u.last_used_date()).and_then(to_utc),
                service: used.map(aws_sdk_iam::types::AccessKeyLastUsed::service_name).and_then(known),
                region: used.map(aws_sdk_iam::types::AccessKeyLastUsed::region).and_then(known),
            })
        })
    }

    fn vault<'a>(&'a self, secret: &'a str) -> BoxFuture<'a, Result<Vault, CallError>> {
        Box::pin(async move {
            let Some(described) = self.describe(secret).await? else { return Ok(Vault::default()) };
            let deactivated = described
                .tags()
                .iter()
                .filter_map(|t| {
                    let id = t.key()?.strip_prefix(DEACTIVATED_TAG_PREFIX)?;
                    let at = t.value()?.parse::<DateTime<Utc>>().ok()?;
                    Some((id.to_owned(), at))
                })
                .collect();
            let current_key = holding(&described, "AWSCURRENT").as_deref().and_then(key_of_version);
            Ok(Vault { current_key, deactivated, not_ours: None })
        })
    }

    fn not_ours<'a>(&'a self, secret: &'a str, user_arn: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>> {
        Box::pin(async move {
            let Some(described) = self.describe(secret).await? else { return Ok(None) };
            let marked =
                described.tags().iter().any(|t| t.key() == Some(MARKER_TAG.0) && t.value() == Some(MARKER_TAG.1));
            if !marked {
                return Ok(Some(format!("it has no {}={} tag", MARKER_TAG.0, MARKER_TAG.1)));
            }
            let kms = described.kms_key_id().filter(|k| *k != "alias/aws/secretsmanager");
            if kms != self.kms_key_id.as_deref() {
                return Ok(Some(format!(
                    "it is encrypted with {} instead of {}",
                    kms.unwrap_or("Secrets Manager's default key"),
                    self.kms_key_id.as_deref().unwrap_or("Secrets Manager's default key")
                )));
            }
            let policy = self
                .secrets
                .get_resource_policy()
                .secret_id(secret)
                .send()
                .await
                .map_err(|e| call_error("secretsmanager:GetResourcePolicy", secret, &e))?;
            let found = policy.resource_policy().and_then(|p| serde_json::from_str::<Value>(p).ok());
            match found {
                None => Ok(Some("it has no resource policy".into())),
                Some(p) if p != secret_policy(user_arn, &self.access) => Ok(Some(
                    "its resource policy is not the rotation's (only the user and the named readers read, only the \
                     function writes)"
                        .into(),
                )),
                Some(_) => Ok(None),
            }
        })
    }

    fn stage_key<'a>(&'a self, secret: &'a str, stage: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>> {
        Box::pin(async move {
            let Some(described) = self.describe(secret).await? else { return Ok(None) };
            Ok(holding(&described, stage).as_deref().and_then(key_of_version))
        })
    }

    fn create_key<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<NewKey, CallError>> {
        Box::pin(async move {
            let out = self
                .iam
                .create_access_key()
                .user_name(user)
                .send()
                .await
                .map_err(|e| call_error("iam:CreateAccessKey", user, &e))?;
            let key = out.access_key.ok_or_else(|| CallError {
                action: "iam:CreateAccessKey",
                target: user.to_owned(),
                message: "no key in the response".into(),
            })?;
            Ok(NewKey { id: key.access_key_id, secret: KeySecret(key.secret_access_key) })
        })
    }

    fn store<'a>(
        &'a self,
        secret: &'a str,
        user: &'a str,
        user_arn: &'a str,
        key: &'a NewKey,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let failed = |message: String| CallError {
                action: "secretsmanager:PutSecretValue",
                target: secret.to_owned(),
                message,
            };
            let version = version_id(&key.id)
                .ok_or_else(|| failed(format!("key id {} does not fit a version id (32 to 64 characters)", key.id)))?;
            let value = serde_json::to_string(&Stored {
                user_name: user,
                access_key_id: &key.id,
                secret_access_key: &key.secret.0,
            })
            .map_err(|e| failed(format!("cannot encode the secret: {e}")))?;
            if self.describe(secret).await?.is_none() {
                self.create(secret, user, user_arn).await?;
            } else if let Some(why) = self.not_ours(secret, user_arn).await? {
                // Planted since the step was decided: never written into.
                return Err(failed(format!("not written: the secret was not created by the rotation ({why})")));
            }
            // PutSecretValue moves AWSCURRENT to the new version and AWSPREVIOUS to the old one.
            self.secrets
                .put_secret_value()
                .secret_id(secret)
                .client_request_token(version)
                .secret_string(value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| call_error("secretsmanager:PutSecretValue", secret, &e))
        })
    }

    fn record_deactivation<'a>(
        &'a self,
        secret: &'a str,
        key_id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let tag = aws_sdk_secretsmanager::types::Tag::builder()
                .key(format!("{DEACTIVATED_TAG_PREFIX}{key_id}"))
                .value(at.to_rfc3339())
                .build();
            self.secrets
                .tag_resource()
                .secret_id(secret)
                .tags(tag)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| call_error("secretsmanager:TagResource", secret, &e))
        })
    }

    fn forget_deactivation<'a>(&'a self, secret: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            self.secrets
                .untag_resource()
                .secret_id(secret)
                .tag_keys(format!("{DEACTIVATED_TAG_PREFIX}{key_id}"))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| call_error("secretsmanager:UntagResource", secret, &e))
        })
    }

    fn delete_key<'a>(&'a self, user: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            use aws_sdk_iam::operation::delete_access_key::DeleteAccessKeyError;
            match self.iam.delete_access_key().user_name(user).access_key_id(key_id).send().await {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(DeleteAccessKeyError::is_no_such_entity_exception) => Ok(()),
                Err(e) => Err(call_error("iam:DeleteAccessKey", &format!("{user}/{key_id}"), &e)),
            }
        })
    }

    fn restore_previous<'a>(&'a self, secret: &'a str) -> BoxFuture<'a, Result<bool, CallError>> {
        Box::pin(async move {
            let described = self
                .secrets
                .describe_secret()
                .secret_id(secret)
                .send()
                .await
                .map_err(|e| call_error("secretsmanager:DescribeSecret", secret, &e))?;
            if let (Some(current), Some(previous)) =
                (holding(&described, "AWSCURRENT"), holding(&described, "AWSPREVIOUS"))
            {
                self.secrets
                    .update_secret_version_stage()
                    .secret_id(secret)
                    .version_stage("AWSCURRENT")
                    .move_to_version_id(previous)
                    .remove_from_version_id(current)
                    .send()
                    .await
                    .map_err(|e| call_error("secretsmanager:UpdateSecretVersionStage", secret, &e))?;
                return Ok(true);
            }
            self.secrets
                .delete_secret()
                .secret_id(secret)
                .recovery_window_in_days(7)
                .send()
                .await
                .map_err(|e| call_error("secretsmanager:DeleteSecret", secret, &e))?;
            Ok(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::get_access_key_last_used::GetAccessKeyLastUsedOutput;
    use aws_sdk_iam::types::AccessKeyLastUsed;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn rotation(iam: aws_sdk_iam::Client) -> AwsKeyRotation {
        let secrets = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, []);
        AwsKeyRotation::new(iam, secrets, None)
    }

    // moto cannot record that a key was used: the service and region of a real last use, and
    // IAM's "N/A" for a key never used, come from the SDK's own shapes here.
    #[tokio::test]
    async fn a_key_s_last_use_names_its_service_and_region_and_never_used_is_none() {
        let used = mock!(aws_sdk_iam::Client::get_access_key_last_used)
            .sequence()
            .output(|| {
                let last = AccessKeyLastUsed::builder()
                    .last_used_date(aws_sdk_iam::primitives::DateTime::from_secs(1_790_000_000))
                    .service_name("s3")
                    .region("eu-west-1")
                    .build()
                    .unwrap();
                GetAccessKeyLastUsedOutput::builder().user_name("svc-app").access_key_last_used(last).build()
            })
            .output(|| {
                let never = AccessKeyLastUsed::builder().service_name("N/A").region("N/A").build().unwrap();
                GetAccessKeyLastUsedOutput::builder().user_name("svc-app").access_key_last_used(never).build()
            })
            .build();
        let r = rotation(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&used]));
        let u = r.last_use("AKIAOLD").await.unwrap();
        assert_eq!((u.service.as_deref(), u.region.as_deref()), (Some("s3"), Some("eu-west-1")));
        assert_eq!(u.at.unwrap().timestamp(), 1_790_000_000);
        assert_eq!(r.last_use("AKIAOLD").await.unwrap(), LastUse::default());
    }
}
