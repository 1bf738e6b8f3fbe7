//! Key rotation's AWS side: the user's keys in IAM, the new key in the user's Secrets Manager
//! secret. The secret access key is read from `CreateAccessKey` and written to Secrets
//! Manager; it is never logged, kept or returned anywhere else.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{call_error, to_utc};
use crate::ports::{BoxFuture, CallError, KeyRotation, KeySecret, NewKey};
use crate::remediate::rotation::{LastUse, Vault};

/// The tag on a rotation secret that records which old key the rotation deactivated, and when.
const DEACTIVATED_TAG_PREFIX: &str = "iam-sentinel:deactivated:";

/// The AWS adapter for key rotation.
#[derive(Debug, Clone)]
pub struct AwsKeyRotation {
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    kms_key_id: Option<String>,
}

impl AwsKeyRotation {
    /// Wraps clients built once at start-up; new secrets are encrypted with `kms_key_id` (the
    /// stack's key) when given, else with Secrets Manager's default key.
    #[must_use]
    pub fn new(iam: aws_sdk_iam::Client, secrets: aws_sdk_secretsmanager::Client, kms_key_id: Option<String>) -> Self {
        AwsKeyRotation { iam, secrets, kms_key_id }
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

/// Only the key id is read back; the secret half is not even deserialised.
#[derive(Deserialize)]
struct StoredId {
    #[serde(rename = "AccessKeyId")]
    access_key_id: String,
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
            use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretError;
            let described = match self.secrets.describe_secret().secret_id(secret).send().await {
                Ok(d) => d,
                Err(e) if e.as_service_error().is_some_and(DescribeSecretError::is_resource_not_found_exception) => {
                    return Ok(Vault::default());
                }
                Err(e) => return Err(call_error("secretsmanager:DescribeSecret", secret, &e)),
            };
            let deactivated = described.tags().iter().find_map(|t| {
                let id = t.key()?.strip_prefix(DEACTIVATED_TAG_PREFIX)?;
                let at = t.value()?.parse::<DateTime<Utc>>().ok()?;
                Some((id.to_owned(), at))
            });
            let current = self
                .secrets
                .get_secret_value()
                .secret_id(secret)
                .version_stage("AWSCURRENT")
                .send()
                .await
                .map_err(|e| call_error("secretsmanager:GetSecretValue", secret, &e))?;
            let current_key = current
                .secret_string()
                .and_then(|text| serde_json::from_str::<StoredId>(text).ok())
                .map(|s| s.access_key_id);
            Ok(Vault { current_key, deactivated })
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

    fn store<'a>(&'a self, secret: &'a str, user: &'a str, key: &'a NewKey) -> BoxFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
            let value = serde_json::to_string(&Stored {
                user_name: user,
                access_key_id: &key.id,
                secret_access_key: &key.secret.0,
            })
            .map_err(|e| CallError {
                action: "secretsmanager:PutSecretValue",
                target: secret.to_owned(),
                message: format!("cannot encode the secret: {e}"),
            })?;
            // PutSecretValue moves AWSCURRENT to the new version and AWSPREVIOUS to the old one.
            match self.secrets.put_secret_value().secret_id(secret).secret_string(&value).send().await {
                Ok(_) => return Ok(()),
                Err(e) if !e.as_service_error().is_some_and(PutSecretValueError::is_resource_not_found_exception) => {
                    return Err(call_error("secretsmanager:PutSecretValue", secret, &e));
                }
                Err(_) => {}
            }
            let mut create = self
                .secrets
                .create_secret()
                .name(secret)
                .description(format!("Access key of IAM user {user}, rotated by iam-sentinel"))
                .secret_string(value);
            if let Some(kms) = &self.kms_key_id {
                create = create.kms_key_id(kms);
            }
            create.send().await.map(|_| ()).map_err(|e| call_error("secretsmanager:CreateSecret", secret, &e))
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
            let stages = described.version_ids_to_stages.unwrap_or_default();
            let holding =
                |stage: &str| stages.iter().find(|(_, s)| s.iter().any(|x| x == stage)).map(|(v, _)| v.clone());
            if let (Some(current), Some(previous)) = (holding("AWSCURRENT"), holding("AWSPREVIOUS")) {
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
