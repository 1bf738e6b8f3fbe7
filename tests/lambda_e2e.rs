//! The real Lambda entrypoint under `cargo lambda watch` (the runtime API emulator),
//! invoked with every file in `events/` through `cargo lambda invoke`, against moto.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Account, pairs, registry};

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo lambda watch runs the function as a child: stop the whole process group.
        let _ = Command::new("kill").args(["--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tools_path() -> String {
    let venv_bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin");
    assert!(venv_bin.join("cargo-lambda").exists(), "cargo-lambda not in .venv: run ./scripts/test");
    format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default())
}

fn invoke(port: u16, file: &str) -> Output {
    Command::new("cargo")
        .args(["lambda", "invoke", "iam-sentinel", "-A", "127.0.0.1", "-P", &port.to_string(), "--data-file"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events").join(file))
        .args(["--output-format", "json"])
        .env("PATH", tools_path())
        .output()
        .unwrap()
}

#[tokio::test]
async fn every_event_file_through_cargo_lambda_watch() {
    let acct = Account::new().await;
    let soon = (Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &soon)])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env_file = std::env::temp_dir().join(format!("iam-sentinel-e2e-{port}.env"));
    let mut vars: Vec<String> = acct.moto.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    vars.extend([
        format!("FINDINGS_TOPIC_ARN={}", acct.topic_arn),
        format!("APPROVALS_SECRET_ID={}", common::SECRET_ID),
        "AUTO_REMEDIATE=true".into(),
        "SELF_ROLE_ARN=arn:aws:iam::123456789012:role/iam-sentinel-FunctionRole".into(),
        "AWS_LAMBDA_LOG_FORMAT=JSON".into(),
    ]);
    std::fs::write(&env_file, vars.join("\n")).unwrap();
    let mut cmd = Command::new("setsid");
    cmd.args([
        "cargo",
        "lambda",
        "watch",
        "--ignore-changes",
        "-A",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "--env-file",
    ])
    .arg(&env_file)
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("PATH", tools_path())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let _watch = Watch(cmd.spawn().expect("start cargo lambda watch"));

    // The first invocation waits for the build; retry until the emulator answers.
    let deadline = Instant::now() + Duration::from_mins(10);
    let first = loop {
        let out = invoke(port, "create-login-profile.json");
        if out.status.success() {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch never answered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let response: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(response["outcome"], "processed", "{response}");
    assert_eq!(
        pairs(acct.received().await.iter().map(|r| (r.check(), r.user()))),
        pairs([("console-without-mfa", "analyst-dave")])
    );

    for (file, expect_ok) in [
        ("tag-user-access-exception.json", true),
        ("tag-user-self-granted.json", true),
        ("tag-user-failed-access-denied.json", true),
        ("untag-user-by-sentinel.json", true),
        ("scheduled-daily-scan.json", true),
    ] {
        let out = invoke(port, file);
        assert_eq!(out.status.success(), expect_ok, "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let received = acct.received().await;
    let singles = pairs(received.iter().filter(|r| r.attributes["check"] != "digest").map(|r| (r.check(), r.user())));
    assert_eq!(
        singles,
        pairs([
            ("exception-expiring", "svc-legacy-erp"),
            ("exception-self-granted", "dev-mallory"),
            ("exception-unapproved", "dev-mallory"),
            // The scan's single messages for high findings.
            ("console-without-mfa", "analyst-dave"),
        ])
    );
    assert_eq!(received.iter().filter(|r| r.attributes["check"] == "digest").count(), 1);
    assert!(acct.tags("dev-mallory").await.is_empty(), "remediated");
    assert_eq!(acct.tags("svc-legacy-erp").await.len(), 1, "approved user untouched");

    // A malformed event is an error response, and the runtime keeps serving.
    let bad = std::env::temp_dir().join(format!("iam-sentinel-e2e-{port}-bad.json"));
    std::fs::write(
        &bad,
        r#"{"detail-type": "AWS API Call via CloudTrail", "source": "aws.iam", "detail": {"eventName": "TagUser"}}"#,
    )
    .unwrap();
    let out = Command::new("cargo")
        .args(["lambda", "invoke", "iam-sentinel", "-A", "127.0.0.1", "-P", &port.to_string(), "--data-file"])
        .arg(&bad)
        .env("PATH", tools_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("MalformedEvent"), "{text}");
    assert!(invoke(port, "enable-mfa-device.json").status.success(), "still serving after a bad event");
    let _ = std::fs::remove_file(env_file);
    let _ = std::fs::remove_file(bad);
}
