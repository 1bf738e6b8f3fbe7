use super::*;

fn parse(text: &str) -> Result<Parsed, EventError> {
    parse_event_str(text, "AccessException")
}

fn change(text: &str) -> IamChange {
    match parse(text).unwrap() {
        Parsed::Trigger(Trigger::IamChange(c)) => c,
        other => panic!("expected an IAM change, got {other:?}"),
    }
}

fn access(text: &str) -> AccessChange {
    match parse(text).unwrap() {
        Parsed::Trigger(Trigger::AccessChange(c)) => c,
        other => panic!("expected an access change, got {other:?}"),
    }
}

#[test]
fn policy_events_name_the_user_group_or_policy_they_changed() {
    let c = access(include_str!("../../events/attach-user-policy-admin.json"));
    assert_eq!(c.target, AccessTarget::User("analyst-dave".into()));
    assert_eq!(c.call.event_name, "AttachUserPolicy");
    assert_eq!(c.call.actor.issuer_arn.as_deref(), Some("arn:aws:iam::123456789012:role/SecurityAdmin"));
    let c = access(include_str!("../../events/add-user-to-group.json"));
    assert_eq!(c.target, AccessTarget::User("analyst-dave".into()));
    let c = access(include_str!("../../events/attach-group-policy.json"));
    assert_eq!(c.target, AccessTarget::Group("developers".into()));
    let c = access(include_str!("../../events/create-policy-version-default.json"));
    assert_eq!(c.target, AccessTarget::Policy("arn:aws:iam::123456789012:policy/EnterpriseNetworkRestriction".into()));
}

#[test]
fn every_access_event_name_names_its_target_kind() {
    let base: Value = serde_json::from_str(include_str!("../../events/attach-user-policy-admin.json")).unwrap();
    for name in ACCESS_EVENT_NAMES {
        let mut e = base.clone();
        e["detail"]["eventName"] = (*name).into();
        e["detail"]["requestParameters"] = serde_json::json!({
            "userName": "bob", "groupName": "staff",
            "policyArn": "arn:aws:iam::123456789012:policy/P", "setAsDefault": true,
        });
        let target = access(&e.to_string()).target;
        let expected = if name.contains("Group") && !name.contains("UserToGroup") && !name.contains("UserFromGroup") {
            AccessTarget::Group("staff".into())
        } else if name.contains("PolicyVersion") {
            AccessTarget::Policy("arn:aws:iam::123456789012:policy/P".into())
        } else {
            AccessTarget::User("bob".into())
        };
        assert_eq!(target, expected, "{name}");
    }
    for name in PASSWORD_POLICY_EVENT_NAMES {
        let mut e = base.clone();
        e["detail"]["eventName"] = (*name).into();
        let parsed = parse(&e.to_string()).unwrap();
        assert!(matches!(parsed, Parsed::Trigger(Trigger::PasswordPolicyChange(_))), "{name}");
    }
}

#[test]
fn a_policy_version_not_made_default_changes_nothing() {
    let text = include_str!("../../events/create-policy-version-default.json")
        .replace("\"setAsDefault\": true", "\"setAsDefault\": false");
    let Parsed::Ignored(why) = parse(&text).unwrap() else { panic!("ignored") };
    assert!(why.contains("without setAsDefault"), "{why}");
}

#[test]
fn a_policy_event_without_its_target_or_with_a_bad_one_is_malformed() {
    let text = include_str!("../../events/attach-group-policy.json");
    let no_group = text.replace("\"groupName\": \"developers\",", "");
    assert_eq!(
        parse(&no_group).unwrap_err().to_string(),
        "malformed AttachGroupPolicy event: requestParameters.groupName is missing"
    );
    let bad = text.replace("\"developers\"", "\"dev team\"");
    assert!(parse(&bad).unwrap_err().to_string().contains("not a valid IAM group name"));
    let not_arn = include_str!("../../events/create-policy-version-default.json")
        .replace("arn:aws:iam::123456789012:policy/EnterpriseNetworkRestriction", "EnterpriseNetworkRestriction");
    assert!(parse(&not_arn).unwrap_err().to_string().contains("not a managed policy ARN"));
}

#[test]
fn password_policy_events_are_account_calls() {
    let Parsed::Trigger(Trigger::PasswordPolicyChange(call)) =
        parse(include_str!("../../events/update-account-password-policy.json")).unwrap()
    else {
        panic!("password policy change")
    };
    assert_eq!(call.event_name, "UpdateAccountPasswordPolicy");
    assert_eq!(call.account, "123456789012");
    assert_eq!(call.context.source_ip.as_deref(), Some("203.0.113.24"));
}

#[test]
fn tag_user_sample() {
    let c = change(include_str!("../../events/tag-user-access-exception.json"));
    assert_eq!(c.event_name, "TagUser");
    assert_eq!(c.user_name, "svc-legacy-erp");
    assert_eq!(c.exception_value_set.as_deref(), Some("True"));
    assert_eq!(c.actor.issuer_arn.as_deref(), Some("arn:aws:iam::123456789012:role/SecurityAdmin"));
    assert_eq!(c.account, "123456789012");
}

#[test]
fn create_access_key_for_oneself_takes_the_user_from_the_response() {
    let c = change(include_str!("../../events/create-access-key-self.json"));
    assert_eq!(c.user_name, "dev-mallory");
    assert_eq!(c.access_key_id.as_deref(), Some("AKIAEXAMPLEMALLORY02"));
}

#[test]
fn delete_virtual_mfa_device_is_ignored_because_it_never_changes_a_user() {
    let parsed = parse(include_str!("../../events/delete-virtual-mfa-device.json")).unwrap();
    assert!(matches!(&parsed, Parsed::Ignored(r) if r.contains("unassigned")), "{parsed:?}");
}

#[test]
fn every_sample_parses() {
    for (name, text) in crate::event::samples::ALL {
        let parsed = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if *name == "tag-user-failed-access-denied.json" {
            assert!(matches!(parsed, Parsed::Ignored(ref r) if r.contains("AccessDenied")), "{name}: {parsed:?}");
        } else if *name == "delete-virtual-mfa-device.json" {
            assert!(matches!(parsed, Parsed::Ignored(_)), "{name}: {parsed:?}");
        } else {
            assert!(matches!(parsed, Parsed::Trigger(_)), "{name}: {parsed:?}");
        }
    }
}

fn root(text: &str) -> RootActivity {
    match parse(text).unwrap() {
        Parsed::Trigger(Trigger::RootActivity(r)) => r,
        other => panic!("expected root activity, got {other:?}"),
    }
}

#[test]
fn root_creating_its_own_key_with_null_parameters_is_root_activity() {
    let r = root(include_str!("../../events/root-create-access-key-self.json"));
    assert_eq!(r.event_name, "CreateAccessKey");
    assert_eq!(r.access_key_id.as_deref(), Some("AKIAEXAMPLEROOTKEY01"));
    assert_eq!(r.actor.arn, "arn:aws:iam::123456789012:root");
    assert!(r.actor.root);
    assert_eq!(r.context.mfa_authenticated, Some(false));
    assert_eq!(r.context.source_ip.as_deref(), Some("198.51.100.203"));
    assert_eq!(r.context.event_time, Some("2026-11-23T08:02:41Z".parse().unwrap()));
}

#[test]
fn root_enabling_its_own_mfa_names_the_literal_root_user_and_is_root_activity() {
    let r = root(include_str!("../../events/root-enable-mfa-device-self.json"));
    assert_eq!(r.event_name, "EnableMFADevice");
    assert_eq!(r.account, "123456789012");
}

#[test]
fn root_console_sign_in_is_root_activity_with_the_mfa_used() {
    let text = include_str!("../../events/root-console-sign-in.json");
    let r = root(text);
    assert_eq!(r.event_name, "ConsoleLogin");
    assert_eq!(r.context.mfa_authenticated, Some(false), "additionalEventData.MFAUsed");
    let failed = text.replace("\"Success\"", "\"Failure\"");
    assert!(matches!(parse(&failed).unwrap(), Parsed::Ignored(r) if r.contains("did not succeed")));
    let federated = text.replace("\"type\": \"Root\"", "\"type\": \"AssumedRole\"");
    assert!(matches!(parse(&federated).unwrap(), Parsed::Ignored(r) if r.contains("only root and IAM user sign-ins")));
}

#[test]
fn root_acting_on_a_user_is_a_user_change_made_by_root() {
    let c = change(include_str!("../../events/deactivate-mfa-device-by-root.json"));
    assert_eq!(c.user_name, "analyst-dave");
    assert!(c.actor.root);
}

#[test]
fn a_root_event_naming_no_user_is_never_malformed() {
    for name in ["UpdateAccessKey", "DeleteAccessKey", "DeactivateMFADevice", "TagUser"] {
        let text = include_str!("../../events/root-create-access-key-self.json")
            .replace("\"CreateAccessKey\"", &format!("\"{name}\""));
        assert!(matches!(parse(&text).unwrap(), Parsed::Trigger(Trigger::RootActivity(_))), "{name}");
    }
}

#[test]
fn an_assumed_role_invoked_by_cloudformation_with_null_response() {
    let c = change(include_str!("../../events/create-user-by-cloudformation.json"));
    assert_eq!(c.user_name, "svc-reporting");
    assert_eq!(c.actor.issuer_arn.as_deref(), Some("arn:aws:iam::123456789012:role/pipeline-deploy"));
    assert!(!c.actor.root);
    assert_eq!(c.exception_value_set, None);
}

#[test]
fn a_console_session_with_mfa_is_recorded_as_such() {
    let c = change(include_str!("../../events/update-access-key-console-mfa.json"));
    assert_eq!(c.user_name, "svc-legacy-erp");
    assert_eq!(c.access_key_id.as_deref(), Some("AKIAEXAMPLELEGACY001"));
    assert_eq!(c.context.mfa_authenticated, Some(true));
    assert_eq!(c.context.user_agent.as_deref(), Some("console.amazonaws.com"));
}

#[test]
fn a_record_without_recipient_account_takes_the_envelope_account() {
    let text = include_str!("../../events/create-login-profile-no-recipient.json");
    assert!(!text.contains("recipientAccountId"));
    assert_eq!(change(text).account, "123456789012");
    assert_eq!(change(text).user_name, "analyst-dave");
}

#[test]
fn schedule_sample() {
    assert!(matches!(
        parse(include_str!("../../events/scheduled-daily-scan.json")).unwrap(),
        Parsed::Trigger(Trigger::Schedule { .. })
    ));
}

#[test]
fn malformed_events_are_errors_that_say_why() {
    assert!(parse("{").unwrap_err().to_string().contains("not JSON"));
    assert!(parse("[]").unwrap_err().to_string().contains("not an EventBridge event"));
    let no_user = include_str!("../../events/tag-user-access-exception.json")
        .replace("\"userName\": \"svc-legacy-erp\"", "\"user\": \"x\"");
    assert_eq!(
        parse(&no_user).unwrap_err().to_string(),
        "malformed TagUser event: requestParameters.userName is missing"
    );
    let bad_name = include_str!("../../events/tag-user-access-exception.json").replace("svc-legacy-erp", "a b");
    assert!(parse(&bad_name).unwrap_err().to_string().contains("not a valid IAM user name"));
}

#[test]
fn other_event_names_are_ignored() {
    let text = include_str!("../../events/tag-user-access-exception.json").replace("\"TagUser\"", "\"TagRole\"");
    assert!(matches!(parse(&text).unwrap(), Parsed::Ignored(r) if r.contains("TagRole")));
}
