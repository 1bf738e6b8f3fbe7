//! The ports the app needs from the outside world; `aws` implements them, tests can too.

use std::future::Future;

use crate::approvals::Approvals;
use crate::finding::Finding;
use crate::snapshot::UserSnapshot;

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
#[error("published {published} of {total} findings; {failed}")]
pub struct PublishError {
    /// Messages accepted by the topic.
    pub published: usize,
    /// Messages attempted.
    pub total: usize,
    /// What failed.
    pub failed: String,
}

/// Reads one IAM user and removes its exception tag.
pub trait UserDirectory: Send + Sync {
    /// The user's tags, keys (with last use), MFA and password state; `None` if the user no longer exists.
    fn read_user(&self, name: &str) -> impl Future<Output = Result<Option<UserSnapshot>, CallError>> + Send;
    /// Removes tag `key` from `user` (idempotent).
    fn remove_tag(&self, user: &str, key: &str) -> impl Future<Output = Result<(), CallError>> + Send;
}

/// Loads the approvals registry.
pub trait ApprovalsStore: Send + Sync {
    /// The current registry, fully validated.
    fn load(&self) -> impl Future<Output = Result<Approvals, RegistryUnavailable>> + Send;
    /// Where the registry lives (secret name or ARN), for findings and errors.
    fn location(&self) -> &str;
}

/// Where findings go (an SNS topic).
pub trait FindingsSink: Send + Sync {
    /// Publishes one message per finding; returns how many were accepted.
    fn publish(&self, findings: &[Finding]) -> impl Future<Output = Result<usize, PublishError>> + Send;
}
