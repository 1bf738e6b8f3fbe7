//! SNS: messages sent with `PublishBatch` (at most 10 and 256 KB per call), with the
//! `severity`, `check` and `account` attributes subscribers filter on. Each entry is one
//! `MessageStructure=json` document holding a rendering per protocol, so one publish
//! serves every subscriber: the cost does not grow with the number of protocols.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use tokio::time::Instant;

use super::call_error;
use crate::message::Message;
use crate::ports::{FindingsSink, PublishError};

/// SNS allows at most 10 entries per `PublishBatch`.
const BATCH_ENTRIES: usize = 10;
/// ... and 262,144 bytes for the whole batch.
const BATCH_BYTES: usize = 256 * 1024;
/// Entries that fail with a retryable error are sent again this many times.
const ENTRY_RETRIES: usize = 2;

/// Publishes to one topic.
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

fn attribute(value: &str) -> Result<MessageAttributeValue, String> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| format!("message attribute: {e}"))
}

/// One batch entry. On a FIFO topic the finding id is also the deduplication id, so SNS
/// itself drops the copy a retried invocation sends (standard topics reject the field).
fn entry(id: usize, m: &Message, fifo: bool) -> Result<PublishBatchRequestEntry, String> {
    let builder = PublishBatchRequestEntry::builder();
    let builder = if fifo { builder.message_deduplication_id(&m.id).message_group_id(&m.account) } else { builder };
    builder
        .id(id.to_string())
        .subject(&m.subject)
        .message(m.structured())
        .message_structure("json")
        .message_attributes("severity", attribute(m.severity.as_str())?)
        .message_attributes("check", attribute(&m.check)?)
        .message_attributes("account", attribute(&m.account)?)
        .message_attributes("finding_id", attribute(&m.id)?)
        .build()
        .map_err(|e| format!("message {id}: {e}"))
}

/// FIFO topic names end in exactly `.fifo` (SNS compares case-sensitively).
#[allow(clippy::case_sensitive_file_extension_comparisons)]
fn is_fifo(topic_arn: &str) -> bool {
    topic_arn.ends_with(".fifo")
}

/// Groups consecutive messages into batches within SNS's entry and size limits.
fn batches(messages: &[Message]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let len = m.structured_len() + m.subject.len() + 256;
        if i > start && (i - start == BATCH_ENTRIES || bytes + len > BATCH_BYTES) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < messages.len() {
        out.push(start..messages.len());
    }
    out
}

impl FindingsSink for SnsSink {
    async fn publish(&self, messages: &[Message], stop_by: Option<Instant>) -> Result<usize, PublishError> {
        let total = messages.len();
        let mut sent: Vec<String> = Vec::new();
        let fail = |sent: &Vec<String>, failed: String| PublishError {
            published: sent.len(),
            total,
            failed,
            deadline: false,
            sent: sent.clone(),
        };
        for range in batches(messages) {
            if stop_by.is_some_and(|t| Instant::now() >= t) {
                return Err(PublishError {
                    deadline: true,
                    ..fail(&sent, "stopped before the Lambda deadline".into())
                });
            }
            let mut pending = range
                .clone()
                .map(|i| entry(i, &messages[i], is_fifo(&self.topic_arn)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(&sent, e))?;
            for round in 0..=ENTRY_RETRIES {
                let out = self
                    .client
                    .publish_batch()
                    .topic_arn(&self.topic_arn)
                    .set_publish_batch_request_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| fail(&sent, call_error("sns:Publish", &self.topic_arn, &e).to_string()))?;
                // Entry ids are the messages' indexes.
                sent.extend(
                    out.successful()
                        .iter()
                        .filter_map(|ok| ok.id().and_then(|i| i.parse::<usize>().ok()))
                        .filter_map(|i| messages.get(i).map(|m| m.id.clone())),
                );
                let failed = out.failed();
                if failed.is_empty() {
                    break;
                }
                if failed.iter().any(aws_sdk_sns::types::BatchResultErrorEntry::sender_fault) || round == ENTRY_RETRIES
                {
                    let detail: Vec<String> = failed
                        .iter()
                        .map(|f| format!("entry {}: {} {}", f.id(), f.code(), f.message().unwrap_or_default()))
                        .collect();
                    return Err(fail(
                        &sent,
                        format!("sns:Publish to {} rejected {}", self.topic_arn, detail.join("; ")),
                    ));
                }
                // Resend only the entries that failed, so subscribers get no duplicates.
                pending.retain(|e| failed.iter().any(|f| f.id() == e.id()));
            }
        }
        Ok(sent.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    fn msg(bytes: usize) -> Message {
        Message {
            subject: "s".into(),
            body: "x".repeat(bytes),
            email: String::new(),
            chat: String::new(),
            severity: Severity::Low,
            check: "c".into(),
            account: "1".into(),
            id: "0".into(),
        }
    }

    #[test]
    fn fifo_topics_deduplicate_on_the_finding_id() {
        let standard = entry(0, &msg(1), false).unwrap();
        assert_eq!(standard.message_deduplication_id(), None);
        assert_eq!(standard.message_attributes().unwrap()["finding_id"].string_value(), Some("0"));
        let fifo = entry(0, &msg(1), true).unwrap();
        assert_eq!(fifo.message_deduplication_id(), Some("0"));
        assert_eq!(fifo.message_group_id(), Some("1"));
    }

    #[test]
    fn an_entry_is_one_structured_message_with_a_rendering_per_protocol() {
        let f = crate::render::chat::tests::alice();
        let m = Message::finding(&f);
        let e = entry(0, &m, false).unwrap();
        assert_eq!(e.message_structure(), Some("json"));
        assert_eq!(e.subject(), Some("[HIGH] exception-unapproved: alice"));
        let doc: serde_json::Value = serde_json::from_str(e.message()).unwrap();
        assert_eq!(doc["default"].as_str(), Some(m.body.as_str()));
        assert_eq!(doc["email"].as_str(), Some(m.email.as_str()));
        assert_eq!(doc["https"].as_str(), Some(m.chat.as_str()));
        let attrs = e.message_attributes().unwrap();
        for (k, v) in [("severity", "high"), ("check", "exception-unapproved"), ("account", "123456789012")] {
            assert_eq!(attrs[k].string_value(), Some(v));
        }
    }

    #[test]
    fn batches_respect_entry_and_size_limits() {
        let small: Vec<Message> = (0..25).map(|_| msg(100)).collect();
        assert_eq!(batches(&small), [0..10, 10..20, 20..25]);
        let big = vec![msg(200_000), msg(200_000), msg(10)];
        assert_eq!(batches(&big), [0..1, 1..3]);
        assert!(batches(&[]).is_empty());
    }
}
