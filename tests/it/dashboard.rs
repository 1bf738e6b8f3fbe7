//! The template's CloudWatch dashboard: named after the stack, its body valid JSON once
//! substituted, and every metric it plots one the EMF builder emits (same namespace, name and
//! dimension) or an AWS metric of this stack's function or dead-letter queue.

use std::collections::BTreeSet;

use iam_sentinel::finding::Severity;
use iam_sentinel::metrics::{self, ACCOUNT_DIMENSION, NAMESPACE};
use serde_json::Value;

use crate::infra::{resource, resources_of_type, template};

/// The AWS metrics the dashboard may plot: (namespace, name, dimension, `${…}` value).
const AWS_METRICS: &[(&str, &str, &str, &str)] = &[
    ("AWS/Lambda", "Errors", "FunctionName", "${Function}"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${DeadLetterQueue.QueueName}"),
];

const PSEUDO_PARAMETERS: &[&str] = &["AWS::AccountId", "AWS::Region", "AWS::StackName", "AWS::Partition"];

pub(crate) struct Dashboard {
    /// The body as written, with its `${…}` references.
    pub raw: String,
    /// The body parsed as JSON.
    pub body: Value,
}

pub(crate) fn dashboard() -> Dashboard {
    let t = template();
    let dashboards = resources_of_type(&t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one dashboard");
    let raw = dashboards[0].1["Properties"]["DashboardBody"].as_str().expect("DashboardBody is a string");
    let raw = raw.strip_prefix("!Sub ").expect("DashboardBody is a !Sub string").to_owned();
    // References are substituted inside JSON strings, so the body stays JSON with them as written.
    let body: Value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}\n{raw}"));
    Dashboard { raw, body }
}

/// One plotted metric: (namespace, name, [(dimension, value)]).
pub(crate) type Plotted = (String, String, Vec<(String, String)>);

/// Every metric line of every metric widget: (namespace, name, [(dimension, value)]), with the
/// dashboard's `"."` shorthand (same as the line before) expanded.
pub(crate) fn plotted(body: &Value) -> Vec<Plotted> {
    let mut all = Vec::new();
    for widget in body["widgets"].as_array().unwrap().iter().filter(|w| w["type"] == "metric") {
        let mut previous: Vec<String> = Vec::new();
        for line in widget["properties"]["metrics"].as_array().unwrap() {
            let parts: Vec<String> = line
                .as_array()
                .unwrap()
                .iter()
                .take_while(|p| p.is_string())
                .enumerate()
                .map(|(i, p)| match p.as_str().unwrap() {
                    "." => previous[i].clone(),
                    s => s.to_owned(),
                })
                .collect();
            assert!(parts.len() >= 2 && parts.len().is_multiple_of(2), "namespace, name, then dimension pairs: {line}");
            let dims = parts[2..].chunks(2).map(|d| (d[0].clone(), d[1].clone())).collect();
            all.push((parts[0].clone(), parts[1].clone(), dims));
            previous = parts;
        }
    }
    all
}

#[test]
fn the_dashboard_is_named_after_the_stack() {
    let t = template();
    let name = resource(&t, "PostureDashboard")["Properties"]["DashboardName"].as_str().unwrap();
    assert!(name.starts_with("!Sub ") && name.contains("${AWS::StackName}"), "{name}: a second stack would collide");
}

#[test]
fn every_plotted_metric_is_one_the_function_emits_or_an_aws_metric_of_this_stack() {
    let Dashboard { body, .. } = dashboard();
    let emitted: BTreeSet<String> = metrics::catalogue().into_iter().map(|(name, _)| name).collect();
    let lines = plotted(&body);
    assert!(lines.len() >= 20, "{} metric lines", lines.len());
    for (namespace, name, dims) in &lines {
        if namespace == NAMESPACE {
            assert!(emitted.contains(name), "{name} is plotted but src/metrics.rs never emits it");
            assert_eq!(dims, &[(ACCOUNT_DIMENSION.to_owned(), "${AWS::AccountId}".to_owned())], "{name}");
        } else {
            let known = AWS_METRICS
                .iter()
                .any(|(ns, n, d, v)| ns == namespace && n == name && dims == &[((*d).to_owned(), (*v).to_owned())]);
            assert!(known, "{namespace} {name} {dims:?} is neither emitted nor an AWS metric of this stack");
        }
    }
    // What the dashboard is for: posture by severity, exceptions, keys, MFA, remediations,
    // event alerts, errors and dead letters.
    let names: BTreeSet<&str> = lines.iter().map(|(_, n, _)| n.as_str()).collect();
    for severity in Severity::ALL_DESCENDING {
        assert!(names.contains(metrics::findings_by_severity(severity).as_str()), "{severity}");
    }
    for wanted in [
        metrics::EXCEPTIONS_ACTIVE,
        "Findings.check.exception-unapproved",
        "Findings.check.exception-expired",
        "Findings.check.access-key-stale",
        "Findings.check.access-key-unused",
        "Findings.check.console-without-mfa",
        metrics::REMEDIATIONS_APPLIED,
        metrics::REMEDIATIONS_FAILED,
        "Errors",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(names.contains(wanted), "the dashboard does not plot {wanted}");
    }
}

#[test]
fn the_dashboard_shows_every_alarm_and_refers_only_to_what_exists() {
    let t = template();
    let Dashboard { raw, body } = dashboard();
    let alarms: BTreeSet<String> = body["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["type"] == "alarm")
        .flat_map(|w| w["properties"]["alarms"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeSet<String> = resources_of_type(&t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(name, _)| format!("${{{name}.Arn}}"))
        .collect();
    assert_eq!(alarms, expected, "the alarm widget lists the template's alarms");

    // Every ${…} is a pseudo parameter, a resource, or a resource's attribute.
    let mut rest = raw.as_str();
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').unwrap() + start;
        let reference = &rest[start + 2..end];
        let target = reference.split('.').next().unwrap();
        assert!(
            PSEUDO_PARAMETERS.contains(&reference) || t["Resources"][target].is_object(),
            "${{{reference}}} names nothing in the template"
        );
        rest = &rest[end + 1..];
    }

    // The grid is 24 columns wide; widgets stay inside it and do not overlap.
    let mut cells = BTreeSet::new();
    for w in body["widgets"].as_array().unwrap() {
        let n = |k: &str| w[k].as_u64().unwrap_or_else(|| panic!("widget {k}: {w}"));
        assert!(n("x") + n("width") <= 24, "{w}");
        for x in n("x")..n("x") + n("width") {
            for y in n("y")..n("y") + n("height") {
                assert!(cells.insert((x, y)), "widgets overlap at ({x}, {y})");
            }
        }
    }
}
