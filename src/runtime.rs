//! Builds the production [`App`] from configuration: SDK clients are created once and reused.
//! In organization mode the [`Deployment`] also reaches every member account through its role.

use std::collections::HashMap;

use aws_config::SdkConfig;

use crate::app::App;
use crate::aws::approvals::SecretApprovals;
use crate::aws::iam::IamDirectory;
use crate::aws::members::Members;
use crate::aws::organizations::OrganizationReader;
use crate::aws::root_access::RootAccessReader;
use crate::aws::securityhub::SecurityHubStore;
use crate::aws::sns::SnsSink;
use crate::aws::{CallCounter, Endpoint, call_error, load_sdk_config};
use crate::config::Config;
use crate::org::OrgContext;
use crate::ports::CallError;

/// The app wired to AWS.
pub type AwsApp = App<IamDirectory, SecretApprovals, SnsSink>;

/// Builds the AWS-backed app; every client counts its calls in the returned counter.
pub async fn build_app(config: Config, endpoint: &Endpoint) -> (AwsApp, CallCounter) {
    build_app_with(config, &load_sdk_config(endpoint).await)
}

/// Builds the AWS-backed app from an existing SDK configuration.
#[must_use]
pub fn build_app_with(config: Config, sdk: &aws_config::SdkConfig) -> (AwsApp, CallCounter) {
    let counter = CallCounter::default();
    (assemble(config, sdk, sdk, &counter, None), counter)
}

/// An app reading IAM with `iam_sdk` (a member's credentials, or the function's own) and
/// using the function's own topic, registry and Security Hub through `sdk`.
fn assemble(
    config: Config,
    sdk: &SdkConfig,
    iam_sdk: &SdkConfig,
    counter: &CallCounter,
    member: Option<(&str, OrgContext)>,
) -> AwsApp {
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(iam_sdk).interceptor(counter.clone()).build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(counter.clone()).build(),
    );
    let sink = config.findings_topic_arn.clone().map(|topic| {
        SnsSink::new(
            aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(sdk).interceptor(counter.clone()).build(),
            ),
            topic,
        )
    });
    // The member role cannot change keys: rotation runs only in single-account mode.
    let key_rotation = member.is_none().then(|| {
        Box::new(
            crate::aws::rotation::AwsKeyRotation::new(iam.clone(), secrets.clone(), config.rotation.kms_key_id.clone())
                .with_access(crate::aws::rotation::SecretAccess {
                    readers: config.rotation.secret_readers.clone(),
                    writer: config.self_role_arn.clone(),
                }),
        ) as Box<dyn crate::ports::KeyRotation>
    });
    let mut approvals = SecretApprovals::new(secrets, config.approvals_secret_id.clone());
    if let Some((account, _)) = &member {
        approvals = approvals.for_account(account);
    }
    let region = sdk.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let findings_store = config.security_hub.then(|| {
        let client = aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(sdk).interceptor(counter.clone()).build(),
        );
        Box::new(SecurityHubStore::new(client, region.clone())) as Box<dyn crate::ports::FindingsStore>
    });
    // One table in the function's account; a member's app reads and writes its account's part only.
    let state_store = config.state_table.clone().map(|table| {
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(counter.clone()).build(),
        );
        let store = crate::aws::state::DynamoState::new(client, table);
        std::sync::Arc::new(match &member {
            Some((account, _)) => store.for_account(account),
            None => store,
        })
    });
    let state = state_store.clone().map(|s| s as std::sync::Arc<dyn crate::ports::StateStore>);
    // The same table pairs a member's root calls with the AssumeRoot that opened the session.
    let root_sessions = state_store.map(|s| s as std::sync::Arc<dyn crate::ports::RootSessionLog>);
    App {
        state,
        findings_store,
        config,
        directory: IamDirectory::new(iam),
        approvals,
        sink,
        region,
        key_rotation,
        organization: member.map(|(_, org)| org),
        root_sessions,
    }
}

/// The function as deployed: the app of its own account and, in organization mode, every
/// member account reached through the member role.
pub struct Deployment {
    /// The app acting in the function's own account.
    pub central: AwsApp,
    /// Counts every call of every app of this deployment.
    pub counter: CallCounter,
    org: Option<OrgRuntime>,
}

/// What organization mode adds: the member role, the organization's reader, names seen.
struct OrgRuntime {
    sdk: SdkConfig,
    members: Members,
    reader: OrganizationReader,
    root_access: RootAccessReader,
    own_account: String,
    names: tokio::sync::Mutex<HashMap<String, Option<String>>>,
}

/// An app for one account: the central one, or one built for a member.
pub enum AccountApp<'a> {
    /// The function's own account.
    Central(&'a AwsApp),
    /// A member account, through its role.
    Member(Box<AwsApp>),
}

impl std::ops::Deref for AccountApp<'_> {
    type Target = AwsApp;
    fn deref(&self) -> &AwsApp {
        match self {
            AccountApp::Central(app) => app,
            AccountApp::Member(app) => app,
        }
    }
}

impl Deployment {
    /// Builds the deployment. In organization mode this asks STS who the function is (one
    /// `GetCallerIdentity`), so events of its own account use its own credentials.
    pub async fn build(config: Config, sdk: &SdkConfig) -> Result<Deployment, CallError> {
        let counter = CallCounter::default();
        let Some(organization) = config.organization.clone() else {
            return Ok(Deployment { central: assemble(config, sdk, sdk, &counter, None), counter, org: None });
        };
        let sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(sdk).interceptor(counter.clone()).build(),
        );
        let identity = sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| call_error("sts:GetCallerIdentity", "the function's own credentials", &e))?;
        let own_account = identity.account().unwrap_or_default().to_owned();
        let reader = OrganizationReader::new(aws_sdk_organizations::Client::from_conf(
            aws_sdk_organizations::config::Builder::from(sdk).interceptor(counter.clone()).build(),
        ));
        let context =
            OrgContext { reader: reader.clone(), account_name: None, management: false, root_managed_centrally: None };
        let central = assemble(config, sdk, sdk, &counter, Some((&own_account, context)));
        let members = Members::new(sdk.clone(), sts, organization.member_role_name);
        let root_access = RootAccessReader::new(aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(sdk).interceptor(counter.clone()).build(),
        ));
        let org = OrgRuntime {
            sdk: sdk.clone(),
            members,
            reader,
            root_access,
            own_account,
            names: tokio::sync::Mutex::default(),
        };
        Ok(Deployment { central, counter, org: Some(org) })
    }

    /// Whether this deployment guards an organization.
    #[must_use]
    pub fn is_organization(&self) -> bool {
        self.org.is_some()
    }

    /// The organization's reader (organization mode only).
    #[must_use]
    pub fn organization(&self) -> Option<&OrganizationReader> {
        self.org.as_ref().map(|o| &o.reader)
    }

    /// The reader of the organization's root access features (organization mode only).
    #[must_use]
    pub fn root_access(&self) -> Option<&RootAccessReader> {
        self.org.as_ref().map(|o| &o.root_access)
    }

    /// Reads the root access features with `reader` instead: another IAM client (the IAM
    /// delegated administrator's credentials, or a stand-in where the emulator lacks the call).
    pub fn set_root_access(&mut self, reader: RootAccessReader) {
        if let Some(org) = self.org.as_mut() {
            org.root_access = reader;
        }
    }

    /// The account the function runs in (organization mode only).
    #[must_use]
    pub fn own_account(&self) -> Option<&str> {
        self.org.as_ref().map(|o| o.own_account.as_str())
    }

    /// The app acting in `account`: the central app in single-account mode or for the function's
    /// own account; otherwise one reading the member through its role (one `sts:AssumeRole`
    /// per account while the credentials last). `name` is the account's name when the caller
    /// knows it; otherwise `DescribeAccount` is asked once per account (its refusal only
    /// leaves the name out).
    pub async fn app_for(
        &self,
        account: &str,
        name: Option<String>,
        management: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<AccountApp<'_>, CallError> {
        let Some(org) = &self.org else { return Ok(AccountApp::Central(&self.central)) };
        if account == org.own_account {
            if management || name.is_some() {
                // The function runs in the management account, or the caller named this account.
                let mut app = assemble(
                    self.central.config.clone(),
                    &org.sdk,
                    &org.sdk,
                    &self.counter,
                    Some((
                        account,
                        OrgContext {
                            reader: org.reader.clone(),
                            account_name: name,
                            management,
                            root_managed_centrally: None,
                        },
                    )),
                );
                app.region.clone_from(&self.central.region);
                return Ok(AccountApp::Member(Box::new(app)));
            }
            return Ok(AccountApp::Central(&self.central));
        }
        let member_sdk = org.members.sdk_for(account, now).await?;
        let account_name = match name {
            Some(n) => Some(n),
            None => org.name_of(account).await,
        };
        let mut config = self.central.config.clone();
        // Events the function caused in the member (through the member role) are its own.
        // Only the sessions the function opens (by role and session name): an administrator's
        // session of the same role is judged like anyone else's.
        config.self_role_arn = Some(org.members.role_arn(account));
        config.self_session_name = Some(crate::aws::members::SESSION_NAME.to_owned());
        let context = OrgContext { reader: org.reader.clone(), account_name, management, root_managed_centrally: None };
        Ok(AccountApp::Member(Box::new(assemble(
            config,
            &org.sdk,
            &member_sdk,
            &self.counter,
            Some((account, context)),
        ))))
    }
}

impl OrgRuntime {
    async fn name_of(&self, account: &str) -> Option<String> {
        let mut names = self.names.lock().await;
        if let Some(name) = names.get(account) {
            return name.clone();
        }
        let name = match self.reader.account_name(account).await {
            Ok(n) if !n.is_empty() => Some(n),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(account, error = %e, "the account's name is not known; findings carry its id only");
                None
            }
        };
        names.insert(account.to_owned(), name.clone());
        name
    }
}
