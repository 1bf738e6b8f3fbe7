//! IAM: the single-user reader of the event path (≤ 6 calls) and the tag remover.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_iam::Client;
use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
use aws_sdk_iam::types::{
    AttachedPolicy, EntityType, PolicyDetail, ReportStateType, StatusType, SummaryKeyType, UserDetail,
};
use futures_util::future::try_join_all;

use super::{call_error, to_utc};
use crate::checks::RootSummary;
use crate::checks::password::PasswordPolicy;
use crate::checks::policy::{PolicyDocument, PolicyError};
use crate::credential_report::{self, CredentialReport};
use crate::domain::timing::Phase;
use crate::ports::{AccessSnapshot, AccountReader, AccountSnapshot, CallError, KeyState, ScanError, UserDirectory};
use crate::snapshot::{
    AccessKey, GroupPolicies, InlinePolicy, KeyRef, ManagedPolicy, PolicyCatalogue, Tag, UserPolicies, UserSnapshot,
};

/// Polls of `GenerateCredentialReport` before giving up (backoff 100 ms doubling to 4 s: about 60 s).
const REPORT_MAX_POLLS: u32 = 20;
/// `GetAccountAuthorizationDetails` page size (the API maximum).
const GAAD_PAGE: i32 = 1000;

/// The IAM adapter.
#[derive(Debug, Clone)]
pub struct IamDirectory {
    client: Client,
    report_polls: u32,
    report_first_delay: Duration,
}

impl IamDirectory {
    /// Wraps a client built once at start-up.
    #[must_use]
    pub fn new(client: Client) -> Self {
        IamDirectory { client, report_polls: REPORT_MAX_POLLS, report_first_delay: Duration::from_millis(100) }
    }

    /// Changes how long to wait for the credential report: `polls` calls, backoff from `first_delay`.
    #[must_use]
    pub fn with_report_wait(mut self, polls: u32, first_delay: Duration) -> Self {
        self.report_polls = polls.max(1);
        self.report_first_delay = first_delay;
        self
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
        let (password_enabled, password_set) = match login {
            Ok(out) => (true, out.login_profile().map(aws_sdk_iam::types::LoginProfile::create_date).and_then(to_utc)),
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_iam::operation::get_login_profile::GetLoginProfileError::is_no_such_entity_exception,
                ) =>
            {
                (false, None)
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
            password_last_used: user.password_last_used().and_then(to_utc),
            password_set,
            mfa_active: !mfa.mfa_devices().is_empty(),
            created: to_utc(user.create_date()),
            policies: None,
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

    async fn list_keys(&self, user: &str) -> Result<Option<Vec<KeyState>>, CallError> {
        use aws_sdk_iam::operation::list_access_keys::ListAccessKeysError;
        let out = match self.client.list_access_keys().user_name(user).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(ListAccessKeysError::is_no_such_entity_exception) => {
                return Ok(None);
            }
            Err(e) => return Err(call_error("iam:ListAccessKeys", user, &e)),
        };
        // A user has at most two keys: one page always holds them.
        Ok(Some(
            out.access_key_metadata()
                .iter()
                .filter_map(|m| {
                    Some(KeyState {
                        id: m.access_key_id()?.to_owned(),
                        active: m.status() == Some(&StatusType::Active),
                        created: m.create_date().and_then(to_utc)?,
                    })
                })
                .collect(),
        ))
    }

    async fn set_key_status(&self, user: &str, key_id: &str, active: bool) -> Result<(), CallError> {
        let status = if active { StatusType::Active } else { StatusType::Inactive };
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(key_id)
            .status(status)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("iam:UpdateAccessKey", &format!("{user}/{key_id}"), &e))
    }

    async fn read_tags(&self, user: &str) -> Result<Option<Vec<Tag>>, CallError> {
        use aws_sdk_iam::operation::get_user::GetUserError;
        match self.client.get_user().user_name(user).send().await {
            Ok(out) => Ok(out.user.map(|u| u.tags().iter().map(|t| Tag::new(t.key(), t.value())).collect())),
            Err(e) if e.as_service_error().is_some_and(GetUserError::is_no_such_entity_exception) => Ok(None),
            Err(e) => Err(call_error("iam:GetUser", user, &e)),
        }
    }

    async fn add_tag(&self, user: &str, key: &str, value: &str) -> Result<(), CallError> {
        let tag = aws_sdk_iam::types::Tag::builder().key(key).value(value).build().map_err(|e| CallError {
            action: "iam:TagUser",
            target: user.to_owned(),
            message: e.to_string(),
        })?;
        self.client
            .tag_user()
            .user_name(user)
            .tags(tag)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| call_error("iam:TagUser", user, &e))
    }
}

impl IamDirectory {
    /// Generates (polling with backoff, bounded) and downloads the credential report; how
    /// long it waited for AWS to build it, the download and the parse go to `phases`.
    async fn credential_report(
        &self,
        phases: &mut Vec<Phase>,
    ) -> Result<(CredentialReport, Option<chrono::DateTime<chrono::Utc>>), ScanError> {
        let started = Instant::now();
        let mut delay = self.report_first_delay;
        for poll in 1..=self.report_polls {
            let out = self
                .client
                .generate_credential_report()
                .send()
                .await
                .map_err(|e| call_error("iam:GenerateCredentialReport", "account", &e))?;
            if out.state() == Some(&ReportStateType::Complete) {
                break;
            }
            if poll == self.report_polls {
                return Err(ScanError::ReportTimeout { waited_secs: started.elapsed().as_secs(), polls: poll });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(4));
        }
        phases.push(Phase::since("credential_report.generate", started));
        let downloading = Instant::now();
        let out = self
            .client
            .get_credential_report()
            .send()
            .await
            .map_err(|e| call_error("iam:GetCredentialReport", "account", &e))?;
        phases.push(Phase::since("credential_report.download", downloading));
        let parsing = Instant::now();
        let content = out.content().map(aws_sdk_iam::primitives::Blob::as_ref).unwrap_or_default();
        let report = credential_report::parse(content)?;
        phases.push(Phase::since("credential_report.parse", parsing));
        Ok((report, out.generated_time().and_then(to_utc)))
    }

    /// `GetAccountAuthorizationDetails` with `filters`, every page. The pages are fetched by
    /// a task of their own, so page N + 1 is on its way while page N is turned into the
    /// snapshot's types (and its SDK structures freed); each fetch and each parse go to `phases`.
    async fn authorization_details(
        &self,
        filters: &[EntityType],
        phases: &mut Vec<Phase>,
    ) -> Result<Details, CallError> {
        let mut request = self.client.get_account_authorization_details().max_items(GAAD_PAGE);
        for f in filters {
            request = request.filter(f.clone());
        }
        let mut pages = request.into_paginator().send();
        // Two pages ahead at most: memory stays bounded whatever the account's size.
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let fetching = tokio::spawn(async move {
            let mut started = Instant::now();
            while let Some(page) = pages.next().await {
                if tx.send((page, started)).await.is_err() {
                    break; // the reader gave up (a page failed): fetch no more.
                }
                started = Instant::now();
            }
        });
        let mut details = Details::default();
        let mut number = 0;
        while let Some((page, started)) = rx.recv().await {
            number += 1;
            phases.push(Phase::since(format!("gaad.page.{number}"), started));
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    fetching.abort();
                    return Err(call_error("iam:GetAccountAuthorizationDetails", "account", &e));
                }
            };
            let parsing = Instant::now();
            details.add(page);
            phases.push(Phase::since(format!("gaad.parse.{number}"), parsing));
        }
        Ok(details)
    }
}

/// The users, groups and customer managed policies the policy checks need (no roles, no AWS
/// managed policies: those are known by ARN).
const ACCESS_FILTERS: &[EntityType] = &[EntityType::User, EntityType::Group, EntityType::LocalManagedPolicy];

/// What `GetAccountAuthorizationDetails` returned, all pages together, in the snapshot's types.
#[derive(Debug, Default)]
struct Details {
    users: Vec<ListedUser>,
    catalogue: PolicyCatalogue,
}

/// A user as GAAD lists it: its tags and how policies reach it (credentials are the report's).
#[derive(Debug)]
struct ListedUser {
    name: String,
    arn: String,
    tags: Vec<Tag>,
    /// When the user was created.
    created: Option<chrono::DateTime<chrono::Utc>>,
    policies: UserPolicies,
}

/// A URL-encoded policy document as GAAD returns it, parsed.
fn document(encoded: Option<&str>) -> Result<PolicyDocument, PolicyError> {
    PolicyDocument::parse_url_encoded(encoded.ok_or_else(|| PolicyError::Shape("no document returned".into()))?)
}

fn inline(list: &[PolicyDetail]) -> Vec<InlinePolicy> {
    list.iter()
        .map(|p| InlinePolicy {
            name: p.policy_name().unwrap_or_default().to_owned(),
            document: document(p.policy_document()),
        })
        .collect()
}

fn arns(list: &[AttachedPolicy]) -> Vec<String> {
    list.iter().filter_map(AttachedPolicy::policy_arn).map(str::to_owned).collect()
}

impl Details {
    /// Adds one page: its users, its groups, and the customer managed policies attached
    /// somewhere (an unattached policy reaches nobody, so its document is not even parsed).
    fn add(&mut self, page: GetAccountAuthorizationDetailsOutput) {
        self.users.extend(page.user_detail_list.unwrap_or_default().iter().filter_map(|d| {
            Some(ListedUser {
                name: d.user_name()?.to_owned(),
                arn: d.arn()?.to_owned(),
                tags: d.tags().iter().map(|t| Tag::new(t.key(), t.value())).collect(),
                created: d.create_date().and_then(to_utc),
                policies: user_policies(d),
            })
        }));
        let managed = page.policies.unwrap_or_default();
        self.catalogue.managed.extend(
            managed.iter().filter(|p| p.attachment_count().is_none_or(|n| n > 0)).filter_map(|p| {
                let arn = p.arn()?;
                let default = p.policy_version_list().iter().find(|v| v.is_default_version());
                let document = match default {
                    Some(v) => document(v.document()),
                    None => Err(PolicyError::Shape("no default version returned".into())),
                };
                // The name is also the ARN's last part (after any path).
                let name = p.policy_name().or_else(|| arn.rsplit('/').next()).unwrap_or(arn).to_owned();
                Some((arn.to_owned(), ManagedPolicy { name, document }))
            }),
        );
        self.catalogue.groups.extend(page.group_detail_list.unwrap_or_default().iter().filter_map(|g| {
            let policies =
                GroupPolicies { attached: arns(g.attached_managed_policies()), inline: inline(g.group_policy_list()) };
            Some((g.group_name()?.to_owned(), policies))
        }));
    }
}

fn user_policies(d: &UserDetail) -> UserPolicies {
    UserPolicies {
        attached: arns(d.attached_managed_policies()),
        inline: inline(d.user_policy_list()),
        groups: d.group_list().to_vec(),
    }
}

impl AccountReader for IamDirectory {
    async fn read_account(&self) -> Result<AccountSnapshot, ScanError> {
        // The three reads overlap: while AWS builds the credential report (seconds on a large
        // account) and it is polled, GAAD's pages are fetched and parsed one after another.
        let started = Instant::now();
        let (mut report_phases, mut gaad_phases) = (Vec::new(), Vec::new());
        let timed_password_policy = async {
            let started = Instant::now();
            (self.read_password_policy().await, Phase::since("password_policy", started))
        };
        let (report, details, (password_policy, password_phase)) = tokio::join!(
            self.credential_report(&mut report_phases),
            self.authorization_details(ACCESS_FILTERS, &mut gaad_phases),
            timed_password_policy
        );
        let ((report, generated), details) = (report?, details?);
        let joining = Instant::now();
        let mut snapshot = join(report, generated, details.users);
        snapshot.catalogue = details.catalogue;
        snapshot.password_policy = password_policy?;
        snapshot.phases = report_phases;
        snapshot.phases.append(&mut gaad_phases);
        snapshot.phases.push(password_phase);
        snapshot.phases.push(Phase::since("join", joining));
        snapshot.phases.push(Phase::since("read_account", started));
        Ok(snapshot)
    }

    async fn read_access(&self) -> Result<AccessSnapshot, CallError> {
        let details = self.authorization_details(ACCESS_FILTERS, &mut Vec::new()).await?;
        Ok(AccessSnapshot {
            catalogue: details.catalogue,
            users: details.users.into_iter().map(|u| (u.name, u.policies)).collect(),
        })
    }

    async fn read_password_policy(&self) -> Result<Option<PasswordPolicy>, CallError> {
        use aws_sdk_iam::operation::get_account_password_policy::GetAccountPasswordPolicyError;
        let p = match self.client.get_account_password_policy().send().await {
            Ok(out) => out.password_policy,
            // IAM answers NoSuchEntity when the account has no password policy.
            Err(e) if e.as_service_error().is_some_and(GetAccountPasswordPolicyError::is_no_such_entity_exception) => {
                return Ok(None);
            }
            Err(e) => return Err(call_error("iam:GetAccountPasswordPolicy", "account", &e)),
        };
        let Some(p) = p else { return Ok(None) };
        let count = |n: Option<i32>| n.and_then(|n| u32::try_from(n).ok());
        Ok(Some(PasswordPolicy {
            minimum_password_length: count(p.minimum_password_length),
            password_reuse_prevention: count(p.password_reuse_prevention),
            max_password_age: count(p.max_password_age),
            expire_passwords: p.expire_passwords,
            require_symbols: p.require_symbols,
            require_numbers: p.require_numbers,
            require_uppercase_characters: p.require_uppercase_characters,
            require_lowercase_characters: p.require_lowercase_characters,
            allow_users_to_change_password: p.allow_users_to_change_password,
            hard_expiry: p.hard_expiry,
        }))
    }

    async fn read_root_summary(&self) -> Result<RootSummary, CallError> {
        let out = self
            .client
            .get_account_summary()
            .send()
            .await
            .map_err(|e| call_error("iam:GetAccountSummary", "account", &e))?;
        let map = out.summary_map.unwrap_or_default();
        let count = |key: SummaryKeyType| map.get(&key).copied().unwrap_or(0);
        Ok(RootSummary {
            access_keys_present: count(SummaryKeyType::AccountAccessKeysPresent) > 0,
            mfa_enabled: count(SummaryKeyType::AccountMfaEnabled) > 0,
            password_present: count(SummaryKeyType::AccountPasswordPresent) > 0,
            signing_certificates_present: count(SummaryKeyType::AccountSigningCertificatesPresent) > 0,
        })
    }

    async fn list_user_names(&self) -> Result<Vec<String>, ScanError> {
        let details = self.authorization_details(&[EntityType::User], &mut Vec::new()).await?;
        Ok(details.users.into_iter().map(|u| u.name).collect())
    }

    async fn role_exists(&self, role_arn: &str) -> Result<bool, CallError> {
        // GetRole takes the name: the ARN's last segment (a role's path is not part of its name).
        let name = role_arn.rsplit(['/', ':']).next().unwrap_or(role_arn);
        match self.client.get_role().role_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(aws_sdk_iam::operation::get_role::GetRoleError::is_no_such_entity_exception) =>
            {
                Ok(false)
            }
            Err(e) => Err(call_error("iam:GetRole", role_arn, &e)),
        }
    }
}

/// Joins the report (credentials) with GAAD (tags). GAAD is the fresher list of users: a
/// user missing from the report was created after it; a report user missing from GAAD was deleted.
fn join(
    report: CredentialReport,
    generated: Option<chrono::DateTime<chrono::Utc>>,
    listed_users: Vec<ListedUser>,
) -> AccountSnapshot {
    let mut by_name: HashMap<&str, &credential_report::ReportUser> =
        report.users.iter().map(|u| (u.name.as_str(), u)).collect();
    let listed: HashSet<&str> = listed_users.iter().map(|u| u.name.as_str()).collect();
    let mut snapshot = AccountSnapshot {
        users_deleted_since_report: report
            .users
            .iter()
            .filter(|u| !listed.contains(u.name.as_str()))
            .map(|u| u.name.clone())
            .collect(),
        report_generated_at: generated,
        ..AccountSnapshot::default()
    };
    for listed in listed_users {
        let credentials = by_name.remove(listed.name.as_str());
        if credentials.is_none() {
            snapshot.users_not_in_report.push(listed.name.clone());
        }
        snapshot.users.push(UserSnapshot {
            name: listed.name,
            arn: listed.arn,
            tags: listed.tags,
            keys: credentials.map(|c| c.keys.clone()).unwrap_or_default(),
            password_enabled: credentials.is_some_and(|c| c.password_enabled),
            password_last_used: credentials.and_then(|c| c.password_last_used),
            password_set: credentials.and_then(|c| c.password_set),
            mfa_active: credentials.is_some_and(|c| c.mfa_active),
            created: listed.created,
            policies: Some(listed.policies),
        });
    }
    snapshot.account = snapshot
        .users
        .first()
        .map(|u| u.arn.as_str())
        .or(report.root.as_ref().map(|r| r.arn.as_str()))
        .and_then(|arn| arn.split(':').nth(4))
        .filter(|a| !a.is_empty())
        .map(str::to_owned);
    snapshot.root = report.root;
    snapshot
}

#[cfg(test)]
mod tests;
