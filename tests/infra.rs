//! The deployment role grants exactly the IAM, SNS and Secrets Manager actions the code calls.

use std::collections::BTreeSet;

/// The actions listed under the `FunctionRole` resource of the SAM template.
fn role_actions(template: &str) -> BTreeSet<String> {
    let role: Vec<&str> = template
        .lines()
        .skip_while(|l| l.trim_end() != "  FunctionRole:")
        .skip(1)
        .take_while(|l| !(l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':')))
        .collect();
    assert!(!role.is_empty(), "no FunctionRole resource in infra/template.yaml");
    role.iter()
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || "[],-\"'".contains(c)))
        .filter(|t| ["iam:", "sns:", "secretsmanager:"].iter().any(|p| t.starts_with(p)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_role_grants_exactly_the_actions_the_code_calls() {
    let template = include_str!("../infra/template.yaml");
    let granted = role_actions(template);
    let called: BTreeSet<String> = iam_sentinel::aws::required_actions().into_iter().map(str::to_owned).collect();
    assert_eq!(granted, called, "infra/template.yaml FunctionRole vs aws::required_actions()");
}

#[test]
fn untag_is_limited_to_the_exception_tag_and_to_remediation() {
    let template = include_str!("../infra/template.yaml");
    let untag = template.find("- iam:UntagUser").expect("UntagUser statement");
    let statement = &template[template[..untag].rfind("- !If").unwrap()..untag + 400];
    assert!(statement.contains("RemediationEnabled"), "{statement}");
    assert!(statement.contains("aws:TagKeys: [!Ref ExceptionTagKey]"), "{statement}");
}

#[test]
fn the_rule_forwards_exactly_the_events_the_function_handles() {
    let template = include_str!("../infra/template.yaml");
    let pattern = &template[template.find("eventName:").unwrap()..template.find("RetryPolicy:").unwrap()];
    let names: Vec<&str> = pattern.lines().filter_map(|l| l.trim().strip_prefix("- ")).collect();
    assert_eq!(names, iam_sentinel::event::SUPPORTED_EVENT_NAMES);
}
