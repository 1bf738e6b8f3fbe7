use super::*;

#[test]
fn attributes_round_trip_json() {
    let v = serde_json::json!({"a": "x", "n": 3, "b": true, "l": ["y", 1], "m": {"k": "v"}, "z": null});
    assert_eq!(to_json(&to_attribute(&v)), v);
}

#[test]
fn a_malformed_item_names_its_key() {
    let item: Item = HashMap::from([
        ("pk".to_owned(), s("T#111122223333")),
        ("sk".to_owned(), s("abc")),
        ("severity".to_owned(), s("catastrophic")),
    ]);
    let read = read_threads(&[item]);
    assert!(read.records.is_empty());
    assert_eq!(read.malformed.len(), 1);
    assert!(read.malformed[0].starts_with("T#111122223333/abc: "), "{}", read.malformed[0]);
}

fn record(thread: &str) -> ThreadRecord {
    ThreadRecord {
        thread: thread.into(),
        account: "111122223333".into(),
        region: "us-east-1".into(),
        check: crate::finding::CheckId::ConsoleWithoutMfa,
        principal: "arn:aws:iam::111122223333:user/dave".into(),
        user: Some("dave".into()),
        resource: None,
        severity: crate::finding::Severity::High,
        state: crate::finding::FindingState::Open,
        first_seen: "2026-12-01T06:00:00Z".parse().unwrap(),
        last_announced: None,
        remediation: None,
        trigger: "schedule".into(),
        message: "m".into(),
        resolved_at: None,
    }
}

/// What DynamoDB answers when it throttles part of a batch: the items it did not write.
fn unprocessed(table: &str) -> aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput {
    let item = thread_item(&record("t1")).unwrap();
    let put = PutRequest::builder().set_item(Some(item)).build().unwrap();
    aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput::builder()
        .unprocessed_items(table, vec![WriteRequest::builder().put_request(put).build()])
        .build()
}

#[tokio::test(start_paused = true)]
async fn throttled_items_are_sent_again_then_the_write_fails_by_name() {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let once = mock!(Client::batch_write_item)
        .sequence()
        .output(|| unprocessed("state"))
        .output(|| aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput::builder().build())
        .build();
    let store = DynamoState::new(mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&once]), "state".into());
    store.write_threads(&[record("t1"), record("t2")]).await.unwrap();
    assert_eq!(once.num_calls(), 2, "the unprocessed item is sent again, once");

    let always = mock!(Client::batch_write_item).then_output(|| unprocessed("state"));
    let store = DynamoState::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&always]), "state".into());
    let err = store.write_threads(&[record("t1")]).await.unwrap_err();
    assert_eq!(always.num_calls(), UNPROCESSED_RETRIES + 1);
    assert_eq!(
        err.to_string(),
        "state table state: dynamodb:BatchWriteItem failed: 1 item(s) still unprocessed after 5 retries (throttled)"
    );
}

#[tokio::test]
async fn an_account_bound_store_writes_no_other_account() {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let rule = mock!(Client::batch_write_item)
        .then_output(|| aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput::builder().build());
    let store = DynamoState::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]), "state".into())
        .for_account("444455556666");
    let err = store.write_threads(&[record("t1")]).await.unwrap_err();
    assert!(err.to_string().contains("refuses account 111122223333's"), "{err}");
    assert_eq!(rule.num_calls(), 0, "nothing sent");
}
