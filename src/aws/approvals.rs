//! The approvals registry, kept as a JSON secret in Secrets Manager.

use aws_sdk_secretsmanager::Client;

use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;

use super::{call_error, to_utc};
use crate::approvals::Approvals;
use crate::checks::registry::Version;
use crate::ports::{ApprovalsStore, CallError, RegistryUnavailable};

/// Reads the registry from one secret.
#[derive(Debug, Clone)]
pub struct SecretApprovals {
    client: Client,
    secret_id: String,
}

impl SecretApprovals {
    /// The registry in secret `secret_id` (name or ARN).
    #[must_use]
    pub fn new(client: Client, secret_id: String) -> Self {
        SecretApprovals { client, secret_id }
    }
}

impl ApprovalsStore for SecretApprovals {
    async fn load(&self) -> Result<Approvals, RegistryUnavailable> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| call_error("secretsmanager:GetSecretValue", &self.secret_id, &e))?;
        let invalid = |problem: String| RegistryUnavailable::Invalid { secret_id: self.secret_id.clone(), problem };
        let text = out
            .secret_string()
            .ok_or_else(|| invalid("the secret has no SecretString (binary secrets are not supported)".into()))?;
        // The parse error names entries and fields, never the secret's raw content.
        Approvals::parse(text).map_err(|e| invalid(e.to_string()))
    }

    fn location(&self) -> &str {
        &self.secret_id
    }

    async fn version(&self, stage: &'static str) -> Result<Version, CallError> {
        let out = match self.client.get_secret_value().secret_id(&self.secret_id).version_stage(stage).send().await {
            Ok(out) => out,
            // No such stage (no previous version yet) or no such secret (deleted): nothing to read.
            Err(e) if e.as_service_error().is_some_and(GetSecretValueError::is_resource_not_found_exception) => {
                return Ok(Version::Missing);
            }
            Err(e) => {
                return Err(call_error("secretsmanager:GetSecretValue", &format!("{} ({stage})", self.secret_id), &e));
            }
        };
        Ok(match out.secret_string() {
            None => Version::Invalid("the version has no SecretString (binary secrets are not supported)".into()),
            // The parse error names entries and fields, never the secret's raw content.
            Some(text) => Approvals::parse(text).map_or_else(|e| Version::Invalid(e.to_string()), Version::Valid),
        })
    }

    async fn last_changed(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, CallError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| call_error("secretsmanager:DescribeSecret", &self.secret_id, &e))?;
        Ok(out.last_changed_date().and_then(to_utc))
    }
}
