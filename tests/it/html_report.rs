//! `--format html` in a real headless browser (Debian's `chromium`): the page of a real scan
//! loads with no console message, shows the counts and check names, and screenshots to a
//! non-trivial image; hostile user names and tag values stay text; 5,000 users' findings
//! render within a loose size bound. Screenshots go to the system temp dir, never the repo.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration as Wait, Instant};

use chrono::{DateTime, Duration, Utc};
use iam_sentinel::approvals::Approvals;
use iam_sentinel::checks::{UserInput, check_user};
use iam_sentinel::finding::{CheckId, Finding, Scope, Severity, sort_findings};
use iam_sentinel::message::ScanSummary;
use iam_sentinel::render::html;
use iam_sentinel::snapshot::{AccessKey, KeyRef, Tag, UserSnapshot};

use crate::common::Account;

/// How each findings-table row starts (the severity badge cell).
const ROW: &str = "<tr><td class=\"s\"><span";

fn chromium() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .expect(
            "chromium not found: install Debian's chromium package (scripts/test does: apt-get install -y chromium)",
        )
}

/// A fresh directory under the system temp dir for this test's page, profile and screenshot.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iam-sentinel-html-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What one headless run printed: stdout (the DOM with `--dump-dom`) and the browser's log.
struct Run {
    stdout: String,
    stderr: String,
}

impl Run {
    /// Console messages the page produced (JavaScript errors, CSP violations, `console.*`).
    fn console(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught")).collect()
    }
}

/// Opens `page` in headless chromium with `extra` flags, logging to stderr; gives up after 3 min.
fn browse(dir: &Path, page: &Path, extra: &[String]) -> Run {
    let mut child = Command::new(chromium())
        .args(["--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-dev-shm-usage"])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(&mut stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut stderr).unwrap_or_default());
    let deadline = Instant::now() + Wait::from_mins(3);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish with {} within 3 minutes", page.display());
        }
        std::thread::sleep(Wait::from_millis(100));
    };
    let run = Run { stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(status.success(), "chromium failed ({status}): {}", run.stderr);
    run
}

fn dump_dom(dir: &Path, page: &Path) -> Run {
    browse(dir, page, &["--dump-dom".to_owned()])
}

/// The count the chart shows next to `label` (the bar's number), from the rendered DOM.
fn chart_count(dom: &str, label: &str) -> Option<usize> {
    let at = dom.find(&format!(">{label}</text>"))?;
    let rest = &dom[at..];
    let n = rest.find("class=\"n\"")?;
    let rest = &rest[n..];
    let start = rest.find('>')? + 1;
    let end = rest.find("</text>")?;
    rest[start..end].parse().ok()
}

#[tokio::test]
async fn a_scan_as_html_loads_in_a_browser_without_console_errors_and_shows_the_counts() {
    let as_of = Utc::now() + Duration::days(100);
    let acct = Account::new().await;
    acct.put_registry(r#"{"exceptions": []}"#).await;
    acct.create_user("unapproved", &[("AccessException", "True")]).await;
    acct.create_user("console-no-mfa", &[]).await;
    acct.create_login_profile("console-no-mfa").await;
    acct.create_user("two-keys", &[]).await;
    acct.create_key("two-keys").await;
    acct.create_key("two-keys").await;
    let args = |format| ["scan", "--no-publish", "--format", format, "--as-of", &as_of.to_rfc3339()].map(str::to_owned);
    let run = |format| {
        let out = acct.cli(&args(format).iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let page_html = run("html");
    let findings: Vec<serde_json::Value> =
        run("json").lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>();
    assert!(findings.len() >= 5, "{findings:?}");
    let dir = scratch("scan");
    let page = dir.join("report.html");
    std::fs::write(&page, &page_html).unwrap();

    // No JavaScript at all, so no console message of any kind.
    assert!(!page_html.contains("<script"), "the page carries no script");
    let dom = dump_dom(&dir, &page);
    assert_eq!(dom.console(), Vec::<&str>::new(), "console messages");

    // The counts by severity (zeros too) and the checks with their CIS controls.
    for severity in Severity::ALL_DESCENDING {
        let expected = findings.iter().filter(|f| f["severity"] == severity.as_str()).count();
        assert_eq!(chart_count(&dom.stdout, severity.as_str()), Some(expected), "{severity} bar");
    }
    for (label, check) in [
        ("access-key-multiple-active (CIS 1.12)", "access-key-multiple-active"),
        ("console-without-mfa (CIS 1.9)", "console-without-mfa"),
        ("exception-unapproved", "exception-unapproved"),
    ] {
        let expected = findings.iter().filter(|f| f["check"] == check).count();
        assert_eq!(chart_count(&dom.stdout, label), Some(expected), "{label} bar");
    }
    assert!(dom.stdout.contains("<dd>123456789012</dd>"), "the account");
    assert!(dom.stdout.contains("Credential report"), "the report's age");
    assert!(dom.stdout.contains("1.9 Ensure multi-factor authentication"), "the CIS control's title");
    assert_eq!(dom.stdout.matches(ROW).count(), findings.len(), "one row per finding");

    // The screenshot: a real PNG of a real page.
    let png = dir.join("report.png");
    let shot = browse(
        &dir,
        &page,
        &[format!("--screenshot={}", png.display()), "--window-size=1280,1600".into(), "--hide-scrollbars".into()],
    );
    assert_eq!(shot.console(), Vec::<&str>::new());
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(bytes.len() > 20_000, "a {} byte screenshot is blank or near blank", bytes.len());
    eprintln!("screenshot: {} ({} bytes)", png.display(), bytes.len());
}

fn scope(now: DateTime<Utc>) -> Scope {
    Scope { account: "123456789012".into(), region: "us-east-1".into(), trigger: "schedule".into(), now }
}

#[test]
fn hostile_user_names_and_tag_values_stay_text_in_the_browser() {
    let now: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    let mut f = scope(now).finding(
        CheckId::ExceptionTagMalformed,
        "arn:aws:iam::123456789012:user/x",
        "AccessException is \"<img src=x onerror=alert(3)>\"".into(),
    );
    f.user = Some("<script>alert(1)</script>".into());
    f.resource = Some("</td></tr></table><script>alert(4)</script>".into());
    f.evidence = serde_json::json!({ "tag_value": "\"><script>alert(2)</script>" });
    let page_html = html::render(&[f], None);
    assert!(!page_html.contains("<script") && !page_html.contains("<img"), "{page_html}");

    let dir = scratch("hostile");
    let page = dir.join("hostile.html");
    std::fs::write(&page, &page_html).unwrap();
    let dom = dump_dom(&dir, &page);
    assert_eq!(dom.console(), Vec::<&str>::new(), "no script ran, no policy was violated");
    let lower = dom.stdout.to_ascii_lowercase();
    assert!(!lower.contains("<script") && !lower.contains("<img"), "no element was injected: {}", dom.stdout);
    for text in ["&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;script&gt;alert(2)&lt;/script&gt;", "&lt;img src=x"] {
        assert!(dom.stdout.contains(text), "{text} shown as text");
    }
    assert_eq!(dom.stdout.matches(ROW).count(), 1, "the row stayed one row");
}

#[test]
fn the_console_check_sees_a_script_error() {
    // The check above would pass vacuously if chromium logged nothing: prove it logs errors.
    let dir = scratch("control");
    let page = dir.join("broken.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body><p>x</p><script>notDefined();</script></body></html>").unwrap();
    let dom = dump_dom(&dir, &page);
    assert!(dom.console().iter().any(|l| l.contains("notDefined")), "{}", dom.stderr);
}

/// 5,000 users in a deterministic mix of states, through the real checks.
fn five_thousand_users() -> (Vec<Finding>, ScanSummary) {
    let now: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
    let day = |d: i64| now - Duration::days(d);
    let key = |slot, created: i64, used: Option<i64>| AccessKey {
        key: KeyRef::Slot(slot),
        active: true,
        created: day(created),
        last_used: used.map(day),
    };
    let users: Vec<UserSnapshot> = (0..5_000)
        .map(|i| {
            let name = format!("user-{i:05}");
            let mut keys = match i % 3 {
                0 => vec![key(1, 200, Some(100))],
                1 => vec![key(1, 80, Some(1))],
                _ => vec![],
            };
            if i % 7 == 0 {
                keys.push(key(2, 10, Some(2)));
            }
            UserSnapshot {
                arn: format!("arn:aws:iam::123456789012:user/{name}"),
                name,
                tags: if i % 10 == 0 { vec![Tag::new("AccessException", "True")] } else { vec![] },
                keys,
                password_enabled: i % 4 == 0,
                password_last_used: None,
                password_set: None,
                mfa_active: i % 8 == 0,
                policies: None,
            }
        })
        .collect();
    let config = iam_sentinel::config::Config::from_lookup(|k| {
        (k == "APPROVALS_SECRET_ID").then(|| "iam-sentinel/approvals".to_owned())
    })
    .expect("defaults are valid");
    let approvals = Approvals::new(Vec::new());
    let scope = scope(now);
    let mut findings: Vec<Finding> = users
        .iter()
        .flat_map(|user| {
            check_user(&UserInput {
                user,
                approvals: Some(&approvals),
                change: None,
                policy: &config.policy,
                scope: &scope,
                access: None,
            })
        })
        .collect();
    sort_findings(&mut findings);
    let summary = ScanSummary {
        changes: None,
        account: scope.account.clone(),
        region: scope.region.clone(),
        observed_at: now,
        credential_report_generated_at: Some(now - Duration::hours(3)),
        users_scanned: users.len(),
        exceptions_active: None,
        exceptions: Vec::new(),
        users_not_in_report: Vec::new(),
        users_deleted_since_report: Vec::new(),
        registry_last_changed_at: None,
    };
    (findings, summary)
}

#[test]
fn five_thousand_users_render_deterministically_within_a_loose_size_bound() {
    let (findings, summary) = five_thousand_users();
    let page_html = html::render(&findings, Some(&summary));
    assert_eq!(page_html, html::render(&findings, Some(&summary)), "deterministic");
    let size = page_html.len();
    eprintln!("5,000 users: {} findings, {size} bytes of HTML", findings.len());
    assert!(findings.len() > 5_000, "{} findings", findings.len());
    // Loose: about 400 bytes a finding; a regression to per-row styles or evidence bloat shows.
    assert!(size < findings.len() * 600, "{size} bytes for {} findings", findings.len());
    assert!(!page_html.contains(" style=\""), "no per-row inline styles");

    let dir = scratch("large");
    let page = dir.join("large.html");
    std::fs::write(&page, &page_html).unwrap();
    let dom = dump_dom(&dir, &page);
    assert_eq!(dom.console(), Vec::<&str>::new());
    assert_eq!(dom.stdout.matches(ROW).count(), findings.len(), "every row rendered");
    assert!(dom.stdout.contains("user-04999"));
    assert_eq!(
        chart_count(&dom.stdout, "high"),
        Some(findings.iter().filter(|f| f.severity == Severity::High).count())
    );
}
