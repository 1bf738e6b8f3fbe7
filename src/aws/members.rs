//! Member accounts of an organization: the member role is assumed once per account and its
//! credentials are reused until shortly before they expire, so a warm function handling a
//! burst of events from one account assumes the role once.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::aws::call_error;
use crate::finding::partition_of;
use crate::ports::CallError;

/// The session name every assumed session carries: the member's CloudTrail shows
/// `assumed-role/<member role>/iam-sentinel`, and the loop guard recognises it.
pub const SESSION_NAME: &str = "iam-sentinel";

/// How long before their expiry cached credentials are replaced.
const REFRESH_BEFORE: Duration = Duration::from_mins(5);

/// Assumes the member role in any account of the organization, with a per-account cache.
#[derive(Debug)]
pub struct Members {
    sts: aws_sdk_sts::Client,
    base: SdkConfig,
    role_name: String,
    partition: String,
    cache: Mutex<HashMap<String, (Credentials, DateTime<Utc>)>>,
}

impl Members {
    /// `base` is the function's own SDK configuration; `role_name` the member role's name
    /// (`MEMBER_ROLE_NAME`); `sts` a client made from `base` (counted like every client).
    #[must_use]
    pub fn new(base: SdkConfig, sts: aws_sdk_sts::Client, role_name: String) -> Self {
        let partition = partition_of(base.region().map_or("us-east-1", |r| r.as_ref())).to_owned();
        Members { sts, base, role_name, partition, cache: Mutex::new(HashMap::new()) }
    }

    /// The member role's ARN in `account`.
    #[must_use]
    pub fn role_arn(&self, account: &str) -> String {
        format!("arn:{}:iam::{account}:role/{}", self.partition, self.role_name)
    }

    /// An SDK configuration acting in `account` through the member role: one `sts:AssumeRole`
    /// the first time, none while the cached credentials have more than 5 minutes left.
    pub async fn sdk_for(&self, account: &str, now: DateTime<Utc>) -> Result<SdkConfig, CallError> {
        let credentials = self.credentials(account, now).await?;
        Ok(self.base.to_builder().credentials_provider(SharedCredentialsProvider::new(credentials)).build())
    }

    async fn credentials(&self, account: &str, now: DateTime<Utc>) -> Result<Credentials, CallError> {
        let mut cache = self.cache.lock().await;
        if let Some((credentials, expires)) = cache.get(account)
            && *expires - REFRESH_BEFORE > now
        {
            return Ok(credentials.clone());
        }
        let role_arn = self.role_arn(account);
        let out = self
            .sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name(SESSION_NAME)
            .send()
            .await
            .map_err(|e| call_error("sts:AssumeRole", &role_arn, &e))?;
        let missing = || CallError {
            action: "sts:AssumeRole",
            target: role_arn.clone(),
            message: "the answer holds no credentials".into(),
        };
        let c = out.credentials().ok_or_else(missing)?;
        let expires = DateTime::from_timestamp(c.expiration().secs(), 0).unwrap_or(now);
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            std::time::SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(u64::try_from(expires.timestamp()).unwrap_or(0))),
            "iam-sentinel-member",
        );
        cache.insert(account.to_owned(), (credentials.clone(), expires));
        Ok(credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_roles_are_named_in_the_regions_partition() {
        let sdk =
            |region: &'static str| aws_config::SdkConfig::builder().region(aws_config::Region::new(region)).build();
        for (region, arn) in [
            ("eu-west-1", "arn:aws:iam::111122223333:role/m"),
            ("cn-north-1", "arn:aws-cn:iam::111122223333:role/m"),
            ("us-gov-west-1", "arn:aws-us-gov:iam::111122223333:role/m"),
        ] {
            let sdk = sdk(region);
            let members = Members::new(sdk.clone(), aws_sdk_sts::Client::new(&sdk), "m".into());
            assert_eq!(members.role_arn("111122223333"), arn);
        }
    }

    // moto's STS grants every AssumeRole: a refusal, and an answer without credentials, come
    // from the SDK's shapes here.
    #[tokio::test]
    async fn a_refused_assume_role_names_the_member_role_and_an_empty_answer_is_an_error() {
        use aws_sdk_sts::operation::assume_role::{AssumeRoleError, AssumeRoleOutput};
        use aws_smithy_mocks::{RuleMode, mock, mock_client};
        let refused = mock!(aws_sdk_sts::Client::assume_role)
            .sequence()
            .error(|| {
                AssumeRoleError::generic(
                    aws_sdk_sts::error::ErrorMetadata::builder().code("AccessDenied").message("not trusted").build(),
                )
            })
            .output(|| AssumeRoleOutput::builder().build())
            .build();
        let sts = mock_client!(aws_sdk_sts, RuleMode::Sequential, [&refused]);
        let base = aws_config::SdkConfig::builder().region(aws_config::Region::new("us-east-1")).build();
        let members = Members::new(base, sts, "iam-sentinel-member".into());
        let now = Utc::now();
        let err = members.sdk_for("222222222222", now).await.unwrap_err();
        assert_eq!(
            (err.action, err.target.as_str()),
            ("sts:AssumeRole", "arn:aws:iam::222222222222:role/iam-sentinel-member")
        );
        assert!(err.message.contains("AccessDenied: not trusted"), "{err}");
        let err = members.sdk_for("222222222222", now).await.unwrap_err();
        assert!(err.message.contains("no credentials"), "{err}");
        assert_eq!(refused.num_calls(), 2, "a failure is not cached");
    }
}
