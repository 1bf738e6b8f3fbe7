//! The approvals registry, kept as a JSON secret in Secrets Manager: the current registry, a
//! version by stage (to compare a write), and when it last changed.

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
    /// Organization mode: the account whose approvals apply (every entry must name one).
    account: Option<String>,
}

impl SecretApprovals {
    /// The registry in secret `secret_id` (name or ARN).
    #[must_use]
    pub fn new(client: Client, secret_id: String) -> Self {
        SecretApprovals { client, secret_id, account: None }
    }

    /// The same registry read as an organization's: every entry must name its account (the
    /// registry is rejected otherwise), and only the approvals of `account` apply.
    #[must_use]
    pub fn for_account(&self, account: &str) -> Self {
        SecretApprovals { account: Some(account.to_owned()), ..self.clone() }
    }

    fn parse(&self, text: &str) -> Result<Approvals, crate::approvals::RegistryError> {
        match &self.account {
            None => Approvals::parse(text),
            Some(account) => Approvals::parse_for_organization(text).map(|a| a.in_account(account)),
        }
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
        self.parse(text).map_err(|e| invalid(e.to_string()))
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
            Some(text) => self.parse(text).map_or_else(|e| Version::Invalid(e.to_string()), Version::Valid),
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn store(rules: &[&aws_smithy_mocks::Rule]) -> SecretApprovals {
        let client = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, rules);
        SecretApprovals::new(client, "iam-sentinel/approvals".into())
    }

    #[tokio::test]
    async fn a_version_is_read_by_stage_and_a_missing_stage_is_not_an_error() {
        let previous = mock!(Client::get_secret_value)
            .match_requests(|r| r.version_stage() == Some("AWSPREVIOUS"))
            .then_error(|| {
                GetSecretValueError::ResourceNotFoundException(
                    ResourceNotFoundException::builder().message("no AWSPREVIOUS").build(),
                )
            });
        let current = mock!(Client::get_secret_value)
            .match_requests(|r| r.version_stage() == Some("AWSCURRENT"))
            .then_output(|| GetSecretValueOutput::builder().secret_string(r#"{"exceptions": []}"#).build());
        let s = store(&[&previous, &current]);
        assert_eq!(s.version("AWSPREVIOUS").await.unwrap(), Version::Missing);
        assert_eq!(s.version("AWSCURRENT").await.unwrap(), Version::Valid(Approvals::default()));
        assert_eq!((previous.num_calls(), current.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_invalid_version_is_named_without_its_content_and_a_denied_read_is_an_error() {
        let garbage = mock!(Client::get_secret_value)
            .then_output(|| GetSecretValueOutput::builder().secret_string("TOP-SECRET not json").build());
        let Version::Invalid(problem) = store(&[&garbage]).version("AWSCURRENT").await.unwrap() else { panic!() };
        assert!(!problem.contains("TOP-SECRET"), "{problem}");
        let denied = mock!(Client::get_secret_value)
            .sequence()
            .http_status(400, Some(r#"{"__type":"AccessDeniedException","Message":"not allowed"}"#.into()));
        let err = store(&[&denied.build()]).version("AWSPREVIOUS").await.unwrap_err();
        assert_eq!(err.action, "secretsmanager:GetSecretValue");
        assert_eq!(err.target, "iam-sentinel/approvals (AWSPREVIOUS)");
        assert!(err.message.contains("AccessDeniedException"), "{err}");
    }
}
