//! AWS Organizations: the accounts an organization scan covers, and their names.

use aws_sdk_organizations::Client;
use aws_sdk_organizations::types::AccountStatus;

use crate::aws::call_error;
pub use crate::domain::account::OrgAccount;
use crate::ports::CallError;

/// Reads the organization with the credentials of the management account or a delegated administrator.
#[derive(Debug, Clone)]
pub struct OrganizationReader {
    client: Client,
}

impl OrganizationReader {
    /// Wraps a client.
    #[must_use]
    pub fn new(client: Client) -> Self {
        OrganizationReader { client }
    }

    /// The client, for the organization's other reads.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Every `ACTIVE` account (suspended and closing accounts have no users to guard), paged.
    pub async fn list_accounts(&self) -> Result<Vec<OrgAccount>, CallError> {
        let mut pages = self.client.list_accounts().into_paginator().send();
        let mut accounts = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("organizations:ListAccounts", "the organization", &e))?;
            for account in page.accounts() {
                let active = account.status().is_none_or(|s| *s == AccountStatus::Active);
                if let (true, Some(id)) = (active, account.id()) {
                    accounts
                        .push(OrgAccount { id: id.to_owned(), name: account.name().unwrap_or_default().to_owned() });
                }
            }
        }
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(accounts)
    }

    /// The management account's id (`DescribeOrganization`): SCPs never apply to it.
    pub async fn management_account(&self) -> Result<String, CallError> {
        let out = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| call_error("organizations:DescribeOrganization", "the organization", &e))?;
        out.organization().and_then(|o| o.master_account_id()).map(str::to_owned).ok_or_else(|| CallError {
            action: "organizations:DescribeOrganization",
            target: "the organization".into(),
            message: "the answer names no management account".into(),
        })
    }

    /// One account's name (`DescribeAccount`), for findings of an event from that account.
    pub async fn account_name(&self, account: &str) -> Result<String, CallError> {
        let out = self
            .client
            .describe_account()
            .account_id(account)
            .send()
            .await
            .map_err(|e| call_error("organizations:DescribeAccount", account, &e))?;
        Ok(out.account().and_then(|a| a.name()).unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_organizations::error::ErrorMetadata;
    use aws_sdk_organizations::operation::describe_account::DescribeAccountError;
    use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationOutput;
    use aws_sdk_organizations::operation::list_accounts::{ListAccountsError, ListAccountsOutput};
    use aws_sdk_organizations::types::{Account, Organization};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn denied() -> ErrorMetadata {
        ErrorMetadata::builder().code("AccessDeniedException").message("not allowed").build()
    }

    // moto serves every read of an organization it holds: its faults come from the SDK's shapes.
    #[tokio::test]
    async fn a_failed_page_fails_the_listing_by_name_and_nothing_partial_is_returned() {
        let pages = mock!(Client::list_accounts)
            .sequence()
            .output(|| {
                ListAccountsOutput::builder()
                    .accounts(Account::builder().id("111111111111").name("prod").build())
                    .next_token("page-2")
                    .build()
            })
            .error(|| ListAccountsError::generic(denied()))
            .build();
        let reader = OrganizationReader::new(mock_client!(aws_sdk_organizations, RuleMode::Sequential, [&pages]));
        let err = reader.list_accounts().await.unwrap_err();
        assert_eq!((err.action, err.target.as_str()), ("organizations:ListAccounts", "the organization"));
        assert!(err.message.contains("AccessDeniedException: not allowed"), "{err}");
        assert_eq!(pages.num_calls(), 2);
    }

    #[tokio::test]
    async fn an_account_s_name_that_cannot_be_read_names_the_account() {
        let refused = mock!(Client::describe_account).then_error(|| DescribeAccountError::generic(denied()));
        let reader = OrganizationReader::new(mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [&refused]));
        let err = reader.account_name("222222222222").await.unwrap_err();
        assert_eq!((err.action, err.target.as_str()), ("organizations:DescribeAccount", "222222222222"));
    }

    #[tokio::test]
    async fn an_organization_without_a_management_account_is_an_error_not_a_guess() {
        let empty = mock!(Client::describe_organization).then_output(|| {
            DescribeOrganizationOutput::builder().organization(Organization::builder().build()).build()
        });
        let reader = OrganizationReader::new(mock_client!(aws_sdk_organizations, RuleMode::MatchAny, [&empty]));
        let err = reader.management_account().await.unwrap_err();
        assert_eq!(err.action, "organizations:DescribeOrganization");
        assert!(err.message.contains("no management account"), "{err}");
    }
}
