//! One publish, a message per protocol, against a real moto server: a raw SQS subscriber
//! gets exactly the JSON finding, a non-raw one the same JSON in its envelope, and an HTTPS
//! subscriber (where Amazon Q Developer listens) the custom notification; a chat endpoint
//! that rejects every message changes nothing for the others; the number of `PublishBatch`
//! calls does not grow with the number of protocols.
//!
//! moto 5.2 picks the subscriber's protocol key from a `MessageStructure=json` entry of
//! `PublishBatch` (or `default`) and delivers `sqs` and `http`/`https` synchronously; it
//! accepts `email` subscriptions but delivers nothing to them, so the e-mail rendering is
//! tested as a document (`src/render/email.rs`, `src/message.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::common::{ACCOUNT, Account, registry, sample};
use chrono::{Duration, Utc};
use iam_sentinel::app::RunOptions;
use iam_sentinel::message::Message;
use iam_sentinel::runtime::build_app_with;
use serde_json::Value;

/// A chat endpoint on loopback that records every POST body and answers `status`.
struct ChatEndpoint {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl ChatEndpoint {
    fn start(status: u16) -> ChatEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    seen.lock().unwrap().push(v);
                }
                let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        ChatEndpoint { url, bodies }
    }

    /// The custom notifications received (the `Message` of each SNS HTTP notification).
    fn notifications(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap();
        bodies.iter().map(|b| serde_json::from_str(b["Message"].as_str().unwrap()).unwrap()).collect()
    }
}

/// A second queue subscribed with raw message delivery; its URL.
async fn raw_queue(acct: &Account) -> String {
    let url = acct.sqs.create_queue().queue_name("raw-subscriber").send().await.unwrap().queue_url.unwrap();
    let arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:raw-subscriber");
    acct.sns
        .subscribe()
        .topic_arn(&acct.topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    url
}

/// Every body waiting on `queue`, with its message attributes.
async fn drain(acct: &Account, queue: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut all = Vec::new();
    loop {
        let out = acct
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() {
            return all;
        }
        for m in msgs {
            let mut attrs: Vec<(String, String)> = m
                .message_attributes()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default();
            attrs.sort();
            all.push((m.body().unwrap_or_default().to_owned(), attrs));
            acct.sqs
                .delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

async fn subscribe_https(acct: &Account, endpoint: &ChatEndpoint) {
    // moto posts to the endpoint as given, so an http:// URL stands in for Amazon Q's https one.
    acct.sns.subscribe().topic_arn(&acct.topic_arn).protocol("https").endpoint(&endpoint.url).send().await.unwrap();
}

#[tokio::test]
async fn one_publish_gives_each_protocol_its_rendering_even_when_chat_rejects_it() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("dev-mallory", &[]).await;
    acct.tag("dev-mallory", "AccessException", "True").await;
    let raw = raw_queue(&acct).await;
    let chat = ChatEndpoint::start(200);
    let rejecting = ChatEndpoint::start(500);
    subscribe_https(&acct, &chat).await;
    subscribe_https(&acct, &rejecting).await;
    acct.sns
        .subscribe()
        .topic_arn(&acct.topic_arn)
        .protocol("email")
        .endpoint("security@example.com")
        .send()
        .await
        .unwrap();

    let (app, counter) = build_app_with(acct.config(&[]), &acct.sdk);
    let report = app.handle(sample("tag-user-self-granted.json"), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(report.failure, None, "a chat endpoint answering 500 does not fail the publish");
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    assert_eq!(report.published, 2);
    assert_eq!(counter.snapshot().calls.get("sns:PublishBatch"), Some(&1), "one call for every protocol");

    // Raw SQS: the body is exactly the JSON finding, attributes as SQS message attributes.
    let mut raw_bodies = drain(&acct, &raw).await;
    raw_bodies.sort();
    let mut expected: Vec<(String, Vec<(String, String)>)> = report
        .findings
        .iter()
        .map(|f| {
            let mut attrs = vec![
                ("account".to_owned(), f.account.clone()),
                ("check".to_owned(), f.check.as_str().to_owned()),
                ("finding_id".to_owned(), f.id.clone()),
                ("severity".to_owned(), f.severity.as_str().to_owned()),
            ];
            attrs.sort();
            (Message::finding(f).body, attrs)
        })
        .collect();
    expected.sort();
    assert_eq!(raw_bodies, expected);

    // Non-raw SQS: the envelope's Message is the same JSON.
    let received = acct.received().await;
    assert_eq!(received.len(), 2);
    for f in &report.findings {
        let r = received.iter().find(|r| r.check() == f.check.as_str()).unwrap();
        assert_eq!(r.finding, serde_json::to_value(f).unwrap());
        assert_eq!(r.subject, format!("[HIGH] {}: dev-mallory", f.check));
        assert_eq!(r.attributes["severity"], "high");
    }

    // HTTPS: the custom notification, in the finding's thread; the rejecting endpoint got
    // the same documents (SNS retries it on its own; nothing else is affected).
    for endpoint in [&chat, &rejecting] {
        let notes = endpoint.notifications();
        assert_eq!(notes.len(), 2);
        for f in &report.findings {
            let n = notes.iter().find(|n| n["metadata"]["threadId"] == f.thread_id()).unwrap();
            assert_eq!(n["version"], "1.0");
            assert_eq!(n["source"], "custom");
            assert_eq!(n["content"]["textType"], "client-markdown");
            let title = n["content"]["title"].as_str().unwrap();
            assert!(title.contains("[HIGH]") && title.contains(f.check.as_str()), "{title}");
            let description = n["content"]["description"].as_str().unwrap();
            assert!(description.contains("`dev-mallory`") && description.contains(ACCOUNT), "{description}");
            assert_eq!(n["metadata"]["relatedResources"][0], f.principal);
            assert_eq!(n["metadata"]["additionalContext"]["check"], f.check.as_str());
        }
    }
}

#[tokio::test]
async fn a_scan_publishes_one_batch_per_ten_messages_whatever_the_protocols() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    for i in 0..45 {
        let name = format!("console-{i:02}");
        acct.create_user(&name, &[]).await;
        acct.create_login_profile(&name).await;
    }
    let raw = raw_queue(&acct).await;
    let chat = ChatEndpoint::start(200);
    subscribe_https(&acct, &chat).await;
    let (app, counter) = build_app_with(acct.config(&[]), &acct.sdk);
    let as_of = Utc::now() + Duration::days(1);
    let report = app.scan(None, &RunOptions::at(as_of)).await.unwrap();
    assert_eq!(report.findings.len(), 90, "console without MFA and without an MFA policy");
    let high = report.findings.iter().filter(|f| f.severity >= iam_sentinel::finding::Severity::High).count();
    assert_eq!(high, 45, "console without MFA, high: one message each");
    let messages = 1 + 45;
    assert_eq!(report.published, messages);
    let calls = counter.snapshot().calls;
    assert_eq!(calls.get("sns:PublishBatch"), Some(&messages.div_ceil(10).try_into().unwrap()), "{calls:?}");

    assert_eq!(drain(&acct, &raw).await.len(), messages);
    assert_eq!(acct.received().await.len(), messages);
    let notes = chat.notifications();
    assert_eq!(notes.len(), messages);
    let digest = notes.iter().find(|n| n["metadata"]["eventType"] == "iam-sentinel-digest").unwrap();
    let description = digest["content"]["description"].as_str().unwrap();
    assert!(description.contains("*By severity:* high 45"), "{description}");
    assert!(description.contains("*Users scanned:* 45"), "{description}");
}
