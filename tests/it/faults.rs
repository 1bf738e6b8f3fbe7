//! Throttling and 5xx on IAM, SNS and Secrets Manager (injected with aws-smithy-mocks):
//! within the retry policy the findings are the same as without faults; past it the
//! invocation fails naming the call. Partial `PublishBatch` failures resend only the
//! failed entries.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
use aws_sdk_iam::operation::get_login_profile::GetLoginProfileOutput;
use aws_sdk_iam::operation::get_user::GetUserOutput;
use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
use aws_sdk_iam::operation::list_mfa_devices::ListMfaDevicesOutput;
use aws_sdk_iam::primitives::{Blob, DateTime};
use aws_sdk_iam::types::{LoginProfile, ReportStateType, Tag, User, UserDetail};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_sns::operation::publish_batch::PublishBatchOutput;
use aws_sdk_sns::types::{BatchResultErrorEntry, PublishBatchResultEntry};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use iam_sentinel::app::{App, RunOptions};
use iam_sentinel::aws::approvals::SecretApprovals;
use iam_sentinel::aws::iam::IamDirectory;
use iam_sentinel::aws::retry_config;
use iam_sentinel::aws::sns::SnsSink;
use iam_sentinel::config::Config;
use iam_sentinel::runtime::AwsApp;

const IAM_THROTTLED: &str = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
const SM_THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:findings";
/// A credential report where analyst-dave has a console password (used yesterday) and no MFA.
fn report() -> String {
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    iam_sentinel::credential_report::report_text(&[&format!(
        "analyst-dave,arn:aws:iam::123456789012:user/analyst-dave,2025-01-01T00:00:00+00:00,true,{yesterday},N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    )])
}

/// The production retry policy with a 1 ms first backoff, so tests do not sleep.
macro_rules! client {
    ($sdk:ident, $rules:expr) => {
        mock_client!($sdk, RuleMode::MatchAny, $rules, |b| b.retry_config(retry_config(Duration::from_millis(1))))
    };
}

fn build(iam: aws_sdk_iam::Client, sm: aws_sdk_secretsmanager::Client, sns: aws_sdk_sns::Client) -> AwsApp {
    let vars = HashMap::from([("APPROVALS_SECRET_ID", "approvals"), ("FINDINGS_TOPIC_ARN", TOPIC)]);
    App {
        findings_store: None,
        config: Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap(),
        directory: IamDirectory::new(iam).with_report_wait(5, Duration::from_millis(1)),
        approvals: SecretApprovals::new(sm, "approvals".into()),
        sink: Some(SnsSink::new(sns, TOPIC.into())),
        region: "us-east-1".into(),
        key_rotation: None,
        state: None,
        root_sessions: None,
        organization: None,
    }
}

fn user(tagged: bool) -> GetUserOutput {
    let mut u = User::builder()
        .user_name("analyst-dave")
        .arn("arn:aws:iam::123456789012:user/analyst-dave")
        .user_id("AIDAEXAMPLE")
        .path("/")
        .create_date(DateTime::from_secs(1_700_000_000));
    if tagged {
        u = u.tags(Tag::builder().key("AccessException").value("True").build().unwrap());
    }
    GetUserOutput::builder().user(u.build().unwrap()).build()
}

/// IAM rules for the single-user read of analyst-dave (console, no MFA), each failing `faults` times first.
fn iam_rules(faults: usize, tagged: bool) -> Vec<Rule> {
    let no_keys = || ListAccessKeysOutput::builder().set_access_key_metadata(Some(vec![])).build().unwrap();
    let no_mfa = || ListMfaDevicesOutput::builder().set_mfa_devices(Some(vec![])).build().unwrap();
    let login = || {
        GetLoginProfileOutput::builder()
            .login_profile(
                // Set yesterday: a fresh password, so only the missing MFA is reported.
                LoginProfile::builder()
                    .user_name("analyst-dave")
                    .create_date(DateTime::from_secs(chrono::Utc::now().timestamp() - 86_400))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    if faults == 0 {
        return vec![
            mock!(aws_sdk_iam::Client::get_user).then_output(move || user(tagged)),
            mock!(aws_sdk_iam::Client::list_access_keys).then_output(no_keys),
            mock!(aws_sdk_iam::Client::list_mfa_devices).then_output(no_mfa),
            mock!(aws_sdk_iam::Client::get_login_profile).then_output(login),
            gaad_rule(0),
        ];
    }
    vec![
        mock!(aws_sdk_iam::Client::get_user)
            .sequence()
            .http_status(400, Some(IAM_THROTTLED.into()))
            .times(faults)
            .output(move || user(tagged))
            .build(),
        mock!(aws_sdk_iam::Client::list_access_keys)
            .sequence()
            .http_status(503, None)
            .times(faults)
            .output(no_keys)
            .build(),
        mock!(aws_sdk_iam::Client::list_mfa_devices)
            .sequence()
            .http_status(500, None)
            .times(faults)
            .output(no_mfa)
            .build(),
        mock!(aws_sdk_iam::Client::get_login_profile)
            .sequence()
            .http_status(503, None)
            .times(faults)
            .output(login)
            .build(),
        gaad_rule(faults),
    ]
}

/// `GetAccountAuthorizationDetails` (read on a CreateLoginProfile): analyst-dave is in a group
/// with the RequireMFA policy, so the MFA policy check passes; `faults` failures first.
fn gaad_rule(faults: usize) -> Rule {
    let details = || {
        let require_mfa = include_str!("../../infra/policies/RequireMFA.json");
        let encoded = percent_encoding::utf8_percent_encode(require_mfa, percent_encoding::NON_ALPHANUMERIC);
        GetAccountAuthorizationDetailsOutput::builder()
            .user_detail_list(
                UserDetail::builder()
                    .user_name("analyst-dave")
                    .arn("arn:aws:iam::123456789012:user/analyst-dave")
                    .group_list("staff")
                    .build(),
            )
            .group_detail_list(
                aws_sdk_iam::types::GroupDetail::builder()
                    .group_name("staff")
                    .group_policy_list(
                        aws_sdk_iam::types::PolicyDetail::builder()
                            .policy_name("RequireMFA")
                            .policy_document(encoded.to_string())
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    if faults == 0 {
        return mock!(aws_sdk_iam::Client::get_account_authorization_details).then_output(details);
    }
    mock!(aws_sdk_iam::Client::get_account_authorization_details)
        .sequence()
        .http_status(503, None)
        .times(faults)
        .output(details)
        .build()
}

fn secret_rule(faults: usize) -> Rule {
    let ok = || GetSecretValueOutput::builder().secret_string(r#"{"exceptions": []}"#).build();
    if faults == 0 {
        return mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(ok);
    }
    mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .sequence()
        .http_status(400, Some(SM_THROTTLED.into()))
        .times(faults)
        .output(ok)
        .build()
}

fn published(ids: &[&str]) -> PublishBatchOutput {
    let ok =
        ids.iter().map(|id| PublishBatchResultEntry::builder().id(*id).message_id(format!("m-{id}")).build()).collect();
    PublishBatchOutput::builder().set_successful(Some(ok)).build()
}

fn publish_rule(faults: usize) -> Rule {
    mock!(aws_sdk_sns::Client::publish_batch)
        .sequence()
        .http_status(503, None)
        .times(faults.max(1))
        .output(|| published(&["0"]))
        .build()
}

fn opts() -> RunOptions {
    RunOptions { publish: true, ..RunOptions::at(chrono::Utc::now()) }
}

fn event() -> serde_json::Value {
    serde_json::from_str(include_str!("../../events/create-login-profile.json")).unwrap()
}

#[tokio::test]
async fn the_event_path_rides_out_throttling_and_5xx_with_the_same_findings() {
    for faults in [0, 2, 4] {
        let iam = iam_rules(faults, false);
        let sm = secret_rule(faults);
        let sns = if faults == 0 {
            mock!(aws_sdk_sns::Client::publish_batch).then_output(|| published(&["0"]))
        } else {
            publish_rule(faults)
        };
        let app =
            build(client!(aws_sdk_iam, &iam), client!(aws_sdk_secretsmanager, [&sm]), client!(aws_sdk_sns, [&sns]));
        let report = app.handle(event(), &opts()).await.unwrap();
        assert_eq!(report.failure, None, "{faults} faults");
        let checks: Vec<&str> = report.findings.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(checks, ["console-without-mfa"], "{faults} faults");
        assert_eq!(report.published, 1);
        assert_eq!(iam[0].num_calls(), faults + 1, "GetUser retried {faults} times");
        assert_eq!(sm.num_calls(), faults + 1);
        assert_eq!(sns.num_calls(), faults + 1);
    }
}

#[tokio::test]
async fn faults_past_the_retries_fail_naming_the_call() {
    // IAM down: no findings at all, an error naming iam:GetUser.
    let iam =
        vec![mock!(aws_sdk_iam::Client::get_user).sequence().http_status(503, None).repeatedly().build(), gaad_rule(0)];
    let sm = secret_rule(0);
    let sns = publish_rule(0);
    let app = build(client!(aws_sdk_iam, &iam), client!(aws_sdk_secretsmanager, [&sm]), client!(aws_sdk_sns, [&sns]));
    let err = app.handle(event(), &opts()).await.unwrap_err();
    assert!(err.to_string().contains("iam:GetUser on analyst-dave failed"), "{err}");
    assert_eq!(iam[0].num_calls(), 5, "5 attempts, then give up");
    let lambda = iam_sentinel::lambda::handle(
        &app,
        None,
        lambda_runtime::LambdaEvent::new(event(), lambda_runtime::Context::default()),
    )
    .await;
    assert_eq!(lambda.unwrap_err().error_type, "AwsCallFailed");

    // SNS down: the findings exist but the invocation fails, nothing reported as sent.
    let iam = iam_rules(0, false);
    let sns = mock!(aws_sdk_sns::Client::publish_batch).sequence().http_status(503, None).repeatedly().build();
    let app = build(client!(aws_sdk_iam, &iam), client!(aws_sdk_secretsmanager, [&sm]), client!(aws_sdk_sns, [&sns]));
    let report = app.handle(event(), &opts()).await.unwrap();
    assert_eq!(report.published, 0);
    assert!(report.failure.as_deref().unwrap().contains("sns:Publish"), "{:?}", report.failure);

    // Secrets Manager throttled throughout: registry unavailable, critical finding, failure.
    let iam = iam_rules(0, true);
    let sm = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
        .sequence()
        .http_status(400, Some(SM_THROTTLED.into()))
        .repeatedly()
        .build();
    let sns = mock!(aws_sdk_sns::Client::publish_batch).then_compute_output(|req| {
        let ids: Vec<&str> =
            req.publish_batch_request_entries().iter().map(aws_sdk_sns::types::PublishBatchRequestEntry::id).collect();
        published(&ids)
    });
    let app = build(client!(aws_sdk_iam, &iam), client!(aws_sdk_secretsmanager, [&sm]), client!(aws_sdk_sns, [&sns]));
    let report = app.handle(event(), &opts()).await.unwrap();
    assert!(report.failure.as_deref().unwrap().contains("secretsmanager:GetSecretValue"), "{:?}", report.failure);
    assert!(report.findings.iter().any(|f| f.check.as_str() == "approvals-registry-unavailable"));
    assert!(report.findings.iter().all(|f| f.remediation.is_none()), "nothing judged, nothing untagged");
}

#[tokio::test]
async fn a_partial_publish_failure_resends_only_the_failed_entries() {
    let iam = iam_rules(0, true);
    let sm = secret_rule(0);
    let first = mock!(aws_sdk_sns::Client::publish_batch)
        .match_requests(|r| r.publish_batch_request_entries().len() == 2)
        .then_output(|| {
            PublishBatchOutput::builder()
                .successful(PublishBatchResultEntry::builder().id("0").message_id("m-0").build())
                .failed(
                    BatchResultErrorEntry::builder().id("1").code("InternalError").sender_fault(false).build().unwrap(),
                )
                .build()
        });
    let retry = mock!(aws_sdk_sns::Client::publish_batch)
        .match_requests(|r| {
            r.publish_batch_request_entries()
                .iter()
                .map(aws_sdk_sns::types::PublishBatchRequestEntry::id)
                .collect::<Vec<_>>()
                == ["1"]
        })
        .then_output(|| published(&["1"]));
    let app = build(
        client!(aws_sdk_iam, &iam),
        client!(aws_sdk_secretsmanager, [&sm]),
        client!(aws_sdk_sns, [&first, &retry]),
    );
    let report = app.handle(event(), &opts()).await.unwrap();
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    assert_eq!(report.failure, None);
    assert_eq!(report.published, 2);
    assert_eq!((first.num_calls(), retry.num_calls()), (1, 1));

    // An entry SNS keeps refusing fails the invocation after the resends.
    let always = mock!(aws_sdk_sns::Client::publish_batch).then_compute_output(|req| {
        let failed = req
            .publish_batch_request_entries()
            .iter()
            .map(|e| {
                BatchResultErrorEntry::builder().id(e.id()).code("InternalError").sender_fault(false).build().unwrap()
            })
            .collect();
        PublishBatchOutput::builder().set_failed(Some(failed)).build()
    });
    let app =
        build(client!(aws_sdk_iam, &iam), client!(aws_sdk_secretsmanager, [&sm]), client!(aws_sdk_sns, [&always]));
    let report = app.handle(event(), &opts()).await.unwrap();
    assert_eq!(report.published, 0);
    assert!(report.failure.as_deref().unwrap().contains("InternalError"), "{:?}", report.failure);
    assert_eq!(always.num_calls(), 3, "first send and two resends");
}

#[tokio::test]
async fn the_scan_rides_out_throttling_with_the_same_findings() {
    // The no-fault scan of this account is exactly a console user without MFA and without an MFA
    // policy (see tests/scan.rs for moto).
    for faults in [1, 4] {
        let generate = mock!(aws_sdk_iam::Client::generate_credential_report)
            .sequence()
            .http_status(400, Some(IAM_THROTTLED.into()))
            .times(faults)
            .output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Complete).build())
            .build();
        let get = mock!(aws_sdk_iam::Client::get_credential_report)
            .sequence()
            .http_status(500, None)
            .times(faults)
            .output(|| GetCredentialReportOutput::builder().content(Blob::new(report())).build())
            .build();
        let gaad = mock!(aws_sdk_iam::Client::get_account_authorization_details)
            .sequence()
            .http_status(503, None)
            .times(faults)
            .output(|| {
                GetAccountAuthorizationDetailsOutput::builder()
                    .user_detail_list(
                        UserDetail::builder()
                            .user_name("analyst-dave")
                            .arn("arn:aws:iam::123456789012:user/analyst-dave")
                            .build(),
                    )
                    .build()
            })
            .build();
        let password = mock!(aws_sdk_iam::Client::get_account_password_policy)
            .sequence()
            .http_status(400, Some(IAM_THROTTLED.into()))
            .times(faults)
            .output(|| {
                let cis = aws_sdk_iam::types::PasswordPolicy::builder()
                    .minimum_password_length(14)
                    .password_reuse_prevention(24)
                    .build();
                aws_sdk_iam::operation::get_account_password_policy::GetAccountPasswordPolicyOutput::builder()
                    .password_policy(cis)
                    .build()
            })
            .build();
        let sm = secret_rule(faults);
        // The digest's "registry last changed" line (informational: no fault injected).
        let describe = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(|| {
            aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput::builder().build()
        });
        let sns = mock!(aws_sdk_sns::Client::publish_batch).then_compute_output(|req| {
            let ids: Vec<&str> = req
                .publish_batch_request_entries()
                .iter()
                .map(aws_sdk_sns::types::PublishBatchRequestEntry::id)
                .collect();
            published(&ids)
        });
        let app = build(
            client!(aws_sdk_iam, [&generate, &get, &gaad, &password]),
            client!(aws_sdk_secretsmanager, [&sm, &describe]),
            client!(aws_sdk_sns, [&sns]),
        );
        let report = app.scan(None, &opts()).await.unwrap();
        assert_eq!(report.failure, None);
        let checks: Vec<&str> = report.findings.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(checks, ["console-without-mfa", "mfa-policy-missing"], "{faults} faults");
        assert_eq!(password.num_calls(), faults + 1);
        assert_eq!(report.published, 2, "digest + the high finding");
        assert_eq!(gaad.num_calls(), faults + 1);
    }
}
