//! Load: a burst of events (every supported name, one user per five events) through the
//! handler against moto; every expected finding arrives on the subscribed queue exactly once
//! per event. Prints events per second and peak memory. 300 events by default (every sample
//! several times over); `LOAD_EVENTS=1000` for the figure in docs/reliability.md.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::common::{ACCOUNT, Account, registry, sample};
use futures_util::future::join_all;
use iam_sentinel::runtime::build_app_with;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

/// How many events the burst has: `LOAD_EVENTS`, or 300.
fn events() -> usize {
    std::env::var("LOAD_EVENTS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(300)
}
const CONCURRENCY: usize = 16;

fn user(i: usize) -> String {
    format!("load-user-{i:03}")
}

/// The sample `template` rewritten to name `user` (and, for self-service calls, to be made by it).
fn event_for(template: &str, user: &str) -> Value {
    let mut e = sample(template);
    let d = &mut e["detail"];
    let original = d["userIdentity"]["userName"].as_str().map(str::to_owned);
    if let Some(p) = d["requestParameters"].as_object_mut() {
        // Root's own events name "AWS ROOT USER": they stay about root.
        if p.get("userName").is_some_and(|u| u != iam_sentinel::event::ROOT_USER_NAME) {
            p.insert("userName".into(), user.into());
        }
        if p.contains_key("serialNumber") {
            p.insert("serialNumber".into(), format!("arn:aws:iam::{ACCOUNT}:mfa/{user}").into());
        }
    }
    if let Some(k) = d["responseElements"]["accessKey"].as_object_mut()
        && k.contains_key("userName")
    {
        k.insert("userName".into(), user.into());
    }
    let acts_on_itself = original.is_some() && d["requestParameters"]["userName"].as_str().is_none_or(|u| u == user);
    if d["userIdentity"]["type"] == "IAMUser" && acts_on_itself {
        d["userIdentity"]["userName"] = user.into();
        d["userIdentity"]["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/{user}").into();
    }
    e
}

/// What the subscriber must receive for one event, as (trigger, user, check).
fn expected_for(template: &str, i: usize) -> Vec<(String, String, String)> {
    let name = sample(template)["detail"]["eventName"].as_str().unwrap().to_owned();
    let trigger = format!("event:{name}");
    let about_root = |check: &str| (trigger.clone(), String::new(), check.to_owned());
    // No break-glass role or user is configured here: their events are ignored. The registry
    // write names this account's registry, and no approver is configured.
    match template {
        "assume-role-break-glass.json" | "console-sign-in-break-glass-user.json" => return vec![],
        "put-secret-value-registry.json" => return vec![about_root("registry-changed-by-non-approver")],
        // Centralized root access: no AWS read, one finding each (no session log here).
        "disable-organizations-root-sessions.json" => return vec![about_root("root-access-not-centralized")],
        "enable-organizations-root-credentials-management.json" => return vec![about_root("root-access-centralized")],
        t if t.starts_with("assume-root-") => return vec![about_root("root-session-started")],
        _ => {}
    }
    // Organizations events need ORGANIZATION_MODE=true: ignored here.
    if template.contains("failed")
        || template.contains("by-sentinel")
        || template.starts_with("delete-virtual")
        || template.starts_with("organizations-")
    {
        return vec![];
    }
    // Root acting on itself or signing in: root use, and root's MFA from the account summary.
    if template.starts_with("root-") {
        return vec![about_root("root-used"), about_root("root-without-mfa")];
    }
    // The account's password policy meets the minimums; the group and the policy the samples
    // change do not exist.
    match template {
        "update-account-password-policy.json" | "attach-group-policy.json" | "create-policy-version-default.json" => {
            return vec![];
        }
        // The policy checks only: console users (i % 4 == 1) have no MFA policy.
        "attach-user-policy-admin.json" | "add-user-to-group.json" => {
            return if i % 4 == 1 { vec![(trigger, user(i), "mfa-policy-missing".to_owned())] } else { vec![] };
        }
        _ => {}
    }
    let mut checks: Vec<&str> = match i % 4 {
        0 => vec!["exception-unapproved"],
        1 => vec!["console-without-mfa"],
        2 => vec!["access-key-multiple-active"],
        _ => vec![],
    };
    if template == "tag-user-self-granted.json" {
        checks.push("exception-self-granted");
    }
    let mut expected: Vec<_> = checks.into_iter().map(|c| (trigger.clone(), user(i), c.to_owned())).collect();
    if template.ends_with("-by-root.json") {
        expected.push(about_root("root-used"));
    }
    // Events that give credentials also judge the policies: console users have no MFA policy.
    let gives_credentials = ["create-login-profile", "create-access-key", "update-access-key"];
    if i % 4 == 1 && gives_credentials.iter().any(|p| template.starts_with(p)) {
        expected.push((trigger.clone(), user(i), "mfa-policy-missing".to_owned()));
    }
    expected
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_loses_and_duplicates_nothing() {
    let burst = events();
    let users = burst.div_ceil(5);
    let acct = Account::new().await;
    acct.put_registry(&registry(&[])).await;
    for i in 0..users {
        let name = user(i);
        match i % 4 {
            0 => acct.create_user(&name, &[("AccessException", "True")]).await,
            1 => {
                acct.create_user(&name, &[]).await;
                acct.create_login_profile(&name).await;
            }
            2 => {
                acct.create_user(&name, &[]).await;
                acct.create_key(&name).await;
                acct.create_key(&name).await;
            }
            _ => acct.create_user(&name, &[]).await,
        }
    }
    let (app, _) = build_app_with(
        acct.config(&[("SELF_ROLE_ARN", "arn:aws:iam::123456789012:role/iam-sentinel-FunctionRole")]),
        &acct.sdk,
    );
    // Every event sample in events/ (all supported names, ignored ones included).
    let mut templates: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| std::path::Path::new(f).extension().is_some_and(|x| x == "json") && !f.starts_with("scheduled"))
        .collect();
    templates.sort();
    assert_eq!(templates.len(), 43);
    let work: Vec<(usize, &str)> = (0..burst).map(|k| (k % users, templates[k % templates.len()].as_str())).collect();

    let started = Instant::now();
    for chunk in work.chunks(CONCURRENCY) {
        let results = join_all(chunk.iter().map(|(i, template)| {
            let event = LambdaEvent::new(event_for(template, &user(*i)), Context::default());
            iam_sentinel::lambda::handle(&app, None, event)
        }))
        .await;
        for (r, (i, template)) in results.into_iter().zip(chunk) {
            assert!(r.is_ok(), "{template} for {}: {:?}", user(*i), r.err());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut expected: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (i, template) in &work {
        for key in expected_for(template, *i) {
            *expected.entry(key).or_default() += 1;
        }
    }
    let mut received: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let messages = acct.received().await;
    for r in &messages {
        let key = (r.finding["trigger"].as_str().unwrap().to_owned(), r.user().to_owned(), r.check().to_owned());
        *received.entry(key).or_default() += 1;
    }
    let total: usize = expected.values().sum();
    assert!(total > burst / 2, "the burst produces findings: {total}");
    let missing: Vec<_> = expected.iter().filter(|(k, n)| received.get(*k) != Some(*n)).collect();
    let extra: Vec<_> = received.iter().filter(|(k, n)| expected.get(*k) != Some(*n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "expected but not received: {missing:?}; received but not expected: {extra:?}"
    );
    assert_eq!(messages.len(), total, "exactly one message per expected finding");
    eprintln!(
        "load: {burst} events ({users} users, {CONCURRENCY} at a time) in {elapsed:.1} s = {:.0} events/s; {total} findings delivered; peak RSS of the test process {:.1} MiB",
        f64::from(u32::try_from(burst).unwrap()) / elapsed,
        peak_rss_mib()
    );
}
