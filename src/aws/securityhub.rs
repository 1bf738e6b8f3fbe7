//! Security Hub: findings imported with `BatchImportFindings` (at most 100 per call), open
//! findings read back with `GetFindings` (100 per page) for the scan's lifecycle.

use std::collections::HashMap;

use aws_sdk_securityhub::Client;
use aws_sdk_securityhub::error::ProvideErrorMetadata;
use aws_sdk_securityhub::types::{AwsSecurityFinding, AwsSecurityFindingFilters, StringFilter, StringFilterComparison};
use serde_json::Value;
use tokio::time::Instant;

use super::call_error;
use crate::ports::{BoxFuture, FindingsStore, StoreError, StoredFinding};
use crate::render::asff;

/// `BatchImportFindings` takes at most 100 findings.
const BATCH_FINDINGS: usize = 100;
/// `GetFindings` returns at most 100 findings per page.
const PAGE_SIZE: i32 = 100;
/// Findings rejected with a retryable error are sent again this many times.
const ENTRY_RETRIES: usize = 2;
const IMPORT: &str = "securityhub:BatchImportFindings";
const GET: &str = "securityhub:GetFindings";

/// Imports into, and reads from, the account's default product in one region.
#[derive(Debug, Clone)]
pub struct SecurityHubStore {
    client: Client,
    region: String,
}

impl SecurityHubStore {
    /// The store of the region the client is configured for.
    #[must_use]
    pub fn new(client: Client, region: String) -> Self {
        SecurityHubStore { client, region }
    }

    async fn import_all(&self, documents: &[Value], stop_by: Option<Instant>) -> Result<usize, StoreError> {
        let total = documents.len();
        let mut imported = 0;
        for batch in documents.chunks(BATCH_FINDINGS) {
            let fail = |imported, message: String, not_enabled| StoreError {
                action: IMPORT,
                imported,
                total,
                message,
                not_enabled,
            };
            if stop_by.is_some_and(|t| Instant::now() >= t) {
                return Err(fail(imported, "stopped before the Lambda deadline".into(), false));
            }
            let mut pending: Vec<&Value> = batch.iter().collect();
            for round in 0..=ENTRY_RETRIES {
                // The request body is the rendered ASFF (render::asff, the same document the CLI
                // prints) rather than the SDK's typed builders, which would restate the mapping of
                // every field; the body is replaced before the request is signed.
                let body = serde_json::json!({ "Findings": pending }).to_string();
                let out = self
                    .client
                    .batch_import_findings()
                    .set_findings(Some(Vec::new()))
                    .customize()
                    .mutate_request(move |req| {
                        req.headers_mut().insert("content-length", body.len().to_string());
                        *req.body_mut() = body.clone().into();
                    })
                    .send()
                    .await
                    .map_err(|e| {
                        let not_enabled = e.code() == Some("InvalidAccessException");
                        fail(imported, call_error(IMPORT, &self.region, &e).message, not_enabled)
                    })?;
                let failed = out.failed_findings();
                imported += pending.len().saturating_sub(failed.len());
                if failed.is_empty() {
                    break;
                }
                let permanent = failed.iter().any(|f| {
                    let code = f.error_code().unwrap_or_default();
                    code.contains("Invalid") || code.contains("SizeExceeded") || code.contains("AccessDenied")
                });
                if permanent || round == ENTRY_RETRIES {
                    let detail: Vec<String> = failed
                        .iter()
                        .map(|f| {
                            format!(
                                "{}: {} {}",
                                f.id().unwrap_or_default(),
                                f.error_code().unwrap_or_default(),
                                f.error_message().unwrap_or_default()
                            )
                        })
                        .collect();
                    return Err(fail(
                        imported,
                        format!("imported {imported} of {total} findings; rejected {}", detail.join("; ")),
                        false,
                    ));
                }
                // Send again only the findings that failed.
                pending.retain(|d| failed.iter().any(|f| f.id() == d["Id"].as_str()));
            }
        }
        Ok(imported)
    }

    async fn open(&self, account: &str) -> Result<Vec<StoredFinding>, StoreError> {
        let eq = |v: &str| StringFilter::builder().value(v).comparison(StringFilterComparison::Equals).build();
        let filters = AwsSecurityFindingFilters::builder()
            .product_arn(eq(&asff::product_arn(&self.region, account)))
            .product_name(eq(asff::PRODUCT_NAME))
            .aws_account_id(eq(account))
            .record_state(eq("ACTIVE"))
            .compliance_status(eq("FAILED"))
            .compliance_status(eq("WARNING"))
            .build();
        let mut pages = self.client.get_findings().filters(filters).max_results(PAGE_SIZE).into_paginator().send();
        let mut open = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| StoreError {
                action: GET,
                imported: 0,
                total: 0,
                message: call_error(GET, &self.region, &e).message,
                not_enabled: e.code() == Some("InvalidAccessException"),
            })?;
            open.extend(page.findings().iter().filter(|f| is_open(f)).filter_map(|f| stored(f, account)));
        }
        Ok(open)
    }
}

/// Active and not passed. The filters above already ask for this; checked again because an
/// emulator may ignore filters (moto 5.2 returns every finding from `GetFindings`).
fn is_open(f: &AwsSecurityFinding) -> bool {
    let active = f.record_state().is_none_or(|s| s.as_str() == "ACTIVE");
    let failing = f.compliance().and_then(|c| c.status()).is_some_and(|s| matches!(s.as_str(), "FAILED" | "WARNING"));
    active && failing
}

fn stored(f: &AwsSecurityFinding, account: &str) -> Option<StoredFinding> {
    if f.aws_account_id() != Some(account) {
        return None;
    }
    let empty = HashMap::new();
    asff::stored_finding(
        f.id()?,
        f.generator_id()?,
        account,
        f.region().unwrap_or_default(),
        f.description().unwrap_or_default(),
        f.created_at(),
        f.product_fields().unwrap_or(&empty),
    )
}

impl FindingsStore for SecurityHubStore {
    fn import<'a>(
        &'a self,
        documents: &'a [Value],
        stop_by: Option<Instant>,
    ) -> BoxFuture<'a, Result<usize, StoreError>> {
        Box::pin(self.import_all(documents, stop_by))
    }

    fn open_findings<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<Vec<StoredFinding>, StoreError>> {
        Box::pin(self.open(account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_securityhub::error::ErrorMetadata;
    use aws_sdk_securityhub::operation::batch_import_findings::{BatchImportFindingsError, BatchImportFindingsOutput};
    use aws_sdk_securityhub::types::ImportFindingsError;
    use aws_sdk_securityhub::types::error::InvalidAccessException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn docs(n: usize) -> Vec<Value> {
        (0..n).map(|i| serde_json::json!({ "Id": format!("iam-sentinel/x/{i}") })).collect()
    }

    fn rejected(id: &str, code: &str) -> ImportFindingsError {
        ImportFindingsError::builder().id(id).error_code(code).error_message("m").build()
    }

    #[tokio::test]
    async fn imports_in_batches_of_100() {
        let ok = mock!(Client::batch_import_findings).then_output(|| BatchImportFindingsOutput::builder().build());
        let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&ok]);
        let store = SecurityHubStore::new(client, "us-east-1".into());
        assert_eq!(store.import(&docs(250), None).await.unwrap(), 250);
        assert_eq!(ok.num_calls(), 3);
    }

    #[tokio::test]
    async fn retryable_rejections_are_sent_again_and_permanent_ones_reported() {
        let partial = mock!(Client::batch_import_findings)
            .sequence()
            .output(|| {
                BatchImportFindingsOutput::builder()
                    .failed_findings(rejected("iam-sentinel/x/1", "InternalException"))
                    .build()
            })
            .output(|| BatchImportFindingsOutput::builder().build())
            .build();
        let client = mock_client!(aws_sdk_securityhub, RuleMode::Sequential, [&partial]);
        let store = SecurityHubStore::new(client, "us-east-1".into());
        assert_eq!(store.import(&docs(3), None).await.unwrap(), 3);
        assert_eq!(partial.num_calls(), 2);

        let bad = mock!(Client::batch_import_findings).then_output(|| {
            BatchImportFindingsOutput::builder().failed_findings(rejected("iam-sentinel/x/0", "InvalidInput")).build()
        });
        let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&bad]);
        let err = SecurityHubStore::new(client, "us-east-1".into()).import(&docs(2), None).await.unwrap_err();
        assert_eq!((err.imported, err.total, err.not_enabled), (1, 2, false));
        assert!(err.message.contains("iam-sentinel/x/0: InvalidInput"), "{err}");
        assert_eq!(bad.num_calls(), 1, "a permanent rejection is not retried");
    }

    #[tokio::test]
    async fn security_hub_not_enabled_is_named() {
        let not_enabled = mock!(Client::batch_import_findings).then_error(|| {
            let message = "Account 123456789012 is not subscribed to AWS Security Hub";
            BatchImportFindingsError::InvalidAccessException(
                InvalidAccessException::builder()
                    .message(message)
                    .meta(ErrorMetadata::builder().code("InvalidAccessException").message(message).build())
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&not_enabled]);
        let err = SecurityHubStore::new(client, "us-east-1".into()).import(&docs(1), None).await.unwrap_err();
        assert!(err.not_enabled, "{err:?}");
        assert!(err.to_string().contains("Security Hub is not enabled here"), "{err}");
    }

    #[tokio::test]
    async fn retryable_rejections_that_persist_run_out_of_retries_and_are_reported() {
        let always = mock!(Client::batch_import_findings).then_output(|| {
            BatchImportFindingsOutput::builder()
                .failed_findings(rejected("iam-sentinel/x/1", "InternalException"))
                .build()
        });
        let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&always]);
        let err = SecurityHubStore::new(client, "us-east-1".into()).import(&docs(3), None).await.unwrap_err();
        assert_eq!(always.num_calls(), 1 + ENTRY_RETRIES, "the first send and every retry, no more");
        assert_eq!((err.imported, err.total, err.not_enabled), (2, 3, false));
        assert!(err.message.contains("iam-sentinel/x/1: InternalException"), "{err}");
    }

    #[tokio::test]
    async fn a_deadline_reached_stops_the_import_before_the_next_batch_saying_so() {
        let ok = mock!(Client::batch_import_findings).then_output(|| BatchImportFindingsOutput::builder().build());
        let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&ok]);
        let store = SecurityHubStore::new(client, "us-east-1".into());
        let err = store.import(&docs(150), Some(Instant::now())).await.unwrap_err();
        assert_eq!(ok.num_calls(), 0, "nothing sent once the deadline is reached");
        assert_eq!((err.imported, err.total), (0, 150));
        assert!(err.message.contains("stopped before the Lambda deadline"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_call_fails_the_import_with_its_reason() {
        let refused = mock!(Client::batch_import_findings).then_error(|| {
            BatchImportFindingsError::generic(
                ErrorMetadata::builder().code("AccessDeniedException").message("not allowed").build(),
            )
        });
        let client = mock_client!(aws_sdk_securityhub, RuleMode::MatchAny, [&refused]);
        let err = SecurityHubStore::new(client, "us-east-1".into()).import(&docs(1), None).await.unwrap_err();
        assert_eq!((err.imported, err.not_enabled), (0, false));
        assert!(err.message.contains("AccessDeniedException: not allowed"), "{err}");
    }
}
