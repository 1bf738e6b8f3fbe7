//! What a person meets first on the command line: one-line errors that say what to set, exit
//! codes as documented, an endpoint that never answers named within a bounded time, and a
//! `--help` that lists the environment and the exit codes.

use std::net::TcpListener;
use std::process::{Command, Output};

use crate::common::{Account, registry};

const EVENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/events/create-login-profile.json");

/// The binary with a clean AWS environment (no profile, no region, no credentials) plus `vars`.
fn bare(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let empty_home = std::env::temp_dir().join("iam-sentinel-cli-test-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iam-sentinel"));
    cmd.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("HOME", &empty_home).env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.env("AWS_CONFIG_FILE", empty_home.join("none")).env("AWS_SHARED_CREDENTIALS_FILE", empty_home.join("none"));
    cmd.env("APPROVALS_SECRET_ID", "iam-sentinel/approvals");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one error line the command printed.
fn error_line(out: &Output) -> String {
    let text = stderr(out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("iam-sentinel: error:")).collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{text}");
    lines[0].to_owned()
}

const CREDENTIALS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")];

#[test]
fn no_region_is_a_configuration_error_in_one_line() {
    let out = bare(&["handle", EVENT, "--no-publish"], &CREDENTIALS);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("no AWS region") && line.contains("AWS_REGION"), "{line}");
    assert!(!stderr(&out).contains("DispatchFailure"), "{}", stderr(&out));
}

#[test]
fn no_credentials_is_a_configuration_error_in_one_line() {
    let out = bare(&["scan", "--no-publish", "--region", "us-east-1"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains("no AWS credentials") && line.contains("AWS_PROFILE"), "{line}");
}

#[test]
fn an_invalid_endpoint_url_is_refused_before_any_call() {
    let mut vars = CREDENTIALS.to_vec();
    vars.push(("AWS_REGION", "us-east-1"));
    for args in [vec!["handle", EVENT, "--no-publish", "--endpoint-url", "notaurl"], vec!["scan", "--no-publish"]] {
        let mut vars = vars.clone();
        if args[0] == "scan" {
            vars.push(("AWS_ENDPOINT_URL", "127.0.0.1:5000"));
        }
        let out = bare(&args, &vars);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let line = error_line(&out);
        assert!(line.contains("is not valid: expected http://HOST[:PORT]"), "{line}");
        assert!(stderr(&out).lines().count() <= 2, "no dump: {}", stderr(&out));
    }
}

#[test]
fn a_missing_topic_is_a_configuration_error() {
    let mut vars = CREDENTIALS.to_vec();
    vars.push(("AWS_REGION", "us-east-1"));
    let out = bare(&["handle", EVENT], &vars);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(error_line(&out).contains("FINDINGS_TOPIC_ARN is not set"), "{}", stderr(&out));
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let out = bare(&["scan", "--no-publish"], &[("KEY_MAX_AGE_DAYS", "abc"), ("MFA_SCOPE", "everyone")]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(text.contains("KEY_MAX_AGE_DAYS=\"abc\" is not valid"), "{text}");
    assert!(text.contains("MFA_SCOPE=\"everyone\" is not valid"), "{text}");
}

#[test]
fn an_endpoint_that_never_answers_is_named_within_the_call_timeout() {
    // Accepts connections (the kernel's backlog) and never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut vars = CREDENTIALS.to_vec();
    vars.push(("AWS_REGION", "us-east-1"));
    let out = bare(&["scan", "--no-publish", "--endpoint-url", &url, "--call-timeout", "2"], &vars);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = error_line(&out);
    assert!(line.contains(&format!("no answer from {url} within 2 s")), "{line}");
    drop(silent);
}

#[test]
fn help_lists_the_environment_and_the_exit_codes() {
    for command in ["handle", "scan"] {
        let out = bare(&[command, "--help"], &[]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for (name, _) in iam_sentinel::config::VARIABLES {
            assert!(text.contains(name), "{command} --help lacks {name}:\n{text}");
        }
        for code in ["0  success", "1  the run failed", "2  bad input or configuration", "3  scan --fail-on"] {
            assert!(text.contains(code), "{command} --help lacks exit status {code:?}:\n{text}");
        }
    }
}

#[tokio::test]
async fn a_missing_registry_secret_is_published_as_a_short_reason_not_a_dump() {
    let acct = Account::new().await;
    acct.create_user("analyst-dave", &[]).await;
    acct.create_login_profile("analyst-dave").await;
    let out = acct.cli(&["handle", EVENT, "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let received = acct.received().await;
    let critical = received.iter().find(|r| r.check() == "approvals-registry-unavailable").unwrap();
    let published = critical.finding.to_string();
    assert!(
        published.contains("secretsmanager:GetSecretValue on iam-sentinel/approvals failed: ResourceNotFoundException"),
        "{published}"
    );
    for dump in ["DispatchFailure", "ServiceError", "HttpResponse", "raw:", "headers"] {
        assert!(!published.contains(dump), "the published finding carries an SDK dump ({dump}): {published}");
    }
    assert!(critical.finding["evidence"]["error"].as_str().unwrap().len() < 300, "{published}");
    acct.put_registry(&registry(&[])).await;
}
