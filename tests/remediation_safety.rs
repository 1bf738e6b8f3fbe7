//! Never a wrong untag, never a silent overrun: approvals that change between read and
//! remediation, approvals expiring around "now", a registry that fails on re-read,
//! concurrent events for one user, and a scan that meets the Lambda deadline.

mod common;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Account, registry, sample};
use iam_sentinel::app::{App, AppError, RunOptions, stop_before};
use iam_sentinel::approvals::Approvals;
use iam_sentinel::aws::iam::IamDirectory;
use iam_sentinel::aws::sns::SnsSink;
use iam_sentinel::finding::{Finding, RemediationStatus};
use iam_sentinel::ports::{
    AccountReader, AccountSnapshot, ApprovalsStore, CallError, RegistryUnavailable, ScanError, UserDirectory,
};
use iam_sentinel::runtime::build_app_with;
use iam_sentinel::snapshot::UserSnapshot;

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
}

fn approving(user: &str, expires: chrono::DateTime<Utc>) -> Approvals {
    Approvals::parse(&registry(&[(user, &expires.to_rfc3339())])).unwrap()
}

fn app_with(acct: &Account, approvals: Changing) -> App<IamDirectory, Changing, SnsSink> {
    App {
        config: acct.config(&[("AUTO_REMEDIATE", "true")]),
        directory: IamDirectory::new(aws_sdk_iam::Client::new(&acct.sdk)),
        approvals,
        sink: Some(SnsSink::new(aws_sdk_sns::Client::new(&acct.sdk), acct.topic_arn.clone())),
        region: "us-east-1".into(),
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
async fn a_scan_near_the_deadline_stops_and_fails_loudly() {
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    acct.create_user("dev-mallory", &[("AccessException", "True")]).await;
    let (app, _) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true")]), &acct.sdk);

    // The time to stop has already come: nothing is read, published or untagged.
    let opts = RunOptions { stop_by: Some(Instant::now()), ..RunOptions::at(Utc::now()) };
    let err = app.scan(None, &opts).await.unwrap_err();
    assert!(matches!(err, AppError::DeadlineNear { .. }), "{err}");
    assert!(err.to_string().contains("before the Lambda deadline"), "{err}");

    // The deadline arrives while the account is being read (the report takes a 100 ms poll).
    let opts = RunOptions { stop_by: Some(stop_before(Duration::from_millis(20))), ..RunOptions::at(Utc::now()) };
    let err = app.scan(None, &opts).await.unwrap_err();
    assert!(err.to_string().contains("no finding was published"), "{err}");
    assert!(acct.received().await.is_empty());
    assert_eq!(acct.tags("dev-mallory").await.len(), 1);

    // Through the Lambda handler, the runtime's deadline is honoured and typed.
    let slow = App {
        config: acct.config(&[]),
        directory: Slow,
        approvals: Changing::new(vec![Ok(Approvals::default())]),
        sink: Some(SnsSink::new(aws_sdk_sns::Client::new(&acct.sdk), acct.topic_arn.clone())),
        region: "us-east-1".into(),
    };
    let mut context = lambda_runtime::Context::default();
    context.deadline = u64::try_from(Utc::now().timestamp_millis()).unwrap() + 300;
    let started = Instant::now();
    let event = lambda_runtime::LambdaEvent::new(sample("scheduled-daily-scan.json"), context);
    let err = iam_sentinel::lambda::handle(&slow, None, event).await.unwrap_err();
    assert_eq!(err.error_type, "DeadlineExceeded");
    assert!(started.elapsed() < Duration::from_millis(300), "stopped before the deadline: {:?}", started.elapsed());
    assert!(acct.received().await.is_empty());
}

/// An account that takes a minute to read.
struct Slow;

impl UserDirectory for Slow {
    async fn read_user(&self, _: &str) -> Result<Option<UserSnapshot>, CallError> {
        Ok(None)
    }
    async fn remove_tag(&self, _: &str, _: &str) -> Result<(), CallError> {
        Ok(())
    }
}

impl AccountReader for Slow {
    async fn read_account(&self) -> Result<AccountSnapshot, ScanError> {
        tokio::time::sleep(Duration::from_mins(1)).await;
        Ok(AccountSnapshot::default())
    }
    async fn list_user_names(&self) -> Result<Vec<String>, ScanError> {
        Ok(vec![])
    }
}

#[test]
fn the_margin_is_a_tenth_of_the_time_left_and_at_most_10_s() {
    let at = |secs: u64| stop_before(Duration::from_secs(secs)).saturating_duration_since(Instant::now());
    assert!(at(300) > Duration::from_secs(289) && at(300) <= Duration::from_secs(290));
    assert!(at(3) > Duration::from_millis(2650) && at(3) <= Duration::from_millis(2700));
}
