//! The state table against moto, created from the template's own definition: a second
//! unchanged scan publishes the digest and no per-finding message, a fix gives exactly one
//! resolution in its thread, reminders come after `REMIND_DAYS`, an event delivered twice is
//! announced and acted on once, a retry after a partial publish sends only the rest, every
//! action is journaled and `undo` acts only on what the journal holds. What subscribers
//! receive is read from the SQS queue subscribed to the topic.

use std::collections::HashSet;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue as A, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use chrono::{Duration, Utc};
use iam_sentinel::app::{App, Report, RunOptions};
use iam_sentinel::aws::sns::SnsSink;
use iam_sentinel::message::Message;
use iam_sentinel::ports::{FindingsSink, PublishError, StateStore};
use iam_sentinel::runtime::build_app_with;
use serde_json::{Value, json};

use crate::common::{ACCOUNT, Account, Received, registry, sample};

/// The table's name in the tests (the stack derives its own).
pub(crate) const TABLE: &str = "iam-sentinel-state";

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string in the template, found {v}"))
}

/// Creates the state table exactly as `infra/template.yaml` defines `StateTable`: key schema,
/// attributes, indexes and TTL attribute are read from the template, never kept here.
pub(crate) async fn create_state_table(sdk: &aws_config::SdkConfig) -> String {
    let template = crate::infra::template();
    let props = &crate::infra::resource(&template, "StateTable")["Properties"];
    let key_schema = |v: &Value| -> Vec<KeySchemaElement> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                KeySchemaElement::builder()
                    .attribute_name(text(&k["AttributeName"]))
                    .key_type(KeyType::from(text(&k["KeyType"])))
                    .build()
                    .unwrap()
            })
            .collect()
    };
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let mut create = client
        .create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::from(text(&props["BillingMode"])))
        .set_key_schema(Some(key_schema(&props["KeySchema"])));
    for a in props["AttributeDefinitions"].as_array().unwrap() {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&a["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(text(&a["AttributeType"])))
                .build()
                .unwrap(),
        );
    }
    for index in props["GlobalSecondaryIndexes"].as_array().unwrap() {
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(text(&index["IndexName"]))
                .set_key_schema(Some(key_schema(&index["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(text(&index["Projection"]["ProjectionType"])))
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    create.send().await.unwrap();
    let ttl = &props["TimeToLiveSpecification"];
    client
        .update_time_to_live()
        .table_name(TABLE)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(text(&ttl["AttributeName"]))
                .enabled(text(&ttl["Enabled"]) == "true")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    TABLE.to_owned()
}

#[test]
fn the_template_keeps_the_table_safe_and_the_role_scoped_to_it() {
    let t = crate::infra::template();
    let table = crate::infra::resource(&t, "StateTable");
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], "true");
    assert_eq!(p["SSESpecification"]["SSEType"], "KMS");
    assert_eq!(p["SSESpecification"]["KMSMasterKeyId"], "!GetAtt FindingsKey.Arn", "the stack's own key");
    assert_eq!(p["TimeToLiveSpecification"]["Enabled"], "true");
    let grants: Vec<&Value> = crate::infra::role_statements(&t)
        .into_iter()
        .filter(|s| crate::infra::actions(s).iter().any(|a| a.starts_with("dynamodb:")))
        .collect();
    assert_eq!(grants.len(), 1, "one statement grants DynamoDB");
    assert_eq!(
        grants[0]["Resource"],
        json!(["!GetAtt StateTable.Arn", "!Sub ${StateTable.Arn}/index/by-user"]),
        "the state table and its index only"
    );
    assert!(!crate::infra::actions(grants[0]).contains(&"dynamodb:DeleteItem"), "the journal only grows");
    let env = &crate::infra::resource(&t, "Function")["Properties"]["Environment"]["Variables"];
    assert_eq!(env["STATE_TABLE"], "!Ref StateTable");
    assert_eq!(env["REMIND_DAYS"], "!Ref RemindDays");
}

/// A user with a console password and no MFA (console-without-mfa, high), one with an
/// unapproved exception tag (high; not remediated here), one low finding (rotation due soon).
async fn planted(acct: &Account) {
    acct.put_registry(&registry(&[])).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    acct.create_user("svc-build", &[]).await;
    acct.create_key("svc-build").await;
}

fn at(days: i64) -> RunOptions {
    RunOptions::at(Utc::now() + Duration::days(days))
}

fn checks(received: &[Received]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = received
        .iter()
        .map(|r| {
            let kind = r.finding["notice"]["kind"].as_str().unwrap_or("");
            (r.check().to_owned(), r.user().to_owned(), kind.to_owned())
        })
        .collect();
    v.sort();
    v
}

fn digests(received: &[Received]) -> Vec<&Received> {
    received.iter().filter(|r| r.attributes.get("check").map(String::as_str) == Some("digest")).collect()
}

fn per_finding(received: &[Received]) -> Vec<Received> {
    received.iter().filter(|r| r.attributes.get("check").map(String::as_str) != Some("digest")).cloned().collect()
}

#[tokio::test]
async fn day_two_is_quiet_a_fix_is_announced_once_and_reminders_follow_remind_days() {
    let acct = Account::new().await;
    planted(&acct).await;
    let table = create_state_table(&acct.sdk).await;
    let (app, counter) = build_app_with(acct.config(&[("STATE_TABLE", &table), ("REMIND_DAYS", "7")]), &acct.sdk);

    // Day 1: every high finding once, plus the digest.
    let day1 = Box::pin(app.scan(None, &at(0))).await.unwrap();
    assert_eq!(day1.failure, None);
    let received = acct.received().await;
    assert_eq!(digests(&received).len(), 1);
    assert_eq!(
        checks(&per_finding(&received)),
        [
            ("console-without-mfa".to_owned(), "analyst-dave".to_owned(), "new".to_owned()),
            ("exception-unapproved".to_owned(), "dev-mallory".to_owned(), "new".to_owned()),
        ]
    );
    let digest = &digests(&received)[0].finding["digest"];
    assert_eq!(digest["changes"]["new"], json!(day1.findings.len()), "{digest}");
    assert_eq!(digest["changes"]["previous_scan"], false);
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("dynamodb:Query"), Some(&1), "one paged Query reads the account's state: {calls:?}");
    assert_eq!(calls.get("dynamodb:BatchWriteItem"), Some(&1), "the new threads in one batch: {calls:?}");

    // Day 2, nothing changed: the digest alone, and not one write.
    let before = counter.snapshot().calls;
    let day2 = Box::pin(app.scan(None, &at(1))).await.unwrap();
    assert_eq!(day2.failure, None);
    let received = acct.received().await;
    assert!(per_finding(&received).is_empty(), "{:?}", checks(&received));
    assert_eq!(digests(&received).len(), 1);
    let changes = &digests(&received)[0].finding["digest"]["changes"];
    assert_eq!((changes["new"].clone(), changes["resolved"].clone()), (json!(0), json!(0)));
    assert_eq!(changes["still_open"], json!(day1.findings.len()));
    assert!(changes["oldest_open_since"].is_string());
    let after = counter.snapshot().calls;
    assert_eq!(after.get("dynamodb:BatchWriteItem"), before.get("dynamodb:BatchWriteItem"), "nothing written");

    // Day 3: dave enrols MFA. Exactly one resolution, in his finding's thread.
    acct.enable_mfa("analyst-dave").await;
    let day3 = Box::pin(app.scan(None, &at(2))).await.unwrap();
    let received = acct.received().await;
    let resolved = per_finding(&received);
    assert_eq!(
        checks(&resolved),
        [("console-without-mfa".to_owned(), "analyst-dave".to_owned(), "resolved".to_owned())]
    );
    assert_eq!(resolved[0].finding["state"], "resolved");
    let day1_dave = day1.findings.iter().find(|f| f.user.as_deref() == Some("analyst-dave")).unwrap();
    assert_eq!(day3.resolved[0].thread_id(), day1_dave.thread_id(), "the resolution is in the finding's thread");

    // Days 4 to 9 quiet; day 8 (7 days after day 1) reminds of mallory's open exception.
    let mut reminded = Vec::new();
    for day in 3..=9 {
        Box::pin(app.scan(None, &at(day))).await.unwrap();
        let received = per_finding(&acct.received().await);
        if !received.is_empty() {
            assert_eq!(
                checks(&received),
                [("exception-unapproved".to_owned(), "dev-mallory".to_owned(), "reminder".to_owned())]
            );
            reminded.push(day);
        }
    }
    assert_eq!(reminded, [7]);
}

/// A topic that accepts the first `accept` messages, then fails (once), as a throttled or
/// partly failing SNS would.
struct PartlyFailingTopic {
    inner: SnsSink,
    accept: Mutex<Option<usize>>,
}

impl FindingsSink for PartlyFailingTopic {
    async fn publish(
        &self,
        messages: &[Message],
        stop_by: Option<tokio::time::Instant>,
    ) -> Result<usize, PublishError> {
        let limit = self.accept.lock().unwrap().take();
        let Some(limit) = limit.filter(|l| *l < messages.len()) else {
            return self.inner.publish(messages, stop_by).await;
        };
        let sent = self.inner.publish(&messages[..limit], stop_by).await?;
        Err(PublishError {
            published: sent,
            total: messages.len(),
            failed: "sns:Publish failed: Throttled".into(),
            deadline: false,
            sent: messages[..limit].iter().map(|m| m.id.clone()).collect(),
        })
    }
}

#[tokio::test]
async fn an_event_delivered_twice_is_announced_and_acted_on_once_and_undone_from_the_journal() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    let table = create_state_table(&acct.sdk).await;
    let (app, counter) = build_app_with(acct.config(&[("STATE_TABLE", &table), ("AUTO_REMEDIATE", "true")]), &acct.sdk);
    let event = sample("tag-user-access-exception.json");

    let first = Box::pin(app.handle(event.clone(), &RunOptions::at(Utc::now()))).await.unwrap();
    assert_eq!(first.failure, None);
    let unapproved = first.findings.iter().find(|f| f.check.as_str() == "exception-unapproved").unwrap();
    assert_eq!(unapproved.remediation.as_ref().unwrap().status.as_str(), "applied");
    assert!(acct.tags("svc-legacy-erp").await.is_empty(), "untagged");
    let received = acct.received().await;
    assert_eq!(received.len(), first.findings.len());
    let untags = counter.snapshot().calls.get("iam:UntagUser").copied();

    // EventBridge delivers it again: ignored by id, nothing sent, nothing done.
    acct.tag("svc-legacy-erp", "AccessException", "True").await;
    let again = Box::pin(app.handle(event.clone(), &RunOptions::at(Utc::now()))).await.unwrap();
    let reason = serde_json::to_value(&again).unwrap()["reason"].as_str().unwrap().to_owned();
    assert!(reason.contains("already handled") && reason.contains("duplicate delivery"), "{reason}");
    assert!(acct.received().await.is_empty());
    assert_eq!(counter.snapshot().calls.get("iam:UntagUser").copied(), untags, "acted once");
    assert_eq!(acct.tags("svc-legacy-erp").await.len(), 1, "the duplicate removed nothing");

    // The action is in the journal: `history` lists it, `undo` needs no file.
    let cli = |args: &[&str]| {
        let out = acct.cli(args, &[("STATE_TABLE", &table)]);
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = cli(&["history", "svc-legacy-erp"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1 action(s)") && stdout.contains("AccessException=True -> AccessException absent"),
        "{stdout}"
    );
    assert!(stdout.contains(&unapproved.id), "{stdout}");
    // Unknown to the journal: refused with a reason, exit 2.
    let (code, _, stderr) = cli(&["undo", "0123456789abcdef0123456789abcdef"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("holds no action for finding 0123456789abcdef0123456789abcdef"), "{stderr}");
    // A record edited to point at another user: refused, naming the field.
    let mut forged: Value = serde_json::to_value(unapproved).unwrap();
    forged["evidence"]["undo"]["user"] = json!("admin-root-ops");
    let file = std::env::temp_dir().join(format!("iam-sentinel-forged-{}.json", std::process::id()));
    std::fs::write(&file, forged.to_string()).unwrap();
    let (code, _, stderr) = cli(&["undo", &unapproved.id, "--from", file.to_str().unwrap()]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "does not match the journal (user: file says \"admin-root-ops\", journal says \"svc-legacy-erp\")"
        ),
        "{stderr}"
    );
    // The genuine undo: refused while the registry does not approve the user, then done.
    acct.iam.untag_user().user_name("svc-legacy-erp").tag_keys("AccessException").send().await.unwrap();
    let later = (Utc::now() + Duration::days(30)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &later)])).await;
    let (code, stdout, stderr) = cli(&["undo", &unapproved.id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("tag svc-legacy-erp AccessException=True again"), "{stdout}");
    assert_eq!(acct.tags("svc-legacy-erp").await, [("AccessException".to_owned(), "True".to_owned())]);
    // Undone once: the journal says so.
    let (code, _, stderr) = cli(&["undo", &unapproved.id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("already undone"), "{stderr}");
    let (_, stdout, _) = cli(&["history", "svc-legacy-erp"]);
    assert!(stdout.contains("2 action(s)") && stdout.contains("undone"), "{stdout}");
}

#[tokio::test]
async fn a_retry_after_a_partial_publish_sends_only_what_was_not_sent() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    // Root's CreateAccessKey: root-used and more, several messages.
    let table = create_state_table(&acct.sdk).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    let config = acct.config(&[("STATE_TABLE", &table)]);
    let (base, _) = build_app_with(config, &acct.sdk);
    let app = App {
        sink: Some(PartlyFailingTopic { inner: base.sink.clone().unwrap(), accept: Mutex::new(Some(1)) }),
        findings_store: None,
        config: base.config.clone(),
        directory: base.directory.clone(),
        approvals: base.approvals.clone(),
        region: base.region.clone(),
        key_rotation: None,
        organization: None,
        state: base.state.clone(),
        root_sessions: None,
    };
    let mut event = sample("tag-user-access-exception.json");
    // Set by the user itself: exception-self-granted besides exception-unapproved (two messages).
    event["detail"]["userIdentity"] = json!({
        "type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::{ACCOUNT}:user/svc-legacy-erp"),
        "accountId": ACCOUNT, "userName": "svc-legacy-erp"
    });
    let first: Report = Box::pin(app.handle(event.clone(), &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(first.findings.len() >= 2, "{:?}", first.findings);
    assert_eq!(
        first.failures.iter().map(iam_sentinel::app::Failure::error_type).collect::<Vec<_>>(),
        ["FindingsIncomplete"]
    );
    let sent_first: HashSet<String> =
        acct.received().await.iter().map(|r| r.attributes["finding_id"].clone()).collect();
    assert_eq!(sent_first.len(), 1);
    // Lambda retries the same event: only the rest goes out.
    let retry = Box::pin(app.handle(event.clone(), &RunOptions::at(Utc::now()))).await.unwrap();
    assert_eq!(retry.failure, None);
    let sent_retry: HashSet<String> =
        acct.received().await.iter().map(|r| r.attributes["finding_id"].clone()).collect();
    assert!(sent_retry.is_disjoint(&sent_first), "nothing twice");
    let all: HashSet<String> = first.findings.iter().map(|f| f.id.clone()).collect();
    assert_eq!(sent_first.union(&sent_retry).cloned().collect::<HashSet<_>>(), all, "everything once");
    // And a third delivery is a duplicate.
    let third = Box::pin(app.handle(event, &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(third.findings.is_empty());
    assert!(acct.received().await.is_empty());
}

#[tokio::test]
async fn without_the_table_findings_are_still_published_and_the_run_fails_by_name() {
    let acct = Account::new().await;
    planted(&acct).await;
    // STATE_TABLE names a table that does not exist (deleted, or another region).
    let (app, _) = build_app_with(acct.config(&[("STATE_TABLE", "no-such-table")]), &acct.sdk);
    let report = Box::pin(app.scan(None, &at(0))).await.unwrap();
    let types: Vec<&str> = report.failures.iter().map(iam_sentinel::app::Failure::error_type).collect();
    assert_eq!(types, ["StateUnavailable"]);
    let failure = report.failure.unwrap();
    assert!(
        failure.contains("state table no-such-table: dynamodb:Query failed") && failure.contains("without memory"),
        "{failure}"
    );
    let received = acct.received().await;
    assert_eq!(digests(&received).len(), 1);
    assert_eq!(per_finding(&received).len(), 2, "every high finding announced, as without memory: nothing suppressed");
    // The event path too.
    let event = sample("tag-user-access-exception.json");
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    let report = Box::pin(app.handle(event, &RunOptions::at(Utc::now()))).await.unwrap();
    assert!(report.failures.iter().any(|f| f.error_type() == "StateUnavailable"));
    assert_eq!(acct.received().await.len(), report.findings.len());
}

#[tokio::test]
async fn a_malformed_record_is_reported_and_skipped_and_another_account_is_refused() {
    let acct = Account::new().await;
    planted(&acct).await;
    let table = create_state_table(&acct.sdk).await;
    let ddb = aws_sdk_dynamodb::Client::new(&acct.sdk);
    ddb.put_item()
        .table_name(&table)
        .item("pk", A::S(format!("T#{ACCOUNT}")))
        .item("sk", A::S("garbage".into()))
        .item("severity", A::S("catastrophic".into()))
        .send()
        .await
        .unwrap();
    let (app, _) = build_app_with(acct.config(&[("STATE_TABLE", &table)]), &acct.sdk);
    let report = Box::pin(app.scan(None, &at(0))).await.unwrap();
    assert_eq!(report.failure, None, "a bad record does not fail the run");
    assert_eq!(report.state_warnings.len(), 1);
    assert!(report.state_warnings[0].starts_with(&format!("T#{ACCOUNT}/garbage: ")), "{:?}", report.state_warnings);
    assert_eq!(per_finding(&acct.received().await).len(), 2);

    // Organization mode: a member account's store reads and writes that account's part only.
    let store = iam_sentinel::aws::state::DynamoState::new(ddb, table).for_account("111122223333");
    let err = store.threads(ACCOUNT).await.unwrap_err();
    assert!(
        err.to_string().contains("bound to account 111122223333's records and refuses account 123456789012's"),
        "{err}"
    );
    assert!(store.threads("111122223333").await.unwrap().records.is_empty());
}

#[test]
fn with_security_hub_the_table_decides_and_the_archive_follows_the_same_resolutions() {
    crate::security_hub::on_big_stack(security_hub_follows_the_table);
}

async fn security_hub_follows_the_table() {
    let acct = Account::new().await;
    planted(&acct).await;
    let table = create_state_table(&acct.sdk).await;
    let (app, counter) = build_app_with(acct.config(&[("STATE_TABLE", &table), ("SECURITY_HUB", "true")]), &acct.sdk);
    let first = Box::pin(app.scan(None, &at(0))).await.unwrap();
    assert_eq!(first.failure, None);
    assert_eq!(first.imported, first.findings.len());
    assert_eq!(per_finding(&acct.received().await).len(), 2);
    let dave = first.findings.iter().find(|f| f.check.as_str() == "console-without-mfa").unwrap().clone();

    acct.enable_mfa("analyst-dave").await;
    counter.reset();
    let second = Box::pin(app.scan(None, &at(1))).await.unwrap();
    assert_eq!(second.failure, None);
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("securityhub:GetFindings"), None, "the table, not Security Hub, says what is open");
    assert_eq!(second.resolved.len(), 1, "{:?}", second.resolved);
    assert_eq!(second.resolved[0].thread_id(), dave.thread_id());
    let received = per_finding(&acct.received().await);
    assert_eq!(
        checks(&received),
        [("console-without-mfa".to_owned(), "analyst-dave".to_owned(), "resolved".to_owned())]
    );
    // Security Hub archives exactly that finding, under the id it was imported with.
    let hub = aws_sdk_securityhub::Client::new(&acct.sdk);
    let id = iam_sentinel::render::asff::finding_id(&dave);
    // moto ignores GetFindings filters: read every finding and pick it by id.
    let found = hub.get_findings().max_results(100).send().await.unwrap();
    let f = found.findings().iter().find(|f| f.id() == Some(id.as_str())).expect("imported under its id");
    let active: Vec<&str> = found
        .findings()
        .iter()
        .filter(|f| f.record_state().map(aws_sdk_securityhub::types::RecordState::as_str) == Some("ACTIVE"))
        .filter_map(|f| f.id())
        .collect();
    assert_eq!(active.len(), second.findings.len(), "everything else stays open: {active:?}");
    assert_eq!(f.record_state().map(aws_sdk_securityhub::types::RecordState::as_str), Some("ARCHIVED"));
    assert_eq!(
        f.compliance().and_then(|c| c.status()).map(aws_sdk_securityhub::types::ComplianceStatus::as_str),
        Some("PASSED")
    );
    let archived: usize = second.imported - second.findings.len();
    assert_eq!(archived, 1, "the resolved finding, and nothing else, archived");
}

#[tokio::test]
async fn the_table_pairs_a_member_root_call_with_its_assume_root_for_a_day() {
    use iam_sentinel::ports::{RootSession, RootSessionLog};
    let acct = Account::new().await;
    let table = create_state_table(&acct.sdk).await;
    let ddb = aws_sdk_dynamodb::Client::new(&acct.sdk);
    let central = iam_sentinel::aws::state::DynamoState::new(ddb.clone(), table.clone()).for_account(ACCOUNT);
    let session = RootSession {
        target_account: "222233334444".into(),
        access_key_id: "ASIAEXAMPLEROOTSESSION".into(),
        caller: format!("arn:aws:sts::{ACCOUNT}:assumed-role/OrgAdmin/alice"),
        caller_account: ACCOUNT.into(),
        task: "IAMDeleteRootUserCredentials".into(),
        started_at: Utc::now(),
        source_ip: Some("192.0.2.10".into()),
        mfa: Some(true),
    };
    // Recorded by the management account's app about its target.
    central.record_root_session(&session).await.unwrap();
    let member = iam_sentinel::aws::state::DynamoState::new(ddb.clone(), table.clone()).for_account("222233334444");
    assert_eq!(
        member.find_root_session("222233334444", "ASIAEXAMPLEROOTSESSION").await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(member.find_root_session("222233334444", "ASIAOTHERKEY").await.unwrap(), None);
    // Another member's store cannot look into that member's part.
    let other = iam_sentinel::aws::state::DynamoState::new(ddb.clone(), table.clone()).for_account("555566667777");
    assert!(other.find_root_session("222233334444", "ASIAEXAMPLEROOTSESSION").await.is_err());
    // Kept a day (TTL), not forever.
    let item = ddb
        .get_item()
        .table_name(&table)
        .key("pk", A::S("R#222233334444".into()))
        .key("sk", A::S("ASIAEXAMPLEROOTSESSION".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert_eq!(expires, (session.started_at + Duration::hours(24)).timestamp());
}
