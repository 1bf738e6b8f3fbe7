//! The Embedded Metric Format line each invocation logs, built from real reports (a scan and
//! an event on moto) and validated against the structure the EMF specification requires.

use std::time::Duration as Elapsed;

use chrono::{Duration, Utc};
use iam_sentinel::app::RunOptions;
use iam_sentinel::finding::{CheckId, Severity};
use iam_sentinel::metrics::{self, NAMESPACE};
use iam_sentinel::runtime::build_app_with;
use serde_json::Value;

use crate::common::{ACCOUNT, Account, registry, sample};

/// The units CloudWatch accepts (`MetricDatum.Unit`).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks `doc` against the EMF specification's document structure and limits; returns the
/// (namespace, metric, dimension names) it defines. Panics naming the first violation.
pub(crate) fn validate_emf(doc: &Value) -> Vec<(String, String, Vec<String>)> {
    let root = doc.as_object().expect("the root node is a JSON object");
    let aws = root["_aws"].as_object().expect("_aws is an object");
    for key in aws.keys() {
        assert!(["Timestamp", "CloudWatchMetrics", "LogGroupName"].contains(&key.as_str()), "_aws.{key}");
    }
    assert!(aws["Timestamp"].as_u64().is_some(), "_aws.Timestamp is a number of milliseconds since the epoch");
    let directives = aws["CloudWatchMetrics"].as_array().expect("_aws.CloudWatchMetrics is an array");
    assert!(!directives.is_empty());
    let mut defined = Vec::new();
    for directive in directives {
        let directive = directive.as_object().expect("a MetricDirective is an object");
        for key in directive.keys() {
            assert!(["Namespace", "Dimensions", "Metrics"].contains(&key.as_str()), "MetricDirective.{key}");
        }
        let namespace = directive["Namespace"].as_str().expect("Namespace is a string");
        assert!((1..=255).contains(&namespace.len()), "{namespace}");
        let sets = directive["Dimensions"].as_array().expect("Dimensions is an array of DimensionSets");
        let mut dimension_names = Vec::new();
        for set in sets {
            let set = set.as_array().expect("a DimensionSet is an array");
            assert!(set.len() <= 30, "a DimensionSet references at most 30 dimensions");
            for name in set {
                let name = name.as_str().expect("a dimension reference is a string");
                let value = root.get(name).unwrap_or_else(|| panic!("dimension {name} has no member"));
                let value = value.as_str().unwrap_or_else(|| panic!("dimension {name} is not a string: {value}"));
                assert!(!value.is_empty() && value.len() <= 1024, "dimension {name} = {value:?}");
                dimension_names.push(name.to_owned());
            }
        }
        let metrics = directive["Metrics"].as_array().expect("Metrics is an array");
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{} metrics: 1 to 100 per directive", metrics.len());
        for metric in metrics {
            let name = metric["Name"].as_str().expect("MetricDefinition.Name is a string");
            assert!((1..=1024).contains(&name.len()), "{name}");
            if let Some(unit) = metric.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().unwrap_or_default()), "{name}: unit {unit}");
            }
            let value = root.get(name).unwrap_or_else(|| panic!("metric {name} has no top-level member"));
            let numeric = match value {
                Value::Number(_) => true,
                Value::Array(values) => values.len() <= 100 && values.iter().all(Value::is_number),
                _ => false,
            };
            assert!(numeric, "metric {name} is not a number: {value}");
            assert!(!dimension_names.iter().any(|d| d == name), "{name} is both a metric and a dimension");
            defined.push((namespace.to_owned(), name.to_owned(), dimension_names.clone()));
        }
    }
    defined
}

fn number(doc: &Value, name: &str) -> u64 {
    doc[name].as_u64().unwrap_or_else(|| panic!("{name} missing or not a whole number in {doc}"))
}

#[tokio::test]
async fn a_scan_logs_one_emf_line_of_its_posture() {
    let as_of = Utc::now() + Duration::days(100);
    let acct = Account::new().await;
    acct.put_registry(&registry(&[("approved", &(as_of + Duration::days(200)).to_rfc3339())])).await;
    acct.create_user("approved", &[("AccessException", "True")]).await;
    acct.create_user("unapproved", &[("AccessException", "True")]).await;
    acct.create_user("console-no-mfa", &[]).await;
    acct.create_login_profile("console-no-mfa").await;
    acct.create_user("stale-key", &[]).await;
    acct.create_key("stale-key").await;
    let (app, _) = build_app_with(acct.config(&[("AUTO_REMEDIATE", "true")]), &acct.sdk);
    let opts = RunOptions {
        now: as_of,
        dry_run: false,
        publish: false,
        stop_by: None,
        already_sent: std::sync::Arc::default(),
    };
    let report = app.scan(None, &opts).await.unwrap();
    assert!(!report.findings.is_empty());

    let doc = metrics::document(&report, None, as_of, Elapsed::from_millis(1234));
    let line = doc.to_string();
    assert!(!line.contains('\n'), "one log line");
    let defined = validate_emf(&doc);
    assert!(defined.iter().all(|(ns, _, dims)| ns == NAMESPACE && dims == &["Account"]), "{defined:?}");
    assert_eq!(doc["Account"], ACCOUNT);
    assert_eq!(doc["trigger"], "schedule");

    // The numbers are the report's.
    let count = |pred: &dyn Fn(&iam_sentinel::finding::Finding) -> bool| {
        report.findings.iter().filter(|f| pred(f)).count() as u64
    };
    assert_eq!(number(&doc, "Findings"), report.findings.len() as u64);
    for severity in Severity::ALL_DESCENDING {
        assert_eq!(number(&doc, &metrics::findings_by_severity(severity)), count(&|f| f.severity == severity));
    }
    for &check in CheckId::ALL {
        assert_eq!(number(&doc, &metrics::findings_by_check(check)), count(&|f| f.check == check), "{check}");
    }
    assert_eq!(number(&doc, "Findings.check.console-without-mfa"), 1);
    assert_eq!(number(&doc, "Findings.check.exception-unapproved"), 1);
    // "approved" carries the tag under a valid approval; "unapproved" does not count.
    assert_eq!(number(&doc, "ExceptionsActive"), 1);
    assert!(number(&doc, "Findings.check.access-key-stale") >= 1);
    assert_eq!(number(&doc, "UsersScanned"), report.scan.as_ref().unwrap().users_scanned as u64);
    assert_eq!(number(&doc, "UsersScanned"), 4);
    assert_eq!(number(&doc, "RemediationsApplied"), 1, "the unapproved tag was removed");
    assert_eq!(number(&doc, "RemediationsFailed"), 0);
    assert_eq!(number(&doc, "ScanDuration"), 1234);
    let generated = report.scan.as_ref().unwrap().credential_report_generated_at.expect("moto dates its report");
    assert_eq!(number(&doc, "CredentialReportAge"), u64::try_from((as_of - generated).num_seconds()).unwrap());
    assert!(doc.get("EventFindings").is_none(), "a scan's findings are posture, not event alerts");
    // Every metric emitted is in the catalogue the dashboard is checked against.
    let catalogue: Vec<String> = metrics::catalogue().into_iter().map(|(n, _)| n).collect();
    assert!(defined.iter().all(|(_, name, _)| catalogue.contains(name)));
}

#[tokio::test]
async fn an_event_logs_what_it_raised_and_an_ignored_event_still_logs_a_line() {
    let acct = Account::new().await;
    let now = Utc::now();
    acct.put_registry(&registry(&[("svc-legacy-erp", &(now + Duration::days(5)).to_rfc3339())])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    acct.create_key("svc-legacy-erp").await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let opts = RunOptions { publish: false, ..RunOptions::at(now) };

    let report = app.handle(sample("tag-user-access-exception.json"), &opts).await.unwrap();
    let doc = metrics::document(&report, Some(ACCOUNT), now, Elapsed::from_millis(40));
    validate_emf(&doc);
    assert_eq!(number(&doc, "EventFindings"), report.findings.len() as u64);
    assert_eq!(number(&doc, "EventFindings"), 1, "exception-expiring");
    assert_eq!(number(&doc, "EventFindings.severity.low"), 1);
    assert_eq!(number(&doc, "RemediationsApplied"), 0);
    assert!(doc.get("Findings").is_none() && doc.get("UsersScanned").is_none(), "no posture from one user");
    assert_eq!(doc["trigger"], "event:TagUser");

    let ignored = app.handle(sample("tag-user-failed-access-denied.json"), &opts).await.unwrap();
    let doc = metrics::document(&ignored, Some(ACCOUNT), now, Elapsed::ZERO);
    validate_emf(&doc);
    assert_eq!(doc["Account"], ACCOUNT, "the event's account when nothing else names one");
    assert_eq!(doc["outcome"], "ignored");
    assert_eq!(number(&doc, "EventFindings"), 0);
}

/// Runs `event` through the Lambda handler and returns its answer and every line it printed
/// for CloudWatch (the lines `handle` writes to stdout).
async fn handled(app: &iam_sentinel::runtime::AwsApp, event: Value) -> (Result<Value, String>, Vec<Value>) {
    let lines = std::sync::Mutex::new(Vec::new());
    let emit = |line: &str| lines.lock().unwrap().push(line.to_owned());
    let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
    let answer = iam_sentinel::lambda::handle_emitting(app, None, event, &emit).await.map_err(|e| e.to_string());
    let lines = lines.into_inner().unwrap();
    for line in &lines {
        assert!(!line.contains('\n'), "one log line: {line}");
    }
    (answer, lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect())
}

/// What the handler really prints: one EMF line per invocation (a scan, an event, an ignored
/// event, and one that fails before it has a report), each valid, with the answer's numbers;
/// the dashboard plots only metrics these lines define.
#[tokio::test]
async fn the_handler_prints_one_emf_line_per_invocation_even_when_it_fails() {
    let acct = Account::new().await;
    let now = Utc::now();
    acct.put_registry(&registry(&[("svc-legacy-erp", &(now + Duration::days(5)).to_rfc3339())])).await;
    acct.create_user("svc-legacy-erp", &[("AccessException", "True")]).await;
    acct.create_key("svc-legacy-erp").await;
    acct.create_user("console-no-mfa", &[]).await;
    acct.create_login_profile("console-no-mfa").await;
    let (app, _) = build_app_with(acct.config(&[]), &acct.sdk);
    let mut defined = std::collections::BTreeSet::new();

    let (answer, lines) = handled(&app, sample("scheduled-daily-scan.json")).await;
    let answer = answer.unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    defined.extend(validate_emf(&lines[0]).into_iter().map(|(_, name, _)| name));
    assert_eq!((lines[0]["trigger"].as_str(), lines[0]["outcome"].as_str()), (Some("schedule"), Some("processed")));
    assert_eq!(lines[0]["Account"], ACCOUNT);
    assert_eq!(number(&lines[0], "Findings"), answer["findings"].as_u64().unwrap());
    assert!(number(&lines[0], "Findings") >= 2, "{answer}");
    assert_eq!(number(&lines[0], "UsersScanned"), 2);

    let (answer, lines) = handled(&app, sample("tag-user-access-exception.json")).await;
    let answer = answer.unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    defined.extend(validate_emf(&lines[0]).into_iter().map(|(_, name, _)| name));
    assert_eq!(lines[0]["trigger"], "event:TagUser");
    assert_eq!(number(&lines[0], "EventFindings"), answer["findings"].as_u64().unwrap());
    assert_eq!(number(&lines[0], "EventFindings"), 1, "exception-expiring");

    let (_, lines) = handled(&app, sample("tag-user-failed-access-denied.json")).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    validate_emf(&lines[0]);
    assert_eq!(lines[0]["outcome"], "ignored");

    // A malformed event fails the invocation, and still prints its line.
    let malformed = serde_json::json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
                                       "account": ACCOUNT, "detail": {}});
    let (answer, lines) = handled(&app, malformed).await;
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    defined.extend(validate_emf(&lines[0]).into_iter().map(|(_, name, _)| name));
    assert_eq!(number(&lines[0], metrics::INVOCATIONS_FAILED), 1);
    assert_eq!((lines[0]["outcome"].as_str(), lines[0]["trigger"].as_str()), (Some("failed"), Some("event")));
    assert_eq!(lines[0]["error_type"], "MalformedEvent");
    assert_eq!(lines[0]["Account"], ACCOUNT, "the event's account");

    // Every metric of this namespace the dashboard plots is one these lines defined.
    let plotted = crate::dashboard::plotted(&crate::dashboard::dashboard().body);
    let ours: Vec<&String> = plotted.iter().filter(|(ns, _, _)| ns == NAMESPACE).map(|(_, name, _)| name).collect();
    assert!(!ours.is_empty());
    for name in ours {
        // Per-severity and per-check series are defined for every severity and check.
        assert!(defined.contains(name), "the dashboard plots {name}, which the handler never printed: {defined:?}");
    }
}

#[test]
fn the_validator_rejects_what_the_specification_forbids() {
    let good = serde_json::json!({
        "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["A"]], "Metrics": [{"Name": "M", "Unit": "Count"}]}]},
        "A": "x", "M": 1
    });
    validate_emf(&good);
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut doc = good.clone();
        edit(&mut doc);
        std::panic::catch_unwind(|| validate_emf(&doc)).is_err()
    };
    assert!(broken(&|d| d["M"] = "1".into()), "a metric that is a string");
    assert!(broken(&|d| d.as_object_mut().unwrap().remove("M").map_or((), drop)), "a metric with no member");
    assert!(broken(&|d| d["A"] = 5.into()), "a dimension that is a number");
    assert!(
        broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] =
            serde_json::json!([(0..31).map(|i| format!("D{i}")).collect::<Vec<_>>()])),
        "31 dimensions"
    );
    assert!(
        broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"] =
            (0..101).map(|i| serde_json::json!({"Name": format!("M{i}")})).collect()),
        "101 metrics"
    );
    assert!(
        broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Findings".into()),
        "an unknown unit"
    );
    assert!(broken(&|d| d["_aws"].as_object_mut().unwrap().remove("Timestamp").map_or((), drop)), "no timestamp");
}
