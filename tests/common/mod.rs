//! Shared integration-test harness: a real moto server per test (pooled: see [`Moto`]), and
//! fixture builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_iam::config::Credentials;
use iam_sentinel::config::Config;
use serde_json::Value;

pub const ACCOUNT: &str = "123456789012";

/// A moto server for one test at a time: taken from a pool shared by the tests of this
/// binary, and reset (`POST /moto-api/reset`, every backend emptied) before the next test
/// gets it. Starting moto costs about two seconds a test; a reset, done as the test ends,
/// costs a fraction of that. Each server serves one test at a time, so tests stay
/// independent of one another and of their order.
///
/// AWS's managed policies (`arn:aws:iam::aws:policy/…`) are loaded only by the servers of
/// [`Moto::with_managed_policies`]: moto loads them into every account it sees after each
/// reset (about 0.6 s of CPU an account), and only the tests that attach one need them.
pub struct Moto {
    server: Option<Server>,
    pub url: String,
}

/// A running `moto_server` process and its port.
struct Server {
    child: Child,
    port: u16,
    managed_policies: bool,
}

/// Servers free for the next test, each reset: without AWS's managed policies, and with them.
static POOL: std::sync::Mutex<Vec<Server>> = std::sync::Mutex::new(Vec::new());
static POOL_WITH_MANAGED_POLICIES: std::sync::Mutex<Vec<Server>> = std::sync::Mutex::new(Vec::new());

fn pool(managed_policies: bool) -> std::sync::MutexGuard<'static, Vec<Server>> {
    let pool = if managed_policies { &POOL_WITH_MANAGED_POLICIES } else { &POOL };
    pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Server {
    fn start(managed_policies: bool) -> Server {
        let bin = std::env::var_os("MOTO_SERVER")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server"), PathBuf::from);
        assert!(
            bin.exists(),
            "moto_server not found at {}: run ./scripts/test, which installs the pinned moto into .venv",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let args = ["-H".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned(), port.to_string()];
        // A pooled server outlives the test that started it, up to the end of the test binary,
        // which never drops the pool: moto runs under its venv's python with a watchdog that
        // exits when its stdin, a pipe from this process, closes (this process ended).
        let python = bin.parent().map(|dir| dir.join("python")).filter(|p| p.exists());
        let mut cmd = if let Some(python) = &python {
            let mut cmd = Command::new(python);
            cmd.arg("-c").arg(WATCHDOG).args(&args).stdin(Stdio::piped());
            cmd
        } else {
            let mut cmd = Command::new(&bin);
            cmd.args(&args).stdin(Stdio::null());
            cmd
        };
        let child = cmd
            // AWS managed policies (AdministratorAccess, …) exist, so they can be attached.
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", if managed_policies { "true" } else { "false" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let server = Server { child, port, managed_policies };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on port {port} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// Empties every backend; false when the server does not answer (it is then discarded).
    fn reset(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let request = format!(
            "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if std::io::Write::write_all(&mut stream, request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut response);
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs moto's server (its arguments after `-c`), exiting as soon as stdin reaches its end.
const WATCHDOG: &str = "import os, sys, threading\n\
def watch():\n    sys.stdin.buffer.read()\n    os._exit(0)\n\
threading.Thread(target=watch, daemon=True).start()\n\
from moto.server import main\n\
main(sys.argv[1:])\n";

impl Moto {
    /// A clean moto server from the pool, or a new one when every pooled server is in use.
    pub fn start() -> Moto {
        Moto::from_pool(false)
    }

    /// A clean moto server whose accounts have AWS's managed policies (`AdministratorAccess`, …).
    pub fn with_managed_policies() -> Moto {
        Moto::from_pool(true)
    }

    fn from_pool(managed_policies: bool) -> Moto {
        let pooled = pool(managed_policies).pop();
        let server = pooled.unwrap_or_else(|| Server::start(managed_policies));
        let url = format!("http://127.0.0.1:{}", server.port);
        Moto { server: Some(server), url }
    }

    /// The environment a child process (CLI, Lambda emulator) needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }
}

impl Drop for Moto {
    /// Resets the server and gives it back to the pool (a server that does not answer is
    /// killed instead).
    fn drop(&mut self) {
        if let Some(server) = self.server.take()
            && server.reset()
        {
            pool(server.managed_policies).push(server);
        }
    }
}

/// One message as an SQS subscriber of the findings topic receives it.
#[derive(Debug, Clone)]
pub struct Received {
    pub subject: String,
    pub finding: Value,
    pub attributes: HashMap<String, String>,
}

impl Received {
    pub fn check(&self) -> &str {
        self.finding["check"].as_str().unwrap_or_default()
    }
    pub fn user(&self) -> &str {
        self.finding["user"].as_str().unwrap_or_default()
    }
}

/// A moto account with IAM users, the registry secret, and a topic with a queue subscribed.
pub struct Account {
    pub moto: Moto,
    pub sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub topic_arn: String,
    pub queue_url: String,
}

pub const SECRET_ID: &str = "iam-sentinel/approvals";

impl Account {
    pub async fn new() -> Account {
        Account::on(Moto::start()).await
    }

    /// An account whose IAM has AWS's managed policies, for tests that attach one.
    pub async fn with_managed_policies() -> Account {
        Account::on(Moto::with_managed_policies()).await
    }

    async fn on(moto: Moto) -> Account {
        let sdk = moto.sdk_config().await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let sns = aws_sdk_sns::Client::new(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
        let topic_arn = sns.create_topic().name("iam-sentinel-findings").send().await.unwrap().topic_arn.unwrap();
        let queue_url = sqs.create_queue().queue_name("findings-subscriber").send().await.unwrap().queue_url.unwrap();
        let queue_arn = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:findings-subscriber");
        sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(queue_arn).send().await.unwrap();
        // A password policy at the CIS minimums, as a governed account has (tests of
        // password-policy-weak change or delete it).
        iam.update_account_password_policy()
            .minimum_password_length(14)
            .password_reuse_prevention(24)
            .send()
            .await
            .unwrap();
        Account { moto, sdk, iam, sns, sqs, secrets, topic_arn, queue_url }
    }

    /// The function's configuration for this account (plus `extra` variables).
    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("FINDINGS_TOPIC_ARN".into(), self.topic_arn.clone()),
            ("APPROVALS_SECRET_ID".into(), SECRET_ID.into()),
        ]);
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        Config::from_lookup(|k| vars.get(k).cloned()).expect("test configuration is valid")
    }

    pub async fn create_user(&self, name: &str, tags: &[(&str, &str)]) {
        let mut req = self.iam.create_user().user_name(name);
        for (k, v) in tags {
            req = req.tags(aws_sdk_iam::types::Tag::builder().key(*k).value(*v).build().unwrap());
        }
        req.send().await.unwrap();
    }

    pub async fn tag(&self, name: &str, key: &str, value: &str) {
        self.iam
            .tag_user()
            .user_name(name)
            .tags(aws_sdk_iam::types::Tag::builder().key(key).value(value).build().unwrap())
            .send()
            .await
            .unwrap();
    }

    pub async fn tags(&self, name: &str) -> Vec<(String, String)> {
        let out = self.iam.list_user_tags().user_name(name).send().await.unwrap();
        out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()
    }

    pub async fn create_key(&self, name: &str) -> String {
        let out = self.iam.create_access_key().user_name(name).send().await.unwrap();
        out.access_key.unwrap().access_key_id
    }

    pub async fn enable_mfa(&self, name: &str) {
        let dev = self.iam.create_virtual_mfa_device().virtual_mfa_device_name(name).send().await.unwrap();
        let serial = dev.virtual_mfa_device.unwrap().serial_number;
        self.iam
            .enable_mfa_device()
            .user_name(name)
            .serial_number(serial)
            .authentication_code1("123456")
            .authentication_code2("654321")
            .send()
            .await
            .unwrap();
    }

    pub async fn create_login_profile(&self, name: &str) {
        self.iam.create_login_profile().user_name(name).password("Correct-Horse-9!").send().await.unwrap();
    }

    /// Runs the `iam-sentinel` binary (CLI mode) against this account with `extra` variables.
    pub fn cli(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iam-sentinel"));
        cmd.args(args).env_remove("AWS_LAMBDA_RUNTIME_API");
        for (k, v) in self.moto.env() {
            cmd.env(k, v);
        }
        cmd.env("FINDINGS_TOPIC_ARN", &self.topic_arn).env("APPROVALS_SECRET_ID", SECRET_ID);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Writes the registry secret (created on first use).
    pub async fn put_registry(&self, json: &str) {
        let exists = self.secrets.describe_secret().secret_id(SECRET_ID).send().await.is_ok();
        if exists {
            self.secrets.put_secret_value().secret_id(SECRET_ID).secret_string(json).send().await.unwrap();
        } else {
            self.secrets.create_secret().name(SECRET_ID).secret_string(json).send().await.unwrap();
        }
    }

    /// Every message waiting on the subscribed queue (deleted once read).
    pub async fn received(&self) -> Vec<Received> {
        let mut all = Vec::new();
        loop {
            let out =
                self.sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).send().await.unwrap();
            let msgs = out.messages.unwrap_or_default();
            if msgs.is_empty() {
                return all;
            }
            for m in msgs {
                let envelope: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let finding: Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
                let attributes = envelope["MessageAttributes"]
                    .as_object()
                    .map(|o| {
                        o.iter().map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or_default().to_owned())).collect()
                    })
                    .unwrap_or_default();
                all.push(Received {
                    subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                    finding,
                    attributes,
                });
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

/// A sample from `events/`, parsed.
pub fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The name of every sample in `events/`, read from the directory, sorted.
pub fn sample_files() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| std::path::Path::new(name).extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
}

/// Sorted `(check, user)` pairs.
pub fn pairs<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let mut v: Vec<_> = items.into_iter().map(|(c, u)| (c.to_owned(), u.to_owned())).collect();
    v.sort();
    v
}

/// An approvals registry approving `entries` of (user, expires).
pub fn registry(entries: &[(&str, &str)]) -> String {
    let items: Vec<Value> = entries
        .iter()
        .map(|(u, exp)| serde_json::json!({"user": u, "approved_by": "sec-lead@example.com", "ticket": format!("SEC-{}", u.len()), "expires": exp, "reason": "legacy integration"}))
        .collect();
    serde_json::json!({ "exceptions": items }).to_string()
}
