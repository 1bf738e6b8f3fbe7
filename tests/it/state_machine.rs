//! The daily organization scan (`OrganizationScan` in infra/template.yaml), executed by moto's
//! Step Functions: its definition, taken from the template, lists the accounts of an
//! organization moto serves, maps one child per account and hands every result to the digest;
//! a map that fails ends in ReportFailure and a failed execution.
//!
//! What moto cannot show, and where these tests stop short of AWS:
//! - The function is not run. moto's Lambda without Docker answers each invocation with the next
//!   queued payload, in call order: `list_accounts_payload` and `child_output` stand for what the
//!   function returns (the documented shapes), and every map here runs with MaxConcurrency 1 so
//!   that the answers meet the accounts they are queued for. What the function was invoked
//!   with is real: moto's request recorder keeps each invocation's payload.
//! - moto 5.2.5 does not apply ToleratedFailurePercentage to a Distributed Map (a failed child is
//!   counted and the map carries on), so a failed child cannot take the catch here. The catch
//!   path (ReportFailure, then Fail) is executed on the deployed definition, unedited, by a map
//!   that fails as a whole (its items are not a list). On AWS a failed child fails the map with
//!   States.ExceedToleratedFailureThreshold (the tolerance of 0 is asserted in `infra.rs`),
//!   which the same States.ALL catch takes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::Credentials;
use serde_json::{Value, json};

use crate::infra::state_machine_definition;

/// A moto server whose request recorder writes to a file of its own.
struct Emulator {
    child: Child,
    port: u16,
    recording: PathBuf,
}

impl Emulator {
    fn start() -> Emulator {
        let bin = std::env::var_os("MOTO_SERVER")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"), PathBuf::from);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let recording = std::env::temp_dir().join(format!("iam-sentinel-state-machine-{port}.jsonl"));
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let emulator = Emulator { child, port, recording };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Step Functions executes definitions; Lambda answers from the queue instead of Docker.
        emulator.post(
            "/moto-api/config",
            &[],
            &json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}),
        );
        emulator
    }

    async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(format!("http://127.0.0.1:{}", self.port))
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// One HTTP/1.1 request; the response body (moto answers with a Content-Length).
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        for (name, value) in headers {
            head.extend([name, ": ", value, "\r\n"]);
        }
        stream.write_all(format!("{head}\r\n{body}").as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {response}"));
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "chunked response to {path}");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        (status, body.to_owned())
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> String {
        let (status, text) = self.request("POST", path, headers, &body.to_string());
        assert!((200..300).contains(&status), "POST {path}: {status} {text}");
        text
    }

    /// A call to an AWS JSON service; moto routes it by the credential scope.
    fn aws(&self, service: &str, target: Option<&str>, path: &str, body: &Value) -> Value {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        );
        let mut headers = vec![("Authorization", authorization.as_str())];
        if let Some(target) = target {
            headers.push(("X-Amz-Target", target));
            headers.push(("Content-Type", "application/x-amz-json-1.0"));
        } else {
            headers.push(("Content-Type", "application/json"));
        }
        let text = self.post(path, &headers, body);
        if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
    }

    fn states(&self, operation: &str, body: &Value) -> Value {
        self.aws("states", Some(&format!("AWSStepFunctions.{operation}")), "/", body)
    }

    /// The next payloads moto's Lambda returns, in call order.
    fn queue_answers(&self, answers: &[Value]) {
        let results: Vec<String> = answers.iter().map(Value::to_string).collect();
        self.post("/moto-api/static/lambda-simple/response", &[], &json!({"results": results, "region": "us-east-1"}));
    }

    /// The payloads the function was invoked with since recording started, in order.
    fn invocations(&self) -> Vec<Value> {
        let (status, text) = self.request("GET", "/moto-api/recorder/download-recording", &[], "");
        assert_eq!(status, 200, "{text}");
        text.lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|entry| entry["method"] == "POST" && entry["url"].as_str().unwrap().ends_with("/invocations"))
            .map(|entry| {
                let body = entry["body"].as_str().unwrap();
                let bytes = if entry["body_encoded"] == true { base64_decode(body) } else { body.as_bytes().to_vec() };
                serde_json::from_slice(&bytes).unwrap()
            })
            .collect()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// Standard base64 (the recorder's encoding of request bodies).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET.iter().position(|a| *a == c).unwrap_or_else(|| panic!("not base64: {c}"));
        buffer = (buffer << 6) | u32::try_from(value).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).unwrap());
        }
    }
    out
}

/// An organization in moto: its active accounts (the management account among them) and the
/// management account, as the function's `list_accounts` returns them.
async fn organization(sdk: &SdkConfig) -> (Vec<String>, String) {
    let organizations = aws_sdk_organizations::Client::new(sdk);
    organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    for (name, email) in [("prod", "prod@example.com"), ("dev", "dev@example.com"), ("sandbox", "sandbox@example.com")]
    {
        organizations.create_account().account_name(name).email(email).send().await.unwrap();
    }
    let management = organizations.describe_organization().send().await.unwrap().organization.unwrap();
    let accounts = organizations
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts
        .unwrap()
        .into_iter()
        .filter(|a| a.state == Some(aws_sdk_organizations::types::AccountState::Active))
        .map(|a| a.id.unwrap())
        .collect();
    (accounts, management.master_account_id.unwrap())
}

/// What the function returns for `{"list_accounts": {}}`.
fn list_accounts_payload(accounts: &[String], management: &str) -> Value {
    json!({"accounts": accounts, "management_account": management, "root_managed_centrally": true})
}

/// What the function returns for `{"scan_account": …}` (the documented shape: named counts for
/// people and logs, compact ones for the state machine). The last test uses the real answers.
fn child_output(account: &str) -> Value {
    let result = iam_sentinel::org::digest::AccountResult {
        account: account.to_owned(),
        account_name: Some(format!("account-{}", &account[8..])),
        users_scanned: 200,
        findings: 12,
        by_severity: [("high", 1), ("medium", 2), ("low", 3), ("info", 6)].map(|(k, v)| (k.to_owned(), v)).into(),
        by_check: [("access-key-stale", 3), ("console-without-mfa", 1), ("user-direct-policy", 8)]
            .map(|(k, v)| (k.to_owned(), v))
            .into(),
        error: None,
    };
    let mut out = json!({"outcome": "processed", "published": 3});
    for part in [serde_json::to_value(&result).unwrap(), serde_json::to_value(result.compact()).unwrap()] {
        out.as_object_mut().unwrap().extend(part.as_object().unwrap().clone());
    }
    out
}

/// What the ResultSelector keeps of a child's output.
fn kept(output: &Value) -> Value {
    let keep = ["account", "users_scanned", "severity_counts", "check_counts", "v"];
    Value::Object(
        output
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// A function in moto's Lambda (an empty zip: the code never runs) and the state machine from
/// `definition`; returns the state machine's ARN.
async fn deploy(emulator: &Emulator, sdk: &SdkConfig, definition: impl FnOnce(&str) -> Value) -> String {
    let iam = aws_sdk_iam::Client::new(sdk);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","states.amazonaws.com"]},"Action":"sts:AssumeRole"}]}"#;
    let role = iam.create_role().role_name("iam-sentinel").assume_role_policy_document(trust).send().await.unwrap();
    let role_arn = role.role.unwrap().arn;
    let function = emulator.aws(
        "lambda",
        None,
        "/2015-03-31/functions",
        &json!({"FunctionName": "iam-sentinel", "Runtime": "provided.al2023", "Handler": "bootstrap", "Role": role_arn,
                "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}),
    );
    let definition = definition(function["FunctionArn"].as_str().unwrap());
    let created = emulator.states(
        "CreateStateMachine",
        &json!({"name": "iam-sentinel-organization-scan", "definition": definition.to_string(), "roleArn": role_arn}),
    );
    created["stateMachineArn"].as_str().unwrap().to_owned()
}

/// Starts an execution with the daily schedule's event and waits for its end: (description, history).
fn execute(emulator: &Emulator, state_machine: &str) -> (Value, Vec<Value>) {
    emulator.post("/moto-api/recorder/start-recording", &[], &json!({}));
    let input = crate::common::sample("scheduled-daily-scan.json").to_string();
    let started = emulator.states("StartExecution", &json!({"stateMachineArn": state_machine, "input": input}));
    let execution = started["executionArn"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_mins(1);
    let description = loop {
        let d = emulator.states("DescribeExecution", &json!({"executionArn": execution}));
        if d["status"] != "RUNNING" {
            break d;
        }
        assert!(Instant::now() < deadline, "the execution still runs after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    emulator.post("/moto-api/recorder/stop-recording", &[], &json!({}));
    let history = emulator.states("GetExecutionHistory", &json!({"executionArn": execution, "maxResults": 1000}));
    (description, history["events"].as_array().unwrap().clone())
}

/// The input of state `name` when it was entered, parsed.
fn entered_with(history: &[Value], name: &str) -> Option<Value> {
    history
        .iter()
        .filter_map(|e| e.get("stateEnteredEventDetails"))
        .find(|d| d["name"] == name)
        .map(|d| serde_json::from_str(d["input"].as_str().unwrap()).unwrap())
}

fn scan_inputs(accounts: &[String], management: &str) -> Vec<Value> {
    accounts
        .iter()
        .map(|a| json!({"scan_account": a, "management_account": management, "root_managed_centrally": true}))
        .collect()
}

#[tokio::test]
async fn every_active_account_is_scanned_in_its_own_child_and_the_digest_gets_every_result() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let (accounts, management) = organization(&sdk).await;
    assert_eq!(accounts.len(), 4, "the management account and three members");
    assert!(accounts.contains(&management));
    let state_machine = deploy(&emulator, &sdk, |function| state_machine_definition(function, 1)).await;

    let outputs: Vec<Value> = accounts.iter().map(|a| child_output(a)).collect();
    let mut answers = vec![list_accounts_payload(&accounts, &management)];
    answers.extend(outputs.iter().cloned());
    answers.push(json!({"published": 1}));
    emulator.queue_answers(&answers);

    let (execution, history) = execute(&emulator, &state_machine);
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");

    // The function was asked for the accounts, then once per account, then for the digest.
    let expected_results: Vec<Value> = outputs.iter().map(kept).collect();
    let digest = json!({"org_digest": {"accounts": accounts, "results": expected_results}});
    let mut expected = vec![json!({"list_accounts": {}})];
    expected.extend(scan_inputs(&accounts, &management));
    expected.push(digest.clone());
    assert_eq!(emulator.invocations(), expected);

    // One distributed map run with one child per account, none failed.
    let runs = emulator.states("ListMapRuns", &json!({"executionArn": execution["executionArn"]}));
    let runs = runs["mapRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = emulator.states("DescribeMapRun", &json!({"mapRunArn": runs[0]["mapRunArn"]}));
    let counts = &run["itemCounts"];
    assert_eq!(
        (counts["total"].as_u64(), counts["succeeded"].as_u64(), counts["failed"].as_u64()),
        (Some(4), Some(4), Some(0)),
        "{run}"
    );
    assert_eq!(run["toleratedFailurePercentage"].as_f64(), Some(0.0));

    // The digest's state holds every result, in the accounts' order.
    let digest_input = entered_with(&history, "Digest").expect("the digest ran");
    assert_eq!(digest_input["results"], json!(expected_results));
    assert_eq!(digest_input["accounts"], json!(accounts));
    assert!(entered_with(&history, "ReportFailure").is_none());
}

#[tokio::test]
async fn a_failed_scan_is_reported_and_fails_the_execution() {
    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let (accounts, management) = organization(&sdk).await;
    // The deployed definition, as the template has it. The map fails as a whole (its items are
    // not a list) and its catch takes over: ReportFailure, then the Fail state.
    let state_machine = deploy(&emulator, &sdk, |function| state_machine_definition(function, 1)).await;
    let mut listed = list_accounts_payload(&accounts, &management);
    listed["accounts"] = json!("not a list");
    emulator.queue_answers(&[listed, json!({"published": 1})]);

    let (execution, history) = execute(&emulator, &state_machine);
    assert_eq!(execution["status"], "FAILED", "{execution}");
    assert_eq!(execution["error"], "OrganizationScanFailed", "{execution}");

    // ReportFailure was invoked with the accounts and the failure, no account scanned, the
    // digest never.
    let invocations = emulator.invocations();
    assert_eq!(invocations[0], json!({"list_accounts": {}}));
    assert_eq!(invocations.len(), 2, "the list, then one report: {invocations:?}");
    let report = &invocations[1]["org_digest"];
    assert_eq!(report["accounts"], "not a list");
    assert!(report.get("results").is_none(), "{report}");
    let failure = &report["failure"];
    // The catch's error and cause, as Step Functions gives them (moto's cause does not name the
    // missing field; AWS's names the exceeded tolerance).
    assert!(failure["Error"].as_str().is_some_and(|e| !e.is_empty()), "{failure}");
    assert!(failure["Cause"].is_string(), "{failure}");
    assert!(entered_with(&history, "Digest").is_none());
    assert_eq!(entered_with(&history, "ReportFailure").unwrap()["failure"], *failure);
    assert!(history.iter().any(|e| e["type"] == "FailStateEntered"), "the Fail state ended it");
}

/// The function's real answers: the definition executed in moto with, queued, what
/// `iam-sentinel` really returns for `list_accounts` and for each `scan_account` (run against
/// the same moto, through the member role), then the Digest state's input handed to the real
/// function, whose organization digest the topic's subscriber receives.
#[tokio::test(flavor = "multi_thread")]
async fn the_real_function_answers_an_execution_from_list_to_digest() {
    use iam_sentinel::lambda::org_step;
    use iam_sentinel::org::run::{DigestInput, OrgRequest};

    let emulator = Emulator::start();
    let sdk = emulator.sdk().await;
    let (_, management) = organization(&sdk).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns.create_topic().name("findings").send().await.unwrap().topic_arn.unwrap();
    let queue = sqs.create_queue().queue_name("subscriber").send().await.unwrap().queue_url.unwrap();
    let queue_arn = format!("arn:aws:sqs:us-east-1:{management}:subscriber");
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    secrets.create_secret().name("registry").secret_string(r#"{"exceptions":[]}"#).send().await.unwrap();
    let vars = std::collections::HashMap::from([
        ("FINDINGS_TOPIC_ARN", topic.as_str()),
        ("APPROVALS_SECRET_ID", "registry"),
        ("ORGANIZATION_MODE", "true"),
    ]);
    let config = iam_sentinel::config::Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap();
    let mut deployment = iam_sentinel::runtime::Deployment::build(config, &sdk).await.unwrap();
    // moto has no iam:ListOrganizationsFeatures: both features on, as AWS would answer.
    deployment.set_root_access(crate::root_access::features(true, true).0);
    let opts = iam_sentinel::app::RunOptions::at(chrono::Utc::now());

    let listed = org_step(&deployment, OrgRequest::ListAccounts, &opts).await.unwrap();
    let accounts: Vec<String> = serde_json::from_value(listed["accounts"].clone()).unwrap();
    assert_eq!(accounts.len(), 4);
    // A console user without MFA in one member, created through the member role.
    let member = accounts.iter().find(|a| **a != management).unwrap().clone();
    let sts = aws_sdk_sts::Client::new(&sdk);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{member}:role/iam-sentinel-member"))
        .role_session_name("setup")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    let creds = Credentials::new(c.access_key_id(), c.secret_access_key(), Some(c.session_token().into()), None, "t");
    let iam =
        aws_sdk_iam::Client::from_conf(aws_sdk_iam::config::Builder::from(&sdk).credentials_provider(creds).build());
    iam.create_user().user_name("carol").send().await.unwrap();
    iam.create_login_profile().user_name("carol").password("Correct-Horse-9!").send().await.unwrap();

    let mut outputs = Vec::new();
    for account in &accounts {
        let request = OrgRequest::ScanAccount {
            account: account.clone(),
            account_name: None,
            management_account: Some(management.clone()),
            root_managed_centrally: listed["root_managed_centrally"].as_bool(),
        };
        outputs.push(org_step(&deployment, request, &opts).await.unwrap());
    }
    let state_machine = deploy(&emulator, &sdk, |function| state_machine_definition(function, 1)).await;
    let mut answers = vec![listed.clone()];
    answers.extend(outputs.iter().cloned());
    answers.push(json!({"published": 1}));
    emulator.queue_answers(&answers);
    let (execution, history) = execute(&emulator, &state_machine);
    assert_eq!(execution["status"], "SUCCEEDED", "{execution}");
    let digest_input = entered_with(&history, "Digest").expect("the digest ran");
    assert_eq!(digest_input["results"], json!(outputs.iter().map(kept).collect::<Vec<_>>()));

    // Drain what the scans published (each message deleted: none comes back once its
    // visibility timeout ends), then hand the Digest state's input to the function.
    loop {
        let out = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
        if out.messages().is_empty() {
            break;
        }
        for m in out.messages() {
            sqs.delete_message().queue_url(&queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    // The Digest task passes the state's accounts and results (its Parameters).
    let input: DigestInput =
        serde_json::from_value(json!({"accounts": digest_input["accounts"], "results": digest_input["results"]}))
            .unwrap();
    let answer = org_step(&deployment, OrgRequest::Digest(input), &opts).await.unwrap();
    assert_eq!(answer["org_digest"]["accounts_scanned"], 4, "{answer}");
    assert_eq!(answer["org_digest"]["by_check"]["console-without-mfa"], 1, "{answer}");
    let received = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
    let bodies: Vec<Value> = received
        .messages()
        .iter()
        .map(|m| serde_json::from_str::<Value>(m.body().unwrap()).unwrap())
        .map(|envelope| serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap())
        .collect();
    let digest = bodies.iter().find(|b| b.get("org_digest").is_some()).expect("the organization digest");
    assert_eq!(digest["org_digest"]["accounts_listed"], 4, "{digest}");
    // Worst first: the member with carol leads (every member also lacks a password policy).
    assert_eq!(digest["accounts"][0]["account"], member.as_str(), "{digest}");
    assert_eq!(digest["accounts"].as_array().unwrap().len(), 4);
}
