//! Centralized root access as data: the task a root session (`sts:AssumeRoot`) may run, and the
//! organization features that manage members' root users.

use crate::finding::Severity;

/// The task policy of a root session (`arn:aws:iam::aws:policy/root-task/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootTask {
    /// `IAMAuditRootUserCredentials`: reads the root user's credentials, changes nothing.
    AuditCredentials,
    /// `IAMDeleteRootUserCredentials`: deletes the root password, keys, MFA devices or certificates.
    DeleteCredentials,
    /// `IAMCreateRootUserPassword`: gives the member's root user a password again (console sign-in).
    CreatePassword,
    /// `S3UnlockBucketPolicy`: deletes a bucket policy that denies everyone.
    UnlockBucketPolicy,
    /// `SQSUnlockQueuePolicy`: deletes a queue policy that denies everyone.
    UnlockQueuePolicy,
    /// A task policy this version does not know (AWS may add more).
    Other(String),
}

impl RootTask {
    /// The task named by a task policy ARN (or a bare name).
    #[must_use]
    pub fn from_policy_arn(arn: &str) -> RootTask {
        match arn.rsplit('/').next().unwrap_or(arn) {
            "IAMAuditRootUserCredentials" => RootTask::AuditCredentials,
            "IAMDeleteRootUserCredentials" => RootTask::DeleteCredentials,
            "IAMCreateRootUserPassword" => RootTask::CreatePassword,
            "S3UnlockBucketPolicy" => RootTask::UnlockBucketPolicy,
            "SQSUnlockQueuePolicy" => RootTask::UnlockQueuePolicy,
            other => RootTask::Other(other.to_owned()),
        }
    }

    /// The task policy's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            RootTask::AuditCredentials => "IAMAuditRootUserCredentials",
            RootTask::DeleteCredentials => "IAMDeleteRootUserCredentials",
            RootTask::CreatePassword => "IAMCreateRootUserPassword",
            RootTask::UnlockBucketPolicy => "S3UnlockBucketPolicy",
            RootTask::UnlockQueuePolicy => "SQSUnlockQueuePolicy",
            RootTask::Other(name) => name,
        }
    }

    /// How much a session for this task weighs. An audit only reads (low). Deleting root
    /// credentials is what centralization asks for, but it is still root acting and cannot be
    /// undone (medium). A new root password brings back a long-lived root sign-in, and an unlocked
    /// bucket or queue policy changes who reaches data (high). An unknown task is judged as high.
    #[must_use]
    pub fn severity(&self) -> Severity {
        match self {
            RootTask::AuditCredentials => Severity::Low,
            RootTask::DeleteCredentials => Severity::Medium,
            RootTask::CreatePassword
            | RootTask::UnlockBucketPolicy
            | RootTask::UnlockQueuePolicy
            | RootTask::Other(_) => Severity::High,
        }
    }

    /// What a session for this task can do, in a few words.
    #[must_use]
    pub fn purpose(&self) -> &'static str {
        match self {
            RootTask::AuditCredentials => "read the root user's credentials",
            RootTask::DeleteCredentials => "delete the root user's credentials",
            RootTask::CreatePassword => "give the root user a console password again",
            RootTask::UnlockBucketPolicy => "delete an S3 bucket policy",
            RootTask::UnlockQueuePolicy => "delete an SQS queue policy",
            RootTask::Other(_) => "run a root task this version does not know",
        }
    }
}

/// A centralized root access feature switched on or off (`Enable…`/`Disable…` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFeature {
    /// `RootCredentialsManagement`.
    CredentialsManagement,
    /// `RootSessions`.
    Sessions,
}

impl RootFeature {
    /// The feature's name as `ListOrganizationsFeatures` spells it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            RootFeature::CredentialsManagement => "RootCredentialsManagement",
            RootFeature::Sessions => "RootSessions",
        }
    }
}
