//! Centralized root access: whether the organization manages its members' root users
//! (`iam:ListOrganizationsFeatures`, in the management account or IAM's delegated administrator).

use aws_sdk_iam::Client;
use aws_sdk_iam::operation::list_organizations_features::ListOrganizationsFeaturesError;
use aws_sdk_iam::types::FeatureType;

use crate::aws::call_error;
use crate::checks::root_access::RootFeatures;
use crate::ports::CallError;

/// Reads the organization's root access features with the function's own credentials.
#[derive(Debug, Clone)]
pub struct RootAccessReader {
    client: Client,
}

impl RootAccessReader {
    /// Wraps an IAM client of the management (or IAM delegated-administrator) account.
    #[must_use]
    pub fn new(client: Client) -> Self {
        RootAccessReader { client }
    }

    /// The features enabled (one call). Trusted access for IAM not enabled is an answer, not a
    /// failure: neither feature can be on then. Every other error is a failure naming the call.
    pub async fn features(&self) -> Result<RootFeatures, CallError> {
        match self.client.list_organizations_features().send().await {
            Ok(out) => {
                let enabled = out.enabled_features();
                Ok(RootFeatures {
                    organization_id: out.organization_id().map(str::to_owned),
                    credentials_management: enabled.contains(&FeatureType::RootCredentialsManagement),
                    sessions: enabled.contains(&FeatureType::RootSessions),
                    trusted_access: true,
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(ListOrganizationsFeaturesError::is_service_access_not_enabled_exception) =>
            {
                Ok(RootFeatures {
                    organization_id: None,
                    credentials_management: false,
                    sessions: false,
                    trusted_access: false,
                })
            }
            Err(e) => Err(call_error("iam:ListOrganizationsFeatures", "the organization", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::list_organizations_features::ListOrganizationsFeaturesOutput;
    use aws_sdk_iam::types::error::ServiceAccessNotEnabledException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    #[tokio::test]
    async fn the_answer_says_which_feature_is_on() {
        let rule = mock!(Client::list_organizations_features)
            .sequence()
            .output(|| {
                ListOrganizationsFeaturesOutput::builder()
                    .organization_id("o-exampleorg1")
                    .enabled_features(FeatureType::RootCredentialsManagement)
                    .enabled_features(FeatureType::RootSessions)
                    .build()
            })
            .output(|| {
                ListOrganizationsFeaturesOutput::builder()
                    .organization_id("o-exampleorg1")
                    .enabled_features(FeatureType::RootSessions)
                    .build()
            })
            .output(|| ListOrganizationsFeaturesOutput::builder().organization_id("o-exampleorg1").build())
            .build();
        let reader = RootAccessReader::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&rule]));
        let both = reader.features().await.unwrap();
        assert!(both.credentials_management && both.sessions && both.trusted_access);
        assert_eq!(both.organization_id.as_deref(), Some("o-exampleorg1"));
        let sessions = reader.features().await.unwrap();
        assert!(!sessions.credentials_management && sessions.sessions);
        let none = reader.features().await.unwrap();
        assert!(!none.credentials_management && !none.sessions);
        assert_eq!(rule.num_calls(), 3, "one call per read");
    }

    #[tokio::test]
    async fn trusted_access_off_is_an_answer_and_other_errors_are_named_failures() {
        let off = mock!(Client::list_organizations_features).then_error(|| {
            ListOrganizationsFeaturesError::ServiceAccessNotEnabledException(
                ServiceAccessNotEnabledException::builder().message("trusted access is not enabled").build(),
            )
        });
        let reader = RootAccessReader::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&off]));
        let f = reader.features().await.unwrap();
        assert!(!f.trusted_access && !f.credentials_management && !f.sessions);

        let not_admin = "<ErrorResponse><Error><Type>Sender</Type><Code>AccountNotManagementOrDelegatedAdministratorException</Code><Message>not the management account</Message></Error></ErrorResponse>";
        let not_admin =
            mock!(Client::list_organizations_features).sequence().http_status(400, Some(not_admin.into())).build();
        let reader = RootAccessReader::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&not_admin]));
        let e = reader.features().await.unwrap_err();
        assert_eq!(e.action, "iam:ListOrganizationsFeatures");
        assert!(e.to_string().contains("AccountNotManagementOrDelegatedAdministratorException"), "{e}");

        let denied = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>";
        let failing =
            mock!(Client::list_organizations_features).sequence().http_status(403, Some(denied.into())).build();
        let reader = RootAccessReader::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&failing]));
        assert_eq!(
            reader.features().await.unwrap_err().to_string(),
            "iam:ListOrganizationsFeatures on the organization failed: AccessDenied: not allowed"
        );
    }
}
