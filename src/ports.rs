//! The ports the app needs from the outside world; `aws` implements them, tests can too.

use std::future::Future;

use crate::approvals::Approvals;
pub use crate::domain::keys::KeyState;
use crate::domain::message::Message;
use crate::domain::registry::Version;
pub use crate::domain::stored::StoredFinding;
use crate::snapshot::{Tag, UserSnapshot};

/// A failed AWS call, named by its action (`iam:GetUser`) and target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action} on {target} failed: {message}")]
pub struct CallError {
    /// `service:Action`, as in IAM policies.
    pub action: &'static str,
    /// What the call was about (user name, secret id, topic ARN).
    pub target: String,
    /// The service's error, with its code.
    pub message: String,
}

/// Why the approvals registry could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryUnavailable {
    /// Reading it failed.
    #[error(transparent)]
    Read(#[from] CallError),
    /// It was read but is not a valid registry.
    #[error("approvals registry {secret_id}: {problem}")]
    Invalid {
        /// Secret name or ARN.
        secret_id: String,
        /// What is wrong (never the secret's content).
        problem: String,
    },
}

/// Publishing findings failed, at least in part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("published {published} of {total} messages; {failed}")]
pub struct PublishError {
    /// Messages accepted by the topic.
    pub published: usize,
    /// Messages attempted.
    pub total: usize,
    /// What failed.
    pub failed: String,
    /// Publishing stopped because the deadline was near, not because a call failed.
    pub deadline: bool,
    /// The ids of the messages the topic accepted, so a retry sends only the rest.
    pub sent: Vec<String>,
}

/// Reads one IAM user and removes its exception tag.
pub trait UserDirectory: Send + Sync {
    /// The user's tags, keys (with last use), MFA and password state; `None` if the user no longer exists.
    fn read_user(&self, name: &str) -> impl Future<Output = Result<Option<UserSnapshot>, CallError>> + Send;
    /// Removes tag `key` from `user` (idempotent).
    fn remove_tag(&self, user: &str, key: &str) -> impl Future<Output = Result<(), CallError>> + Send;
    /// The user's keys as IAM holds them now (`ListAccessKeys`); `None` if the user no longer exists.
    fn list_keys(&self, user: &str) -> impl Future<Output = Result<Option<Vec<KeyState>>, CallError>> + Send;
    /// Makes key `key_id` of `user` active or inactive (`UpdateAccessKey`); never deletes it.
    fn set_key_status(
        &self,
        user: &str,
        key_id: &str,
        active: bool,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
    /// The user's tags now (`GetUser`); `None` if the user no longer exists. For undo.
    fn read_tags(&self, user: &str) -> impl Future<Output = Result<Option<Vec<Tag>>, CallError>> + Send;
    /// Sets tag `key` = `value` on `user` (`TagUser`). Only undo uses it, with the caller's credentials.
    fn add_tag(&self, user: &str, key: &str, value: &str) -> impl Future<Output = Result<(), CallError>> + Send;
}

/// Reads the whole account with bulk calls only (credential report + GetAccountAuthorizationDetails).
pub trait AccountReader: Send + Sync {
    /// Every user, the root account, and when the credential report was generated.
    fn read_account(&self) -> impl Future<Output = Result<AccountSnapshot, ScanError>> + Send;
    /// Root's credential state from the account summary (one call), for events about root.
    fn read_root_summary(&self) -> impl Future<Output = Result<crate::domain::account::RootSummary, CallError>> + Send;
    /// Groups, customer managed policies and every user's policies, without credentials
    /// (`GetAccountAuthorizationDetails` only), for events that change policies.
    fn read_access(&self) -> impl Future<Output = Result<AccessSnapshot, CallError>> + Send;
    /// The account password policy (one call); `None` when the account has none.
    fn read_password_policy(
        &self,
    ) -> impl Future<Output = Result<Option<crate::domain::password::PasswordPolicy>, CallError>> + Send;
    /// Every user name (bulk); the per-user baseline of the benchmark starts from it.
    fn list_user_names(&self) -> impl Future<Output = Result<Vec<String>, ScanError>> + Send;
    /// Whether the role `role_arn` still exists (`iam:GetRole`): one call per configured break-glass role.
    fn role_exists(&self, role_arn: &str) -> impl Future<Output = Result<bool, CallError>> + Send;
}

/// The whole account at one moment, joined from the two bulk sources.
#[derive(Debug, Clone, Default)]
pub struct AccountSnapshot {
    /// Account id (from the ARNs).
    pub account: Option<String>,
    /// Users found in both sources, or in GAAD only (then without key and MFA data).
    pub users: Vec<UserSnapshot>,
    /// Users in GAAD but not in the (older) credential report.
    pub users_not_in_report: Vec<String>,
    /// Users in the report that GAAD no longer lists.
    pub users_deleted_since_report: Vec<String>,
    /// The root row.
    pub root: Option<crate::snapshot::RootSnapshot>,
    /// When AWS generated the report.
    pub report_generated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Groups and customer managed policies; every user's own `policies` point into it.
    pub catalogue: crate::snapshot::PolicyCatalogue,
    /// The account password policy; `None` when the account has none.
    pub password_policy: Option<crate::domain::password::PasswordPolicy>,
    /// How long each read took (the credential report's wait, each GAAD page, parsing).
    pub phases: Vec<crate::domain::timing::Phase>,
}

/// The account's policies and how they reach each user, without credentials.
#[derive(Debug, Clone, Default)]
pub struct AccessSnapshot {
    /// Groups and customer managed policies.
    pub catalogue: crate::snapshot::PolicyCatalogue,
    /// Every user's name and policies.
    pub users: Vec<(String, crate::snapshot::UserPolicies)>,
}

/// Why a scan could not collect the account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// An AWS call failed (after retries).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The credential report did not complete in time.
    #[error("iam:GenerateCredentialReport: report not COMPLETE after {waited_secs} s ({polls} polls); try again later")]
    ReportTimeout {
        /// Seconds waited.
        waited_secs: u64,
        /// Polls made.
        polls: u32,
    },
    /// The credential report could not be parsed.
    #[error(transparent)]
    Report(#[from] crate::credential_report::ReportError),
}

/// Loads the approvals registry.
pub trait ApprovalsStore: Send + Sync {
    /// The current registry, fully validated.
    fn load(&self) -> impl Future<Output = Result<Approvals, RegistryUnavailable>> + Send;
    /// Where the registry lives (secret name or ARN), for findings and errors.
    fn location(&self) -> &str;
    /// The registry as version stage `stage` (`AWSCURRENT`, `AWSPREVIOUS`) holds it, for
    /// comparing a change; a stage that does not exist is [`Version::Missing`], not an error.
    fn version(&self, stage: &'static str) -> impl Future<Output = Result<Version, CallError>> + Send;
    /// When the registry secret last changed (`DescribeSecret`), for the digest.
    fn last_changed(&self) -> impl Future<Output = Result<Option<chrono::DateTime<chrono::Utc>>, CallError>> + Send;
}

/// Where findings go (an SNS topic).
pub trait FindingsSink: Send + Sync {
    /// Publishes the messages; returns how many were accepted. Stops before a batch that
    /// would start at or after `stop_by` (then `PublishError::deadline` is set).
    fn publish(
        &self,
        messages: &[Message],
        stop_by: Option<tokio::time::Instant>,
    ) -> impl Future<Output = Result<usize, PublishError>> + Send;
}

/// A boxed future: [`FindingsStore`] is held as a trait object, because whether it exists is
/// decided at start-up (`SECURITY_HUB`), not by the app's type.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A findings store could not take or give back findings (Security Hub).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action}: {}{message}", if *.not_enabled { "Security Hub is not enabled here: " } else { "" })]
pub struct StoreError {
    /// `securityhub:BatchImportFindings` or `securityhub:GetFindings`.
    pub action: &'static str,
    /// Findings the store accepted before or despite the failure.
    pub imported: usize,
    /// Findings sent.
    pub total: usize,
    /// What failed (the service's code and message, or the rejected findings).
    pub message: String,
    /// The account has not enabled the service in this region (`InvalidAccessException`).
    pub not_enabled: bool,
}

/// Where findings are kept with a lifecycle (AWS Security Hub): imported on every run,
/// read back after a scan to find those the scan no longer produces.
pub trait FindingsStore: Send + Sync {
    /// Creates or updates the documents (ASFF, at most 240 KB each); returns how many were
    /// accepted. Stops before a batch that would start at or after `stop_by`.
    fn import<'a>(
        &'a self,
        documents: &'a [serde_json::Value],
        stop_by: Option<tokio::time::Instant>,
    ) -> BoxFuture<'a, Result<usize, StoreError>>;
    /// Every open finding this function reported in `account` (all pages).
    fn open_findings<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Vec<StoredFinding>, StoreError>>;
}

/// A new access key's secret half: never printed (its `Debug` is redacted), only stored.
pub struct KeySecret(pub String);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(redacted)")
    }
}

/// A key just created by the rotation.
#[derive(Debug)]
pub struct NewKey {
    /// The access key id.
    pub id: String,
    /// The secret access key (goes to Secrets Manager only).
    pub secret: KeySecret,
}

/// What key rotation needs beyond [`UserDirectory`] (which lists and deactivates keys): key
/// creation and deletion in IAM, and the rotation secret; a trait object, because whether it
/// exists is decided at start-up. No method reads a rotated secret's value: which key a version
/// holds travels in the version's id.
pub trait KeyRotation: Send + Sync {
    /// When, where and to what a key was last used (`GetAccessKeyLastUsed`).
    fn last_use<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<crate::domain::keys::LastUse, CallError>>;
    /// What the user's rotation secret holds (`DescribeSecret` only: the current version's key
    /// id and the deactivation records; never the value).
    fn vault<'a>(&'a self, secret: &'a str) -> BoxFuture<'a, Result<crate::domain::keys::Vault, CallError>>;
    /// Why the secret at `secret` is not one the rotation created for the user `user_arn` (its
    /// marker tag, KMS key or resource policy differ); `None` when it is, or does not exist.
    fn not_ours<'a>(&'a self, secret: &'a str, user_arn: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>>;
    /// The key id the version at `stage` (`AWSCURRENT`, `AWSPREVIOUS`) holds, from the version's
    /// id (`DescribeSecret`), without reading the value; `None` when no version has that stage
    /// or the version was not written by the rotation.
    fn stage_key<'a>(&'a self, secret: &'a str, stage: &'a str) -> BoxFuture<'a, Result<Option<String>, CallError>>;
    /// Creates a key for `user` (`CreateAccessKey`).
    fn create_key<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<NewKey, CallError>>;
    /// Stores `key` as the secret's current version; on first use creates the secret with the
    /// stack's KMS key, the marker tag and a resource policy letting only `user_arn` (and the
    /// configured readers) read it and only the function write it.
    fn store<'a>(
        &'a self,
        secret: &'a str,
        user: &'a str,
        user_arn: &'a str,
        key: &'a NewKey,
    ) -> BoxFuture<'a, Result<(), CallError>>;
    /// Records on the secret that `key_id` was deactivated `at` (a tag), before deactivating it.
    fn record_deactivation<'a>(
        &'a self,
        secret: &'a str,
        key_id: &'a str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<(), CallError>>;
    /// Removes the deactivation record of `key_id` (`UntagResource`), once the key is deleted.
    fn forget_deactivation<'a>(&'a self, secret: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<(), CallError>>;
    /// Deletes a key (`DeleteAccessKey`); a key already gone is not an error.
    fn delete_key<'a>(&'a self, user: &'a str, key_id: &'a str) -> BoxFuture<'a, Result<(), CallError>>;
    /// Undoes a rotation's write to the secret: the previous version becomes current again
    /// (`UpdateSecretVersionStage`); without one (the user's first rotation) the secret is
    /// scheduled for deletion, recoverable for 7 days. Returns whether a previous version existed.
    fn restore_previous<'a>(&'a self, secret: &'a str) -> BoxFuture<'a, Result<bool, CallError>>;
}

/// The state table could not be used: the run goes on as if stateless and fails by name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state table {table}: {action} failed: {message}")]
pub struct StateError {
    /// `dynamodb:Query`, `dynamodb:BatchWriteItem`, …
    pub action: &'static str,
    /// The table's name.
    pub table: String,
    /// The service's error, or why the request was refused.
    pub message: String,
}

/// The threads read for an account, and the records that could not be read (reported, skipped).
#[derive(Debug, Clone, Default)]
pub struct ThreadsRead {
    /// The well-formed records.
    pub records: Vec<crate::domain::memory::ThreadRecord>,
    /// One line per malformed record: its key and what is wrong.
    pub malformed: Vec<String>,
}

/// What the table says of an event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventClaim {
    /// First delivery: this invocation handles it.
    First,
    /// Already handled completely at `at`: a duplicate delivery.
    Done {
        /// When it was handled.
        at: chrono::DateTime<chrono::Utc>,
    },
    /// An earlier invocation started it and did not finish (a retry): the ids it already sent.
    Retry {
        /// Message ids already published.
        sent: std::collections::HashSet<String>,
    },
    /// Another invocation is handling it right now (its lease runs until `until`).
    InProgress {
        /// When the other invocation's lease ends.
        until: chrono::DateTime<chrono::Utc>,
    },
}

/// The function's memory (the DynamoDB state table): finding threads, event ids, the journal.
/// Every method names the account; an implementation bound to one account refuses others.
pub trait StateStore: Send + Sync {
    /// The table's name, for messages.
    fn table(&self) -> &str;
    /// Every thread record of `account` (one paged Query).
    fn threads<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<ThreadsRead, StateError>>;
    /// The records of these threads of `account` that exist (for the event path).
    fn threads_of<'a>(
        &'a self,
        account: &'a str,
        threads: &'a [String],
    ) -> BoxFuture<'a, Result<ThreadsRead, StateError>>;
    /// Writes these records (batched); resolved ones expire after a retention period.
    fn write_threads<'a>(
        &'a self,
        records: &'a [crate::domain::memory::ThreadRecord],
    ) -> BoxFuture<'a, Result<(), StateError>>;
    /// Claims event `event_id` of `account` until `lease_until` (a conditional write).
    fn claim_event<'a>(
        &'a self,
        account: &'a str,
        event_id: &'a str,
        now: chrono::DateTime<chrono::Utc>,
        lease_until: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<EventClaim, StateError>>;
    /// Records the message ids sent for the event and whether it is done; releases the lease.
    fn finish_event<'a>(
        &'a self,
        account: &'a str,
        event_id: &'a str,
        sent: &'a [String],
        done: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<(), StateError>>;
    /// Appends an entry to the action journal.
    fn journal<'a>(&'a self, entry: &'a crate::domain::memory::JournalEntry) -> BoxFuture<'a, Result<(), StateError>>;
    /// Every journal entry of a finding in `account`.
    fn actions_of<'a>(
        &'a self,
        account: &'a str,
        finding_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::domain::memory::JournalEntry>, StateError>>;
    /// Every journal entry about `user` of `account`, oldest first.
    fn history<'a>(
        &'a self,
        account: &'a str,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::domain::memory::JournalEntry>, StateError>>;
}

/// A root session that `sts:AssumeRoot` started, remembered so the member account's records can be paired with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootSession {
    /// The member account the session acts in (`requestParameters.targetPrincipal`).
    pub target_account: String,
    /// The session's temporary access key (`responseElements.credentials.accessKeyId`).
    pub access_key_id: String,
    /// Who asked for the session (the caller's ARN).
    pub caller: String,
    /// The account the caller is in (the management or delegated-administrator account).
    pub caller_account: String,
    /// The task policy's name (`IAMDeleteRootUserCredentials`, …).
    pub task: String,
    /// When `AssumeRoot` was called.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Where the caller called from.
    pub source_ip: Option<String>,
    /// Whether the caller's session was MFA-authenticated, when CloudTrail says.
    pub mfa: Option<bool>,
}

/// Remembers root sessions (kept for a day: AssumeRoot sessions last at most 15 minutes).
pub trait RootSessionLog: Send + Sync {
    /// Keeps `session` so that the target account's records can be paired with it.
    fn record_root_session<'a>(&'a self, session: &'a RootSession) -> BoxFuture<'a, Result<(), CallError>>;
    /// The session `access_key_id` opened in `target_account`, if one was recorded.
    fn find_root_session<'a>(
        &'a self,
        target_account: &'a str,
        access_key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RootSession>, CallError>>;
}
