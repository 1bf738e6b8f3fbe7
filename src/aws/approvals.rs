//! The approvals registry, kept as a JSON secret in Secrets Manager.

use aws_sdk_secretsmanager::Client;

use super::call_error;
use crate::approvals::Approvals;
use crate::ports::{ApprovalsStore, RegistryUnavailable};

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
}
