//! Never a wrong untag, never a silent overrun: approvals that change between read and
//! remediation, approvals expiring around "now", a registry that fails on re-read,
//! concurrent events for one user, and a scan that meets the Lambda deadline.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::common::{Account, registry, sample};
use chrono::Utc;
use iam_sentinel::app::{App, AppError, RunOptions, stop_before};
use iam_sentinel::approvals::Approvals;
use iam_sentinel::aws::iam::IamDirectory;
use iam_sentinel::aws::sns::SnsSink;
use iam_sentinel::checks::RootSummary;
use iam_sentinel::checks::password::PasswordPolicy;
use iam_sentinel::checks::registry::Version;
use iam_sentinel::finding::{Finding, RemediationStatus};
use iam_sentinel::message::Message;
use iam_sentinel::ports::{
    AccessSnapshot, AccountReader, AccountSnapshot, ApprovalsStore, CallError, FindingsSink, PublishError,
    RegistryUnavailable, ScanError, UserDirectory,
};
use iam_sentinel::runtime::build_app_with;
use iam_sentinel::snapshot::{Tag, UserSnapshot};

/// A registry whose successive reads return the given results (the last one repeats).
struct Changing(Mutex<VecDeque<Result<Approvals, RegistryUnavailable>>>);

impl Changing {
    fn new(reads: Vec<Result<Approvals, RegistryUnavailable>>) -> Self {
        Changing(Mutex::new(reads.into()))
    }
}

impl ApprovalsStore for Changing {
    async fn load(&self) -> Result<Approvals, RegistryUnavailable> {
        let mut reads = self.0.lock().unwrap();
        if reads.len() > 1 { reads.pop_front().unwrap() } else { reads[0].clone() }
    }
    fn location(&self) -> &'static str {
        "test-registry"
    }
    async fn version(&self, _: &'static str) -> Result<Version, CallError> {
        Ok(Version::Missing)
    }
    async fn last_changed(&self) -> Result<Option<chrono::DateTime<Utc>>, CallError> {
        Ok(None)
    }
}

fn approving(user: &str, expires: chrono::DateTime<Utc>) -> Approvals {
    Approvals::parse(&registry(&[(user, &expires.to_rfc3339())])).unwrap()
}

fn app_with(acct: &Account, approvals: Changing) -> App<IamDirectory, Changing, SnsSink> {
    App {
        findings_store: None,
        config: acct.config(&[("AUTO_REMEDIATE", "true")]),
        directory: IamDirectory::new(aws_sdk_iam::Client::new(&acct.sdk)),
        approvals,
        sink: Some(SnsSink::new(aws_sdk_sns::Client::new(&acct.sdk), acct.topic_arn.clone())),
        region: "us-east-1".into(),
        key_rotation: None,
        state: None,
        root_sessions: None,
        organization: None,
    }
}

fn remediation(findings: &[Finding]) -> Option<RemediationStatus> {
    findings
        .iter()
        .find(|f| f.check.as_str() == "exception-unapproved")
        .and_then(|f| f.remediation.as_ref())
        .map(|r| r.status)
}

#[tokio::test]
async fn an_approval_that_lands_between_read_and_untag_is_honoured() {
    let acct = Account::new().await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let later = Utc::now() + chrono::Duration::days(30);
    let now = RunOptions::at(Utc::now());

    let app = app_with(&acct, Changing::new(vec![Ok(Approvals::default()), Ok(approving("dev-mallory", later))]));
    let report = app.handle(sample("tag-user-self-granted.json"), &now).await.unwrap();
    assert_eq!(remediation(&report.findings), Some(RemediationStatus::Skipped));
    assert_eq!(acct.tags("dev-mallory").await.len(), 1, "not untagged");

    let app = app_with(&acct, Changing::new(vec![Ok(Approvals::default()), Ok(approving("dev-mallory", later))]));
    let scan = app.scan(None, &now).await.unwrap();
    assert_eq!(remediation(&scan.findings), Some(RemediationStatus::Skipped));
    assert_eq!(acct.tags("dev-mallory").await.len(), 1, "not untagged by the scan either");
}

#[tokio::test]
async fn a_registry_that_fails_on_re_read_untags_nothing_and_fails() {
    let acct = Account::new().await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let down = Err(RegistryUnavailable::Read(CallError {
        action: "secretsmanager:GetSecretValue",
        target: "test-registry".into(),
        message: "service unavailable".into(),
    }));
    let app = app_with(&acct, Changing::new(vec![Ok(Approvals::default()), down]));
    let report = app.handle(sample("tag-user-self-granted.json"), &RunOptions::at(Utc::now())).await.unwrap();
    assert_eq!(remediation(&report.findings), Some(RemediationStatus::Failed));
    assert!(report.failure.as_deref().unwrap().contains("not untagged"), "{:?}", report.failure);
    assert_eq!(acct.tags("dev-mallory").await.len(), 1);
}

#[tokio::test]
async fn approvals_expiring_around_now_untag_only_once_expired() {
    let acct = Account::new().await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    acct.create_key("dev-mallory").await;
    let now = Utc::now();
    // Valid one second past "now": expiring, never untagged, whatever the clock says later.
    let app = app_with(&acct, Changing::new(vec![Ok(approving("dev-mallory", now + chrono::Duration::seconds(1)))]));
    let report = app.scan(None, &RunOptions::at(now)).await.unwrap();
    assert_eq!(report.findings.iter().map(|f| f.check.as_str()).collect::<Vec<_>>(), ["exception-expiring"]);
    assert_eq!(acct.tags("dev-mallory").await.len(), 1);
    // Expired exactly at "now": untagged.
    let app = app_with(&acct, Changing::new(vec![Ok(approving("dev-mallory", now))]));
    let report = app.scan(None, &RunOptions::at(now)).await.unwrap();
    let expired = report.findings.iter().find(|f| f.check.as_str() == "exception-expired").unwrap();
    assert_eq!(expired.remediation.as_ref().unwrap().status, RemediationStatus::Applied);
    assert!(acct.tags("dev-mallory").await.is_empty());
}

#[tokio::test]
async fn two_events_for_one_user_at_once_are_safe() {
    let acct = Account::new().await;
    let later = (Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    acct.put_registry(&registry(&[("svc-legacy-erp", &later)])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let (app, _) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true")]), &acct.sdk);
    let opts = RunOptions::at(Utc::now());
    let (a, b, c, d) = tokio::join!(
        app.handle(sample("tag-user-self-granted.json"), &opts),
        app.handle(sample("tag-user-self-granted.json"), &opts),
        app.handle(sample("tag-user-access-exception.json"), &opts),
        app.handle(sample("tag-user-access-exception.json"), &opts),
    );
    for r in [a, b, c, d] {
        assert_eq!(r.unwrap().failure, None);
    }
    assert!(acct.tags("dev-mallory").await.is_empty(), "untagged (idempotently)");
    assert_eq!(acct.tags("svc-legacy-erp").await.len(), 1, "approved user never untagged");
}

#[tokio::test]
async fn a_scan_whose_deadline_has_come_reads_publishes_and_untags_nothing() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let (app, _) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true")]), &acct.sdk);
    let opts = RunOptions { stop_by: Some(Instant::now()), ..RunOptions::at(Utc::now()) };
    let err = app.scan(None, &opts).await.unwrap_err();
    assert!(matches!(err, AppError::DeadlineNear { .. }), "{err}");
    assert!(err.to_string().contains("before the Lambda deadline"), "{err}");
    assert!(acct.received().await.is_empty());
    assert_eq!(acct.tags("dev-mallory").await.len(), 1);
}

/// An account read from memory where every call takes simulated time (paused tokio clock):
/// reading the account `read`, each untag `untag`.
struct Timed {
    users: Vec<UserSnapshot>,
    read: Duration,
    untag: Duration,
    untagged: Mutex<Vec<String>>,
}

impl Timed {
    fn unapproved(n: usize, read: Duration, untag: Duration) -> Timed {
        let users = (0..n)
            .map(|i| UserSnapshot {
                created: None,
                name: format!("user-{i:02}"),
                arn: format!("arn:aws:iam::123456789012:user/user-{i:02}"),
                tags: vec![Tag::new("AccessException", "True")],
                keys: vec![],
                password_enabled: false,
                password_last_used: None,
                password_set: None,
                mfa_active: false,
                policies: None,
            })
            .collect();
        Timed { users, read, untag, untagged: Mutex::new(Vec::new()) }
    }
}

impl UserDirectory for Timed {
    async fn read_user(&self, name: &str) -> Result<Option<UserSnapshot>, CallError> {
        Ok(self.users.iter().find(|u| u.name == name).cloned())
    }
    async fn remove_tag(&self, user: &str, _: &str) -> Result<(), CallError> {
        tokio::time::sleep(self.untag).await;
        self.untagged.lock().unwrap().push(user.to_owned());
        Ok(())
    }
    // Stale-key deactivation and undo are not exercised with this fake: it holds no keys.
    async fn list_keys(&self, user: &str) -> Result<Option<Vec<iam_sentinel::ports::KeyState>>, CallError> {
        Ok(self.users.iter().any(|u| u.name == user).then(Vec::new))
    }
    async fn set_key_status(&self, _: &str, _: &str, _: bool) -> Result<(), CallError> {
        Ok(())
    }
    async fn read_tags(&self, user: &str) -> Result<Option<Vec<iam_sentinel::snapshot::Tag>>, CallError> {
        Ok(self.users.iter().find(|u| u.name == user).map(|u| u.tags.clone()))
    }
    async fn add_tag(&self, _: &str, _: &str, _: &str) -> Result<(), CallError> {
        Ok(())
    }
}

impl AccountReader for Timed {
    async fn read_account(&self) -> Result<AccountSnapshot, ScanError> {
        tokio::time::sleep(self.read).await;
        Ok(AccountSnapshot {
            account: Some("123456789012".into()),
            users: self.users.clone(),
            password_policy: Some(PasswordPolicy {
                minimum_password_length: Some(14),
                password_reuse_prevention: Some(24),
                ..PasswordPolicy::default()
            }),
            ..AccountSnapshot::default()
        })
    }
    async fn read_root_summary(&self) -> Result<RootSummary, CallError> {
        Ok(RootSummary { access_keys_present: false, mfa_enabled: true, ..RootSummary::default() })
    }
    async fn read_access(&self) -> Result<AccessSnapshot, CallError> {
        Ok(AccessSnapshot::default())
    }
    async fn read_password_policy(&self) -> Result<Option<PasswordPolicy>, CallError> {
        Ok(None)
    }
    async fn list_user_names(&self) -> Result<Vec<String>, ScanError> {
        Ok(self.users.iter().map(|u| u.name.clone()).collect())
    }
    async fn role_exists(&self, _: &str) -> Result<bool, CallError> {
        Ok(true)
    }
}

/// A topic where each batch of 10 messages takes `per_batch`, honouring the deadline before each
/// batch as the SNS sink does.
struct TimedTopic {
    per_batch: Duration,
    published: Mutex<usize>,
}

impl FindingsSink for TimedTopic {
    async fn publish(&self, messages: &[Message], stop_by: Option<Instant>) -> Result<usize, PublishError> {
        let mut done = 0;
        for batch in messages.chunks(10) {
            if stop_by.is_some_and(|t| Instant::now() >= t) {
                return Err(PublishError {
                    published: done,
                    total: messages.len(),
                    failed: "deadline".into(),
                    deadline: true,
                    sent: messages[..done].iter().map(|m| m.id.clone()).collect(),
                });
            }
            tokio::time::sleep(self.per_batch).await;
            done += batch.len();
            *self.published.lock().unwrap() = done;
        }
        Ok(done)
    }
}

fn timed_app(directory: Timed, per_batch: Duration) -> App<Timed, Changing, TimedTopic> {
    let config = iam_sentinel::config::Config::from_lookup(|k| match k {
        "APPROVALS_SECRET_ID" => Some("test-registry".into()),
        "AUTO_REMEDIATE" => Some("true".into()),
        _ => None,
    })
    .unwrap();
    App {
        findings_store: None,
        config,
        directory,
        approvals: Changing::new(vec![Ok(Approvals::default())]),
        sink: Some(TimedTopic { per_batch, published: Mutex::new(0) }),
        region: "us-east-1".into(),
        key_rotation: None,
        state: None,
        root_sessions: None,
        organization: None,
    }
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_checked_before_each_untag_and_says_how_far_it_got() {
    // 20 unapproved users, 1 s per untag, 6.5 s to go: untags start at 0..6 s, the 8th would start at 7 s.
    let app = timed_app(Timed::unapproved(20, Duration::ZERO, Duration::from_secs(1)), Duration::ZERO);
    let opts = RunOptions { stop_by: Some(Instant::now() + Duration::from_millis(6500)), ..RunOptions::at(Utc::now()) };
    let err = app.scan(None, &opts).await.unwrap_err();
    assert!(matches!(err, AppError::DeadlineNear { .. }), "{err}");
    assert!(err.to_string().contains("untagged 7 of 20"), "{err}");
    assert!(err.to_string().contains("nothing was published"), "{err}");
    assert_eq!(app.directory.untagged.lock().unwrap().len(), 7);
    assert_eq!(*app.sink.as_ref().unwrap().published.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_checked_before_each_publish_batch_and_says_how_far_it_got() {
    // 20 users, untagging is instant, each batch of 10 messages takes 2 s; 3 s to go:
    // the digest and the first high-severity batches go out, then a stop.
    let app = timed_app(Timed::unapproved(20, Duration::ZERO, Duration::ZERO), Duration::from_secs(2));
    let opts = RunOptions { stop_by: Some(Instant::now() + Duration::from_secs(3)), ..RunOptions::at(Utc::now()) };
    let err = app.scan(None, &opts).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AppError::DeadlineNear { .. }), "{text}");
    assert!(text.contains("untagged 20 of 20, published 20 of 21 messages"), "{text}");
    assert!(text.contains("the rest were not sent"), "{text}");
    assert_eq!(*app.sink.as_ref().unwrap().published.lock().unwrap(), 20);
}

#[tokio::test(start_paused = true)]
async fn a_slow_account_read_stops_before_the_deadline_through_the_lambda_handler() {
    let app = timed_app(Timed::unapproved(3, Duration::from_mins(1), Duration::ZERO), Duration::ZERO);
    let mut context = lambda_runtime::Context::default();
    // 30 s left, the read takes 60 s: it is cut at the stop point (27 s: a tenth kept as margin),
    // in simulated time.
    context.deadline = u64::try_from(Utc::now().timestamp_millis()).unwrap() + 30_000;
    let started = Instant::now();
    let event = lambda_runtime::LambdaEvent::new(sample("scheduled-daily-scan.json"), context);
    let err = iam_sentinel::lambda::handle(&app, None, event).await.unwrap_err();
    assert_eq!(err.error_type, "DeadlineExceeded");
    assert!(err.message.contains("no finding was published, no tag removed"), "{}", err.message);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(26) && waited <= Duration::from_secs(28), "{waited:?}");
    assert!(app.directory.untagged.lock().unwrap().is_empty());
    assert_eq!(*app.sink.as_ref().unwrap().published.lock().unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_margin_is_a_tenth_of_the_time_left_and_at_most_10_s() {
    let at = |secs: u64| stop_before(Duration::from_secs(secs)).saturating_duration_since(Instant::now());
    assert_eq!(at(300), Duration::from_secs(290));
    assert_eq!(at(3), Duration::from_millis(2700));
}
