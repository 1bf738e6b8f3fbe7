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
