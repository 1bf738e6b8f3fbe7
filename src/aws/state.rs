//! The state table in DynamoDB (`STATE_TABLE`): finding threads, event ids and the action
//! journal, one table with a partition per kind and account.
//!
//! | item | `pk` | `sk` | expires (`expires_at`, TTL) |
//! |---|---|---|---|
//! | thread | `T#<account>` | thread id | 90 days after it is resolved |
//! | event | `E#<account>` | CloudTrail `eventID` | 7 days after it was claimed |
//! | journal entry | `A#<account>` | `<finding id>#<time>#<kind>` | never |
//!
//! Journal entries also carry `user_key` (`<account>#<user>`) and `at`, the keys of the
//! `by-user` index that `history` reads. Calls grow with changes, not users: an account's
//! threads are one paged Query; writes are `BatchWriteItem` (25 a call) for what changed.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::call_error;
use crate::ports::{BoxFuture, EventClaim, StateError, StateStore, ThreadsRead};
use crate::state::journal::JournalEntry;
use crate::state::{RESOLVED_RETENTION_DAYS, ThreadRecord};

/// Event ids are kept this long: EventBridge and Lambda redeliver within hours, not days.
const EVENT_RETENTION_DAYS: i64 = 7;
/// `BatchWriteItem` takes at most 25 requests.
const WRITE_BATCH: usize = 25;
/// `BatchGetItem` takes at most 100 keys.
const GET_BATCH: usize = 100;
/// Unprocessed items (throttling) are sent again this many times before the write fails.
const UNPROCESSED_RETRIES: usize = 5;
/// The index `history` reads.
pub const BY_USER_INDEX: &str = "by-user";

type Item = HashMap<String, AttributeValue>;

/// The state table, optionally bound to one account (organization mode's per-account apps).
#[derive(Debug, Clone)]
pub struct DynamoState {
    client: Client,
    table: String,
    account: Option<String>,
}

impl DynamoState {
    /// The table `table`, for every account.
    #[must_use]
    pub fn new(client: Client, table: String) -> Self {
        DynamoState { client, table, account: None }
    }

    /// The same table, refusing to read or write any account but `account`.
    #[must_use]
    pub fn for_account(&self, account: &str) -> Self {
        DynamoState { account: Some(account.to_owned()), ..self.clone() }
    }

    fn err(&self, action: &'static str, message: String) -> StateError {
        StateError { action, table: self.table.clone(), message }
    }

    fn sdk_err<E, R>(&self, action: &'static str, e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> StateError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        self.err(action, call_error(action, &self.table, e).message)
    }

    fn allowed(&self, action: &'static str, account: &str) -> Result<(), StateError> {
        match &self.account {
            Some(mine) if mine != account => Err(self
                .err(action, format!("this run is bound to account {mine}'s records and refuses account {account}'s"))),
            _ => Ok(()),
        }
    }

    async fn query(
        &self,
        request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StateError> {
        let mut pages = request.into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.sdk_err("dynamodb:Query", &e))?;
            items.extend(page.items.unwrap_or_default());
        }
        Ok(items)
    }

    /// After a batch round with `left` items unprocessed: `true` when none is left; otherwise it
    /// backs off (unprocessed items mean throttling) before the rest is sent again, or fails
    /// naming `action` once the retries are spent.
    async fn round_done(&self, action: &'static str, round: usize, left: usize) -> Result<bool, StateError> {
        if left == 0 {
            return Ok(true);
        }
        if round == UNPROCESSED_RETRIES {
            return Err(self.err(
                action,
                format!("{left} item(s) still unprocessed after {UNPROCESSED_RETRIES} retries (throttled)"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
        Ok(false)
    }

    async fn batch_write(&self, items: Vec<Item>) -> Result<(), StateError> {
        for chunk in items.chunks(WRITE_BATCH) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build().map_err(|e| e.to_string())?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, String>>()
                .map_err(|e| self.err("dynamodb:BatchWriteItem", e))?;
            for round in 0..=UNPROCESSED_RETRIES {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("dynamodb:BatchWriteItem", &e))?;
                pending = out.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
                if self.round_done("dynamodb:BatchWriteItem", round, pending.len()).await? {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StateError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(GET_BATCH) {
            let mut pending = chunk.to_vec();
            for round in 0..=UNPROCESSED_RETRIES {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| self.err("dynamodb:BatchGetItem", e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.sdk_err("dynamodb:BatchGetItem", &e))?;
                found.extend(out.responses.and_then(|mut m| m.remove(&self.table)).unwrap_or_default());
                pending =
                    out.unprocessed_keys.and_then(|mut m| m.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
                if self.round_done("dynamodb:BatchGetItem", round, pending.len()).await? {
                    break;
                }
            }
        }
        Ok(found)
    }
}

/// The message ids an event item says were sent.
fn sent_of(item: Option<&Item>) -> HashSet<String> {
    item.and_then(|i| i.get("sent")).and_then(|v| v.as_ss().ok()).into_iter().flatten().cloned().collect()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn epoch(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(t.timestamp().to_string())
}

/// A JSON value as a DynamoDB attribute (numbers as `N`, objects as `M`, arrays as `L`).
fn to_attribute(v: &Value) -> AttributeValue {
    match v {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(x) => s(x.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attribute).collect()),
        Value::Object(o) => AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect()),
    }
}

/// A DynamoDB attribute as JSON (the inverse of [`to_attribute`] for what it writes).
fn to_json(a: &AttributeValue) -> Value {
    match a {
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::N(n) => {
            n.parse::<serde_json::Number>().map_or_else(|_| Value::String(n.clone()), Value::Number)
        }
        AttributeValue::S(x) => Value::String(x.clone()),
        AttributeValue::L(l) => Value::Array(l.iter().map(to_json).collect()),
        AttributeValue::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        AttributeValue::Ss(l) => Value::Array(l.iter().cloned().map(Value::String).collect()),
        _ => Value::Null,
    }
}

/// An item from a serialisable record plus its keys.
fn item_of<T: serde::Serialize>(record: &T, pk: String, sk: String) -> Result<Item, String> {
    let Value::Object(fields) = serde_json::to_value(record).map_err(|e| e.to_string())? else {
        return Err("a record is not an object".into());
    };
    let mut item: Item = fields.iter().map(|(k, v)| (k.clone(), to_attribute(v))).collect();
    item.extend(key(pk, sk));
    Ok(item)
}

/// The record an item holds; the error names the item's key and what is wrong.
fn record_of<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, String> {
    let fields: serde_json::Map<String, Value> = item
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "pk" | "sk" | "expires_at" | "user_key"))
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect();
    serde_json::from_value(Value::Object(fields)).map_err(|e| {
        let name = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map_or("?", String::as_str).to_owned();
        format!("{}/{}: {e}", name("pk"), name("sk"))
    })
}

fn read_threads(items: &[Item]) -> ThreadsRead {
    let mut read = ThreadsRead::default();
    for item in items {
        match record_of::<ThreadRecord>(item) {
            Ok(r) => read.records.push(r),
            Err(e) => read.malformed.push(e),
        }
    }
    read
}

fn thread_item(r: &ThreadRecord) -> Result<Item, String> {
    let mut item = item_of(r, format!("T#{}", r.account), r.thread.clone())?;
    if let Some(at) = r.resolved_at.filter(|_| !r.is_open()) {
        item.insert("expires_at".into(), epoch(at + Duration::days(RESOLVED_RETENTION_DAYS)));
    }
    Ok(item)
}

impl StateStore for DynamoState {
    fn table(&self) -> &str {
        &self.table
    }

    fn threads<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<ThreadsRead, StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:Query", account)?;
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("T#{account}")));
            Ok(read_threads(&self.query(request).await?))
        })
    }

    fn threads_of<'a>(
        &'a self,
        account: &'a str,
        threads: &'a [String],
    ) -> BoxFuture<'a, Result<ThreadsRead, StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:BatchGetItem", account)?;
            let unique: HashSet<&String> = threads.iter().collect();
            if unique.is_empty() {
                return Ok(ThreadsRead::default());
            }
            let keys = unique.into_iter().map(|t| key(format!("T#{account}"), t.clone())).collect();
            Ok(read_threads(&self.batch_get(keys).await?))
        })
    }

    fn write_threads<'a>(&'a self, records: &'a [ThreadRecord]) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            for r in records {
                self.allowed("dynamodb:BatchWriteItem", &r.account)?;
            }
            let items = records
                .iter()
                .map(thread_item)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.err("dynamodb:BatchWriteItem", e))?;
            self.batch_write(items).await
        })
    }

    fn claim_event<'a>(
        &'a self,
        account: &'a str,
        event_id: &'a str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<EventClaim, StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:PutItem", account)?;
            let mut item = key(format!("E#{account}"), event_id.to_owned());
            item.insert("status".into(), s("in-progress"));
            item.insert("claimed_at".into(), s(now.to_rfc3339()));
            item.insert("lease_until".into(), epoch(lease_until));
            item.insert("expires_at".into(), epoch(now + Duration::days(EVENT_RETENTION_DAYS)));
            // Taken when new, or when an earlier attempt released or lost its lease (a retry).
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk) OR (#status = :pending AND lease_until < :now)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":pending", s("in-progress"))
                .expression_attribute_values(":now", epoch(now))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match put {
                Ok(out) => {
                    // An attempt that died holding its lease is taken over: keep what it sent.
                    let sent = sent_of(out.attributes.as_ref());
                    return Ok(if out.attributes.is_some() { EventClaim::Retry { sent } } else { EventClaim::First });
                }
                Err(e) => match e.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                        match c.item.clone() {
                            Some(item) => item,
                            None => self.get(format!("E#{account}"), event_id.to_owned()).await?.unwrap_or_default(),
                        }
                    }
                    _ => return Err(self.sdk_err("dynamodb:PutItem", &e)),
                },
            };
            let text = |k: &str| old.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let number = |k: &str| old.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
            let sent = sent_of(Some(&old));
            match text("status").as_str() {
                "done" => Ok(EventClaim::Done { at: text("finished_at").parse().unwrap_or(now) }),
                "released" => {
                    // A failed attempt released it: take it over, keeping what it sent.
                    let mut retake = item;
                    if !sent.is_empty() {
                        retake.insert("sent".into(), AttributeValue::Ss(sent.iter().cloned().collect()));
                    }
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(retake))
                        .condition_expression("#status = :released")
                        .expression_attribute_names("#status", "status")
                        .expression_attribute_values(":released", s("released"))
                        .send()
                        .await
                        .map_err(|e| self.sdk_err("dynamodb:PutItem", &e))?;
                    Ok(EventClaim::Retry { sent })
                }
                _ => Ok(EventClaim::InProgress {
                    until: number("lease_until").and_then(|t| DateTime::from_timestamp(t, 0)).unwrap_or(lease_until),
                }),
            }
        })
    }

    fn finish_event<'a>(
        &'a self,
        account: &'a str,
        event_id: &'a str,
        sent: &'a [String],
        done: bool,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:UpdateItem", account)?;
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(format!("E#{account}"), event_id.to_owned())))
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", s(if done { "done" } else { "released" }))
                .expression_attribute_values(":at", s(now.to_rfc3339()));
            let mut expression = "SET #status = :status, finished_at = :at".to_owned();
            if !sent.is_empty() {
                expression.push_str(" ADD sent :sent");
                update = update.expression_attribute_values(":sent", AttributeValue::Ss(sent.to_vec()));
            }
            update.update_expression(expression).send().await.map_err(|e| self.sdk_err("dynamodb:UpdateItem", &e))?;
            Ok(())
        })
    }

    fn journal<'a>(&'a self, entry: &'a JournalEntry) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:PutItem", &entry.account)?;
            let mut item = item_of(entry, format!("A#{}", entry.account), entry.sort_key())
                .map_err(|e| self.err("dynamodb:PutItem", e))?;
            item.insert("user_key".into(), s(format!("{}#{}", entry.account, entry.user)));
            // An entry is never overwritten: the journal only grows.
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map_err(|e| self.sdk_err("dynamodb:PutItem", &e))?;
            Ok(())
        })
    }

    fn actions_of<'a>(
        &'a self,
        account: &'a str,
        finding_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<JournalEntry>, StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:Query", account)?;
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :finding)")
                .expression_attribute_values(":pk", s(format!("A#{account}")))
                .expression_attribute_values(":finding", s(format!("{finding_id}#")))
                .consistent_read(true);
            self.entries(&self.query(request).await?)
        })
    }

    fn history<'a>(&'a self, account: &'a str, user: &'a str) -> BoxFuture<'a, Result<Vec<JournalEntry>, StateError>> {
        Box::pin(async move {
            self.allowed("dynamodb:Query", account)?;
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_USER_INDEX)
                .key_condition_expression("user_key = :user")
                .expression_attribute_values(":user", s(format!("{account}#{user}")));
            let mut entries = self.entries(&self.query(request).await?)?;
            entries.sort_by_key(|e| e.at);
            Ok(entries)
        })
    }
}

impl DynamoState {
    /// One item by key, read consistently.
    async fn get(&self, pk: String, sk: String) -> Result<Option<Item>, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_err("dynamodb:GetItem", &e))?;
        Ok(out.item)
    }

    /// Journal entries from items; a malformed one is an error (undo must not guess).
    fn entries(&self, items: &[Item]) -> Result<Vec<JournalEntry>, StateError> {
        items
            .iter()
            .map(|i| {
                record_of::<JournalEntry>(i)
                    .map_err(|e| self.err("dynamodb:Query", format!("malformed journal entry {e}")))
            })
            .collect()
    }
}

/// Root sessions are kept a day: `AssumeRoot` sessions last at most 15 minutes.
const ROOT_SESSION_RETENTION_HOURS: i64 = 24;

/// `AssumeRoot` sessions, under `R#<target account>` / `<access key id>`, expiring after a day.
/// A session is recorded by the caller's account (the management or delegated-administrator
/// account) about its target, so recording is not bound to the store's account; finding one
/// is (a member's records are paired in that member's part only).
impl crate::ports::RootSessionLog for DynamoState {
    fn record_root_session<'a>(
        &'a self,
        session: &'a crate::ports::RootSession,
    ) -> BoxFuture<'a, Result<(), crate::ports::CallError>> {
        Box::pin(async move {
            let call = |message: String| crate::ports::CallError {
                action: "dynamodb:PutItem",
                target: format!("{} (root session {})", self.table, session.access_key_id),
                message,
            };
            let mut item = item_of(session, format!("R#{}", session.target_account), session.access_key_id.clone())
                .map_err(call)?;
            item.insert("expires_at".into(), epoch(session.started_at + Duration::hours(ROOT_SESSION_RETENTION_HOURS)));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| call_error("dynamodb:PutItem", &self.table, &e))?;
            Ok(())
        })
    }

    fn find_root_session<'a>(
        &'a self,
        target_account: &'a str,
        access_key_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::ports::RootSession>, crate::ports::CallError>> {
        Box::pin(async move {
            let call = |e: StateError| crate::ports::CallError {
                action: e.action,
                target: format!("{} (root session {access_key_id})", self.table),
                message: e.message,
            };
            self.allowed("dynamodb:GetItem", target_account).map_err(call)?;
            let Some(item) = self.get(format!("R#{target_account}"), access_key_id.to_owned()).await.map_err(call)?
            else {
                return Ok(None);
            };
            record_of(&item).map(Some).map_err(|e| crate::ports::CallError {
                action: "dynamodb:GetItem",
                target: self.table.clone(),
                message: format!("malformed root session {e}"),
            })
        })
    }
}

#[cfg(test)]
mod tests;
