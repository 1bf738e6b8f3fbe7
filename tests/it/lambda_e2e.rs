//! The real Lambda entrypoint under `cargo lambda watch` (the runtime API emulator),
//! invoked with every file in `events/` through `cargo lambda invoke`, against moto.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Account, pairs, registry};
use chrono::Utc;

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

// Every file in events/, each with the outcome the function must report for it in this
// account (contractor-eve and svc-reporting do not exist here: their events find the user gone;
// the group and policy the group and policy samples change do not exist either: they reach nobody).
// The break-glass role and user of the samples are configured, and no approver is: the registry
// write is a non-approver's.
const EXPECTED: &[(&str, &str)] = &[
    ("add-user-to-group.json", "processed"),
    ("assume-role-break-glass.json", "processed"),
    ("assume-root-audit.json", "processed"),
    ("assume-root-create-password.json", "processed"),
    ("assume-root-unlock-bucket-policy.json", "processed"),
    ("attach-group-policy.json", "ignored"),
    ("attach-user-policy-admin.json", "processed"),
    ("console-sign-in-break-glass-user.json", "processed"),
    ("create-access-key-self.json", "processed"),
    ("create-access-key.json", "processed"),
    ("create-login-profile-no-recipient.json", "processed"),
    ("create-login-profile.json", "processed"),
    ("create-policy-version-default.json", "ignored"),
    ("create-user-by-cloudformation.json", "user-gone"),
    ("create-user-with-access-exception.json", "user-gone"),
    ("deactivate-mfa-device-by-root.json", "processed"),
    ("deactivate-mfa-device.json", "processed"),
    ("delete-access-key.json", "processed"),
    ("delete-virtual-mfa-device.json", "ignored"),
    ("disable-organizations-root-sessions.json", "processed"),
    ("enable-mfa-device.json", "processed"),
    ("enable-organizations-root-credentials-management.json", "processed"),
    ("organizations-attach-policy.json", "ignored"),
    ("organizations-create-account.json", "ignored"),
    ("organizations-delete-policy.json", "ignored"),
    ("organizations-detach-policy.json", "ignored"),
    ("organizations-invite-account.json", "ignored"),
    ("organizations-move-account.json", "ignored"),
    ("organizations-update-policy.json", "ignored"),
    ("put-secret-value-registry.json", "processed"),
    ("root-console-sign-in.json", "processed"),
    ("root-create-access-key-self.json", "processed"),
    ("root-enable-mfa-device-self.json", "processed"),
    ("root-session-delete-bucket-policy.json", "processed"),
    ("root-session-delete-login-profile.json", "processed"),
    ("scheduled-daily-scan.json", "processed"),
    ("tag-user-access-exception.json", "processed"),
    ("tag-user-failed-access-denied.json", "ignored"),
    ("tag-user-self-granted.json", "processed"),
    ("untag-user-access-exception.json", "processed"),
    ("untag-user-by-sentinel.json", "ignored"),
    ("update-access-key-console-mfa.json", "processed"),
    ("update-access-key.json", "processed"),
    ("update-account-password-policy.json", "processed"),
];

/// Root's use reported; centralized root access samples: one message each, its severity by the
/// task or the direction.
fn root_access_published(file: &str, received: &[crate::common::Received]) {
    if file.starts_with("root-") || file.ends_with("-by-root.json") {
        assert!(received.iter().any(|r| r.check() == "root-used"), "{file}: root use reported");
    }
    let expected = match file {
        "assume-root-audit.json" => ("root-session-started", "low"),
        "assume-root-create-password.json" | "assume-root-unlock-bucket-policy.json" => {
            ("root-session-started", "high")
        }
        "disable-organizations-root-sessions.json" => ("root-access-not-centralized", "critical"),
        "enable-organizations-root-credentials-management.json" => ("root-access-centralized", "info"),
        _ => return,
    };
    assert_eq!(received.iter().map(crate::common::Received::check).collect::<Vec<_>>(), [expected.0], "{file}");
    assert_eq!(received[0].attributes["severity"], expected.1, "{file}");
}

const BREAK_GLASS_ROLE: &str = "arn:aws:iam::123456789012:role/BreakGlassAdmin";

/// Starts `cargo lambda watch` on `port`, configured for `acct`; returns it and its env file.
fn start_watch(acct: &Account, port: u16, extra: &[&str]) -> (Watch, PathBuf) {
    let env_file = std::env::temp_dir().join(format!("iam-sentinel-e2e-{port}.env"));
    let mut vars: Vec<String> = acct.moto.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    vars.extend([
        format!("FINDINGS_TOPIC_ARN={}", acct.topic_arn),
        format!("APPROVALS_SECRET_ID={}", crate::common::SECRET_ID),
        "AUTO_REMEDIATE=true".into(),
        "SELF_ROLE_ARN=arn:aws:iam::123456789012:role/iam-sentinel-FunctionRole".into(),
        format!("BREAK_GLASS_ROLE_ARNS={BREAK_GLASS_ROLE}"),
        "BREAK_GLASS_USERS=break-glass-admin".into(),
        "AWS_LAMBDA_LOG_FORMAT=JSON".into(),
    ]);
    vars.extend(extra.iter().map(|v| (*v).to_owned()));
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
    // cargo lambda watch builds the function with cargo: a RUSTC_BOOTSTRAP given to the test
    // harness (for its --report-time) would change every fingerprint and rebuild everything.
    .env_remove("RUSTC_BOOTSTRAP")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    (Watch(cmd.spawn().expect("start cargo lambda watch")), env_file)
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
    let (_watch, env_file) = start_watch(&acct, port, &[]);

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
        pairs([("console-without-mfa", "analyst-dave"), ("mfa-policy-missing", "analyst-dave")])
    );

    let mut files: Vec<String> = std::fs::read_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, EXPECTED.iter().map(|(f, _)| (*f).to_owned()).collect::<Vec<_>>(), "one row per file in events/");
    acct.received().await;
    // The scan last: it remediates, and the tag events before it judge the tags as they are.
    let scan_last = EXPECTED
        .iter()
        .filter(|(f, _)| !f.starts_with("scheduled"))
        .chain(EXPECTED.iter().filter(|(f, _)| f.starts_with("scheduled")));
    for (file, outcome) in scan_last {
        let out = invoke(port, file);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(response["outcome"], *outcome, "{file}: {response}");
        let received = acct.received().await;
        if *outcome != "processed" {
            assert!(received.is_empty(), "{file}: nothing published when {outcome}");
        }
        if *file == "tag-user-self-granted.json" {
            // dev-mallory's tag was already removed when its own CreateAccessKey was handled.
            assert_eq!(
                pairs(received.iter().map(|r| (r.check(), r.user()))),
                pairs([("exception-self-granted", "dev-mallory")])
            );
        }
        if *file == "scheduled-daily-scan.json" {
            assert_eq!(received.iter().filter(|r| r.attributes["check"] == "digest").count(), 1);
            // The configured role and user do not exist in this account: the path is not ready.
            let not_ready: Vec<&str> = received
                .iter()
                .filter(|r| r.check() == "break-glass-not-ready")
                .map(|r| r.finding["principal"].as_str().unwrap())
                .collect();
            assert!(not_ready.contains(&BREAK_GLASS_ROLE), "{not_ready:?}");
        }
        root_access_published(file, &received);
        let privileged = match *file {
            "assume-role-break-glass.json" | "console-sign-in-break-glass-user.json" => Some("break-glass-used"),
            "put-secret-value-registry.json" => Some("registry-changed-by-non-approver"),
            _ => None,
        };
        if let Some(check) = privileged {
            assert_eq!(
                received.iter().map(crate::common::Received::check).collect::<Vec<_>>(),
                [check],
                "{file}: one message"
            );
            assert_eq!(received[0].attributes["severity"], "critical", "{file}");
        }
    }
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

/// Invokes the function with `payload` (written to a file, as `cargo lambda invoke` wants).
fn invoke_payload(port: u16, name: &str, payload: &serde_json::Value) -> Output {
    let file = std::env::temp_dir().join(format!("iam-sentinel-e2e-{port}-{name}.json"));
    std::fs::write(&file, payload.to_string()).unwrap();
    let out = Command::new("cargo")
        .args(["lambda", "invoke", "iam-sentinel", "-A", "127.0.0.1", "-P", &port.to_string(), "--data-file"])
        .arg(&file)
        .env("PATH", tools_path())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(file);
    out
}

/// The organization scan's three steps, as the state machine invokes them, through the real
/// runtime in organization mode: list, one member's scan through its role, the digest.
#[tokio::test]
async fn the_organization_steps_through_cargo_lambda_watch() {
    let org = crate::organization::Org::new(3, &["Workloads"]).await;
    let member = org.members["Workloads"][1].clone();
    let iam = org.iam_in(&member).await;
    iam.create_user().user_name("carol").send().await.unwrap();
    iam.create_login_profile().user_name("carol").password("Correct-Horse-9!").send().await.unwrap();
    org.account.put_registry(r#"{"exceptions":[]}"#).await;
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let role = format!("MEMBER_ROLE_NAME={}", crate::organization::MEMBER_ROLE);
    let (_watch, env_file) = start_watch(&org.account, port, &["ORGANIZATION_MODE=true", &role]);
    let deadline = Instant::now() + Duration::from_mins(10);
    let listed = loop {
        let out = invoke_payload(port, "list", &serde_json::json!({"list_accounts": {}}));
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch never answered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 4, "{listed}");
    assert_eq!(listed["management_account"], crate::common::ACCOUNT);
    let step = serde_json::json!({"scan_account": member, "management_account": crate::common::ACCOUNT});
    let out = invoke_payload(port, "scan", &step);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let child: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(child["account"], member.as_str(), "{child}");
    assert_eq!(child["account_name"], "member-01", "{child}");
    assert_eq!(child["by_check"]["console-without-mfa"], 1, "{child}");
    let received = org.account.received().await;
    assert!(received.iter().any(|r| r.check() == "console-without-mfa" && r.finding["account"] == member.as_str()));
    let digest = serde_json::json!({"org_digest": {"accounts": listed["accounts"], "results": [child]}});
    let out = invoke_payload(port, "digest", &digest);
    // moto has no iam:ListOrganizationsFeatures: the digest goes out saying root access was not
    // judged, and the invocation fails naming the call (the list step carried null for it).
    assert!(listed["root_managed_centrally"].is_null(), "{listed}");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("AwsCallFailed") && text.contains("iam:ListOrganizationsFeatures"), "{text}");
    let received = org.account.received().await;
    assert_eq!(received.iter().filter(|r| r.attributes["check"] == "digest").count(), 1, "one organization digest");
    // A step with a bad account fails the invocation by name.
    let out = invoke_payload(port, "bad", &serde_json::json!({"scan_account": "not-an-account"}));
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("MalformedEvent") && text.contains("12-digit"), "{text}");
    let _ = std::fs::remove_file(env_file);
}
