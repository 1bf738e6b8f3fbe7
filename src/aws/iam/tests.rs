use super::*;
use aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput;
use aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
use aws_sdk_iam::primitives::Blob;
use aws_sdk_iam::types::{GroupDetail, ManagedPolicyDetail};
use aws_smithy_mocks::{RuleMode, mock, mock_client};

fn report() -> String {
    credential_report::report_text(&[
        "<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,N/A,not_supported,not_supported,false,true,2024-03-05T10:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "alice,arn:aws:iam::123456789012:user/alice,2025-01-01T00:00:00+00:00,true,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        "gone,arn:aws:iam::123456789012:user/gone,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
    ])
}

/// `GetAccountPasswordPolicy` as IAM answers for an account without one.
fn no_password_policy() -> aws_smithy_mocks::Rule {
    let body = "<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The Password Policy with domain name 123456789012 cannot be found.</Message></Error></ErrorResponse>";
    mock!(Client::get_account_password_policy).sequence().http_status(404, Some(body.into())).repeatedly().build()
}

fn user(name: &str) -> UserDetail {
    UserDetail::builder().user_name(name).arn(format!("arn:aws:iam::123456789012:user/{name}")).build()
}

const POLICY: &str = "arn:aws:iam::123456789012:policy/Everything";
const ALLOW_ALL: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;

/// URL-encoded, as IAM returns documents.
fn encoded(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn managed(arn: &str, attachments: i32) -> ManagedPolicyDetail {
    ManagedPolicyDetail::builder()
        .arn(arn)
        .policy_name(arn.rsplit('/').next().unwrap())
        .attachment_count(attachments)
        .policy_version_list(
            aws_sdk_iam::types::PolicyVersion::builder()
                .version_id("v2")
                .is_default_version(true)
                .document(encoded(ALLOW_ALL))
                .build(),
        )
        .build()
}

#[tokio::test]
async fn scan_joins_report_and_gaad_and_names_the_differences() {
    let generate = mock!(Client::generate_credential_report)
        .sequence()
        .output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Started).build())
        .output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Complete).build())
        .build();
    let get = mock!(Client::get_credential_report)
        .then_output(|| GetCredentialReportOutput::builder().content(Blob::new(report())).build());
    let gaad = mock!(Client::get_account_authorization_details)
        .sequence()
        .output(|| {
            GetAccountAuthorizationDetailsOutput::builder()
                .user_detail_list(user("alice"))
                .is_truncated(true)
                .marker("page-2")
                .build()
        })
        .output(|| {
            let bob = UserDetail::builder()
                .user_name("new-bob")
                .arn("arn:aws:iam::123456789012:user/new-bob")
                .group_list("staff")
                .user_policy_list(
                    PolicyDetail::builder().policy_name("own").policy_document(encoded(ALLOW_ALL)).build(),
                )
                .build();
            GetAccountAuthorizationDetailsOutput::builder()
                .user_detail_list(bob)
                .group_detail_list(
                    GroupDetail::builder()
                        .group_name("staff")
                        .attached_managed_policies(AttachedPolicy::builder().policy_arn(POLICY).build())
                        .build(),
                )
                .policies(managed(POLICY, 1))
                .policies(managed("arn:aws:iam::123456789012:policy/Unused", 0))
                .build()
        })
        .build();
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&generate, &get, &gaad, &no_password_policy()]);
    let dir = IamDirectory::new(client).with_report_wait(3, Duration::from_millis(1));
    let snap = dir.read_account().await.unwrap();
    assert_eq!(snap.password_policy, None, "NoSuchEntity: the account has no password policy");
    assert_eq!(snap.catalogue.managed.keys().collect::<Vec<_>>(), [POLICY], "unattached policies are skipped");
    assert_eq!(snap.catalogue.managed[POLICY].document, PolicyDocument::parse(ALLOW_ALL));
    assert_eq!(snap.catalogue.groups["staff"].attached, [POLICY]);
    let bob = snap.users[1].policies.as_ref().unwrap();
    assert_eq!((bob.groups.as_slice(), bob.inline[0].name.as_str()), (&["staff".to_owned()][..], "own"));
    assert!(bob.inline[0].document.is_ok());
    assert_eq!(snap.account.as_deref(), Some("123456789012"));
    assert_eq!(snap.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["alice", "new-bob"]);
    assert!(snap.users[0].password_enabled);
    assert_eq!(snap.users_not_in_report, ["new-bob"]);
    assert_eq!(snap.users_deleted_since_report, ["gone"]);
    let root = snap.root.unwrap();
    assert!(!root.mfa_active && root.keys[0].active);
    assert_eq!((generate.num_calls(), get.num_calls(), gaad.num_calls()), (2, 1, 2));
    let mut phases: Vec<&str> = snap.phases.iter().map(|p| p.name.as_str()).collect();
    phases.sort_unstable();
    assert_eq!(
        phases,
        [
            "credential_report.download",
            "credential_report.generate",
            "credential_report.parse",
            "gaad.page.1",
            "gaad.page.2",
            "gaad.parse.1",
            "gaad.parse.2",
            "join",
            "password_policy",
            "read_account"
        ],
        "every read is timed, each GAAD page on its own"
    );
}

#[tokio::test]
async fn the_account_summary_says_whether_root_has_keys_and_mfa() {
    use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
    // moto never has a root key; AWS's summary counts them here.
    let summary = |keys: i32, mfa: i32| {
        GetAccountSummaryOutput::builder()
            .summary_map(SummaryKeyType::AccountAccessKeysPresent, keys)
            .summary_map(SummaryKeyType::AccountMfaEnabled, mfa)
            .summary_map(SummaryKeyType::Users, 40)
            .build()
    };
    let rule = mock!(Client::get_account_summary)
        .sequence()
        .output(move || summary(1, 0))
        .output(move || {
            let mut out = summary(0, 1);
            let map = out.summary_map.get_or_insert_with(Default::default);
            map.insert(SummaryKeyType::AccountPasswordPresent, 1);
            map.insert(SummaryKeyType::AccountSigningCertificatesPresent, 1);
            out
        })
        .build();
    let dir = IamDirectory::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&rule]));
    assert_eq!(
        dir.read_root_summary().await.unwrap(),
        RootSummary { access_keys_present: true, mfa_enabled: false, ..RootSummary::default() }
    );
    assert_eq!(
        dir.read_root_summary().await.unwrap(),
        RootSummary {
            access_keys_present: false,
            mfa_enabled: true,
            password_present: true,
            signing_certificates_present: true
        }
    );
    assert_eq!(rule.num_calls(), 2, "one call per read");
    let denied = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>";
    let failing = mock!(Client::get_account_summary).sequence().http_status(403, Some(denied.into())).build();
    let dir = IamDirectory::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&failing]));
    let err = dir.read_root_summary().await.unwrap_err();
    assert_eq!(err.to_string(), "iam:GetAccountSummary on account failed: AccessDenied: not allowed");
}

#[tokio::test]
async fn a_role_is_looked_up_by_name_and_only_no_such_entity_means_gone() {
    use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
    use aws_sdk_iam::types::error::NoSuchEntityException;
    let found = mock!(Client::get_role)
        .match_requests(|r| r.role_name() == Some("BreakGlass"))
        .then_output(|| GetRoleOutput::builder().build());
    let gone = mock!(Client::get_role).match_requests(|r| r.role_name() == Some("Old")).then_error(|| {
        GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().message("no such role").build())
    });
    let dir = IamDirectory::new(mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&found, &gone]));
    assert!(dir.role_exists("arn:aws:iam::123456789012:role/emergency/BreakGlass").await.unwrap(), "path dropped");
    assert!(!dir.role_exists("arn:aws:iam::123456789012:role/Old").await.unwrap());
    let denied = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error></ErrorResponse>";
    let failing = mock!(Client::get_role).sequence().http_status(403, Some(denied.into())).build();
    let dir = IamDirectory::new(mock_client!(aws_sdk_iam, RuleMode::Sequential, [&failing]));
    let err = dir.role_exists("arn:aws:iam::123456789012:role/BreakGlass").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "iam:GetRole on arn:aws:iam::123456789012:role/BreakGlass failed: AccessDenied: not allowed"
    );
}

#[tokio::test]
async fn a_report_that_never_completes_is_a_bounded_named_error() {
    let generate = mock!(Client::generate_credential_report)
        .then_output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Inprogress).build());
    let gaad = mock!(Client::get_account_authorization_details)
        .then_output(|| GetAccountAuthorizationDetailsOutput::builder().build());
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&generate, &gaad, &no_password_policy()]);
    let dir = IamDirectory::new(client).with_report_wait(4, Duration::from_millis(1));
    let err = dir.read_account().await.unwrap_err();
    assert!(matches!(err, ScanError::ReportTimeout { polls: 4, .. }), "{err}");
    assert!(err.to_string().contains("iam:GenerateCredentialReport"));
    assert_eq!(generate.num_calls(), 4);
}

#[tokio::test]
async fn a_gaad_page_failing_midway_fails_the_scan_and_names_the_call() {
    let generate = mock!(Client::generate_credential_report)
        .then_output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Complete).build());
    let get = mock!(Client::get_credential_report)
        .then_output(|| GetCredentialReportOutput::builder().content(Blob::new(report())).build());
    let gaad = mock!(Client::get_account_authorization_details)
        .sequence()
        .output(|| {
            GetAccountAuthorizationDetailsOutput::builder()
                .user_detail_list(user("alice"))
                .is_truncated(true)
                .marker("m")
                .build()
        })
        .http_status(500, None)
        .build();
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&generate, &get, &gaad, &no_password_policy()]);
    let err = IamDirectory::new(client).read_account().await.unwrap_err();
    assert!(err.to_string().contains("iam:GetAccountAuthorizationDetails"), "{err}");
}

#[tokio::test]
async fn a_malformed_report_is_a_named_error() {
    let generate = mock!(Client::generate_credential_report)
        .then_output(|| GenerateCredentialReportOutput::builder().state(ReportStateType::Complete).build());
    let get = mock!(Client::get_credential_report)
        .then_output(|| GetCredentialReportOutput::builder().content(Blob::new("user,arn\nalice,x\n")).build());
    let gaad = mock!(Client::get_account_authorization_details)
        .then_output(|| GetAccountAuthorizationDetailsOutput::builder().build());
    let client = mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&generate, &get, &gaad, &no_password_policy()]);
    let err = IamDirectory::new(client).read_account().await.unwrap_err();
    assert_eq!(err.to_string(), "credential report has no `user_creation_time` column");
}
