//! IAM: the single-user reader of the event path (≤ 6 calls) and the tag remover.

use aws_sdk_iam::Client;
use aws_sdk_iam::types::StatusType;
use futures_util::future::try_join_all;

use super::{call_error, to_utc};
use crate::ports::{CallError, UserDirectory};
use crate::snapshot::{AccessKey, KeyRef, Tag, UserSnapshot};

/// IAM actions the function calls; the deployment role grants exactly these.
pub const IAM_ACTIONS: &[&str] = &[
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    "iam:ListMFADevices",
    "iam:GetLoginProfile",
    "iam:UntagUser",
];

/// The IAM adapter.
#[derive(Debug, Clone)]
pub struct IamDirectory {
    client: Client,
}

impl IamDirectory {
    /// Wraps a client built once at start-up.
    #[must_use]
    pub fn new(client: Client) -> Self {
        IamDirectory { client }
    }

    async fn key(
        &self,
        user: &str,
        meta: &aws_sdk_iam::types::AccessKeyMetadata,
    ) -> Result<Option<AccessKey>, CallError> {
        let (Some(id), Some(created)) = (meta.access_key_id(), meta.create_date().and_then(to_utc)) else {
            return Ok(None);
        };
        let last_used = self
            .client
            .get_access_key_last_used()
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| call_error("iam:GetAccessKeyLastUsed", &format!("{user}/{id}"), &e))?
            .access_key_last_used()
            .and_then(|u| u.last_used_date())
            .and_then(to_utc);
        Ok(Some(AccessKey {
            key: KeyRef::Id(id.to_owned()),
            active: meta.status() == Some(&StatusType::Active),
            created,
            last_used,
        }))
    }
}

impl UserDirectory for IamDirectory {
    async fn read_user(&self, name: &str) -> Result<Option<UserSnapshot>, CallError> {
        // GetUser returns the tags too, so ListUserTags is not needed.
        let user = match self.client.get_user().user_name(name).send().await {
            Ok(out) => out.user,
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_iam::operation::get_user::GetUserError::is_no_such_entity_exception) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(call_error("iam:GetUser", name, &e)),
        };
        let Some(user) = user else { return Ok(None) };
        let (keys, mfa, login) = tokio::join!(
            self.client.list_access_keys().user_name(name).send(),
            self.client.list_mfa_devices().user_name(name).send(),
            self.client.get_login_profile().user_name(name).send(),
        );
        let keys = keys.map_err(|e| call_error("iam:ListAccessKeys", name, &e))?;
        let mfa = mfa.map_err(|e| call_error("iam:ListMFADevices", name, &e))?;
        let password_enabled = match login {
            Ok(_) => true,
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_iam::operation::get_login_profile::GetLoginProfileError::is_no_such_entity_exception,
                ) =>
            {
                false
            }
            Err(e) => return Err(call_error("iam:GetLoginProfile", name, &e)),
        };
        let keys = try_join_all(keys.access_key_metadata().iter().map(|m| self.key(name, m)))
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(Some(UserSnapshot {
            name: user.user_name().to_owned(),
            arn: user.arn().to_owned(),
            tags: user.tags().iter().map(|t| Tag::new(t.key(), t.value())).collect(),
            keys,
            password_enabled,
            mfa_active: !mfa.mfa_devices().is_empty(),
        }))
    }

    async fn remove_tag(&self, user: &str, key: &str) -> Result<(), CallError> {
        self.client
            .untag_user()
            .user_name(user)
            .tag_keys(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("iam:UntagUser", user, &e))
    }
}
