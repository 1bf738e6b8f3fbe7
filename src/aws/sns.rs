//! SNS: one message per finding, sent with `PublishBatch` (10 per call), with the
//! `severity`, `check` and `account` attributes subscribers filter on.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};

use super::call_error;
use crate::finding::Finding;
use crate::ports::{FindingsSink, PublishError};

/// SNS actions the function calls.
pub const SNS_ACTIONS: &[&str] = &["sns:Publish"];

/// SNS allows at most 10 entries per `PublishBatch`.
const BATCH: usize = 10;
/// Entries that fail with a retryable error are sent again this many times.
const ENTRY_RETRIES: usize = 2;

/// Publishes findings to one topic.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: Client,
    topic_arn: String,
}

impl SnsSink {
    /// Publishes to `topic_arn`.
    #[must_use]
    pub fn new(client: Client, topic_arn: String) -> Self {
        SnsSink { client, topic_arn }
    }
}

/// A subject under SNS's 100-character limit: `[HIGH] exception-unapproved: alice`.
#[must_use]
pub fn subject(f: &Finding) -> String {
    let who = f.user.as_deref().unwrap_or(&f.principal);
    let mut s = format!("[{}] {}: {who}", f.severity.as_str().to_ascii_uppercase(), f.check);
    // Subjects must be printable ASCII without line breaks.
    s.retain(|c| c.is_ascii() && !c.is_ascii_control());
    s.truncate(99);
    s
}

fn attribute(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| format!("message attribute: {e}"))
}

fn entry(id: usize, f: &Finding) -> Result<PublishBatchRequestEntry, String> {
    let message = serde_json::to_string_pretty(f).map_err(|e| format!("finding {id} could not be serialised: {e}"))?;
    PublishBatchRequestEntry::builder()
        .id(id.to_string())
        .subject(subject(f))
        .message(message)
        .message_attributes("severity", attribute(f.severity.as_str())?)
        .message_attributes("check", attribute(f.check.as_str())?)
        .message_attributes("account", attribute(&f.account)?)
        .build()
        .map_err(|e| format!("finding {id}: {e}"))
}

impl FindingsSink for SnsSink {
    async fn publish(&self, findings: &[Finding]) -> Result<usize, PublishError> {
        let total = findings.len();
        let fail = |published, failed: String| PublishError { published, total, failed };
        let mut published = 0;
        for (chunk_no, chunk) in findings.chunks(BATCH).enumerate() {
            let mut pending = chunk
                .iter()
                .enumerate()
                .map(|(i, f)| entry(chunk_no * BATCH + i, f))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(published, e))?;
            for round in 0..=ENTRY_RETRIES {
                let out = self
                    .client
                    .publish_batch()
                    .topic_arn(&self.topic_arn)
                    .set_publish_batch_request_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| fail(published, call_error("sns:Publish", &self.topic_arn, &e).to_string()))?;
                published += out.successful().len();
                let failed = out.failed();
                if failed.is_empty() {
                    break;
                }
                let permanent = failed.iter().find(|f| f.sender_fault());
                if permanent.is_some() || round == ENTRY_RETRIES {
                    let detail: Vec<String> = failed
                        .iter()
                        .map(|f| format!("entry {}: {} {}", f.id(), f.code(), f.message().unwrap_or_default()))
                        .collect();
                    return Err(fail(
                        published,
                        format!("sns:Publish to {} rejected {}", self.topic_arn, detail.join("; ")),
                    ));
                }
                // Resend only the entries that failed, so subscribers get no duplicates.
                pending.retain(|e| failed.iter().any(|f| f.id() == e.id()));
            }
        }
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{CheckId, Scope};

    #[test]
    fn subjects_stay_under_100_characters() {
        let scope = Scope {
            account: "1".into(),
            region: "us-east-1".into(),
            trigger: "schedule".into(),
            now: chrono::Utc::now(),
        };
        let mut f = scope.finding(CheckId::AccessKeyMultipleActive, "arn", String::new());
        f.user = Some("u".repeat(64));
        let s = subject(&f);
        assert!(s.len() < 100, "{}", s.len());
        assert!(s.starts_with("[LOW] access-key-multiple-active: uuu"));
    }
}
