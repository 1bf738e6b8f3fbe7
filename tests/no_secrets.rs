//! No secrets leak: the logs of a full run at TRACE level (SDK trace logging on) (events, remediation, scan, a registry write
//! compared version to version, a key rotation, a broken registry) and the findings never contain secret values, the AWS secret key or the
//! registry's raw content.
//!
//! A binary of its own: it installs a log subscriber, and tracing caches per-process which
//! call sites are enabled, so sharing a process with other tests would hide log lines.

use std::io::Write;
use std::sync::{Arc, Mutex};

mod common;

use aws_config::BehaviorVersion;
use aws_sdk_iam::config::Credentials;
use chrono::Utc;
use common::{Account, sample};
use iam_sentinel::app::RunOptions;
use iam_sentinel::runtime::build_app_with;
use lambda_runtime::{Context, LambdaEvent};

const CANARY: &str = "CANARY-7f3a";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_and_findings_carry_no_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    // TRACE, as RUST_LOG=trace would: the SDK's own trace logging (requests, responses, the
    // credentials it signs with) is on for the whole run, the key rotation included.
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let acct = Account::new().await;
    // The SDK signs with this secret key; it must never appear anywhere.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&acct.moto.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIATESTING", format!("{CANARY}-secret-key"), None, None, "test"))
        .load()
        .await;
    let later = (Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    acct.put_registry(&format!(
        r#"{{"exceptions": [{{"user": "svc-legacy-erp", "approved_by": "sec-lead@example.com", "ticket": "SEC-1", "expires": "{later}", "reason": "{CANARY} vendor VPN password hint"}}]}}"#
    ))
    .await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let key = acct.iam.create_access_key().user_name("dev-mallory").send().await.unwrap().access_key.unwrap();
    let (app, counter) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true")]), &sdk);

    let mut findings = Vec::new();
    for file in ["tag-user-access-exception.json", "tag-user-self-granted.json", "create-access-key-self.json"] {
        let event = LambdaEvent::new(sample(file), Context::default());
        iam_sentinel::lambda::handle(&app, Some(&counter), event).await.unwrap();
    }
    findings.extend(app.scan(None, &RunOptions::at(Utc::now())).await.unwrap().findings);
    // A registry write by a non-approver: both versions are read and compared; reasons stay inside.
    acct.put_registry(&format!(
        r#"{{"exceptions": [{{"user": "dev-mallory", "approved_by": "dev-mallory", "ticket": "SELF-1", "expires": "{later}", "reason": "{CANARY} self-approved"}}]}}"#
    ))
    .await;
    let write = app.handle(sample("put-secret-value-registry.json"), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(write.findings[0].evidence["approvals_added"][0]["ticket"], "SELF-1", "{:?}", write.findings);
    findings.extend(write.findings);
    // A registry that is not JSON, holding the canary: the error names the problem, not the content.
    acct.put_registry(&format!("{CANARY} not json")).await;
    let broken = app.handle(sample("tag-user-access-exception.json"), &RunOptions::at(Utc::now())).await.unwrap();
    findings.extend(broken.findings);
    assert!(broken.failure.is_some());
    // A key rotated for an opted-in user: its new secret half goes to Secrets Manager only.
    acct.create_user("svc-rotated", &[("iam-sentinel:rotation", "auto")]).await;
    acct.create_key("svc-rotated").await;
    let (rotating, _) = build_app_with(acct.config(&[("ROTATE_KEYS", "true")]), &sdk);
    let in_76_days = RunOptions { publish: true, ..RunOptions::at(Utc::now() + chrono::Duration::days(76)) };
    let rotated = rotating.scan(None, &in_76_days).await.unwrap();
    assert!(rotated.findings.iter().any(|f| f.check.as_str() == "access-key-rotated"), "{:?}", rotated.failure);
    findings.extend(rotated.findings);
    let stored = acct
        .secrets
        .get_secret_value()
        .secret_id(format!("iam-sentinel/keys/{}/svc-rotated", common::ACCOUNT))
        .send()
        .await
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    let rotated_secret = stored["SecretAccessKey"].as_str().unwrap().to_owned();
    let bad_event = LambdaEvent::new(serde_json::json!({"detail-type": 1}), Context::default());
    assert!(iam_sentinel::lambda::handle(&app, None, bad_event).await.is_err());

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("removed exception tag") && text.contains("checked"), "the capture works:\n{text}");
    assert!(text.contains("TRACE") && text.contains("CreateAccessKey"), "SDK trace logging was on during the rotation");
    let published = serde_json::to_string(&findings).unwrap()
        + &serde_json::to_string(&acct.received().await.iter().map(|r| r.finding.clone()).collect::<Vec<_>>()).unwrap();
    for (what, haystack) in [("logs", &text), ("findings", &published)] {
        assert!(!haystack.contains(CANARY), "{what} leak the registry or the secret key");
        assert!(!haystack.contains(&key.secret_access_key), "{what} leak an access key secret");
        assert!(!haystack.contains(&rotated_secret), "{what} leak the rotated key's secret");
        assert!(!haystack.contains("password hint"), "{what} leak registry content");
    }
}
