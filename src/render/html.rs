//! The HTML report (`--format html`): one self-contained page a person attaches to an audit
//! ticket — account, time, credential report age, counts by severity and by check as inline
//! SVG charts, the CIS AWS Foundations Benchmark control of each check, and every finding.
//!
//! No scripts, fonts, images or links to fetch: the page opens offline and its
//! Content-Security-Policy forbids scripts, so an escaping mistake could not run one.
//! User names, tag values and evidence are attacker-controlled: every value goes through
//! [`Escaped`]; only the fixed markup of this file is written raw. Styles are classes in one
//! `<style>` block (no per-row `style` attribute) so that 5,000 users stay a few megabytes.
//!
//! Written with `format!` rather than a template crate (askama, maud): the page is one table
//! and two charts, a template would move the markup into a second file or a macro dialect,
//! and the one rule that matters — escape every value — is a single type here.

use std::collections::BTreeMap;
use std::fmt::{self, Display, Write as _};

use chrono::{DateTime, Utc};

use crate::domain::message::ScanSummary;
use crate::finding::{CheckId, CisControl, Finding, Severity};

/// Text made safe for HTML element content and quoted attribute values.
pub struct Escaped<'a>(pub &'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2937;margin:24px auto;max-width:1240px;padding:0 16px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}dl.meta dt{color:#6b7280}dl.meta dd{margin:0}\
.charts{display:flex;flex-wrap:wrap;gap:24px 48px}.charts figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}\
svg text{font:12px system-ui,sans-serif;fill:#1f2937}svg .n{font-weight:600}\
rect.critical{fill:#7f1d1d}rect.high{fill:#dc2626}rect.medium{fill:#f59e0b}rect.low{fill:#3b82f6}rect.info{fill:#9ca3af}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;vertical-align:top;padding:4px 6px;border-bottom:1px solid #e5e7eb}\
th{background:#f3f4f6;position:sticky;top:0}\
td.s span{display:inline-block;min-width:5.5em;text-align:center;border-radius:3px;padding:0 4px;font-weight:600;font-size:11px;text-transform:uppercase}\
.s .critical{background:#7f1d1d;color:#fff}.s .high{background:#dc2626;color:#fff}.s .medium{background:#fde68a}.s .low{background:#dbeafe}.s .info{background:#e5e7eb}\
#findings td:nth-child(2),#checks td:first-child{white-space:nowrap}#findings td:nth-child(6){min-width:16em}\
#findings td:nth-child(7){min-width:14em;font:12px ui-monospace,Menlo,Consolas,monospace;overflow-wrap:anywhere}\
.none{color:#6b7280}footer{margin-top:24px;color:#6b7280;font-size:12px}\
@media print{th{position:static}body{margin:0}}";

/// Renders the report. `scan` gives the header (account, users, credential report age) for a
/// scan; without it (an event) the header comes from the findings.
#[must_use]
pub fn render(findings: &[Finding], scan: Option<&ScanSummary>) -> String {
    let account = scan.map(|s| s.account.as_str()).or_else(|| findings.first().map(|f| f.account.as_str()));
    let account = account.unwrap_or("unknown");
    let evaluated = scan.map(|s| s.observed_at).or_else(|| findings.first().map(|f| f.observed_at));
    let day = evaluated.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
    let mut out = String::with_capacity(2048 + findings.len() * 400);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>IAM posture: account {acct} {day}</title><style>{STYLE}</style></head><body>\n\
         <h1>IAM posture report</h1>\n",
        acct = Escaped(account),
    );
    header(&mut out, account, evaluated, scan, findings.len());
    charts(&mut out, findings);
    checks_table(&mut out, findings);
    findings_table(&mut out, findings);
    let _ = write!(
        out,
        "<footer>iam-sentinel {} · controls from the {}</footer>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        CisControl::BENCHMARK
    );
    out
}

fn header(out: &mut String, account: &str, evaluated: Option<DateTime<Utc>>, scan: Option<&ScanSummary>, total: usize) {
    let time = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    out.push_str("<dl class=\"meta\">");
    let mut row = |term: &str, value: &str| {
        let _ = write!(out, "<dt>{term}</dt><dd>{}</dd>", Escaped(value));
    };
    row("Account", account);
    if let Some(scan) = scan {
        row("Region", &scan.region);
    }
    row("Evaluated at", &evaluated.map_or_else(|| "—".to_owned(), time));
    if let Some(scan) = scan {
        let report = match (scan.credential_report_generated_at, evaluated) {
            (Some(generated), Some(at)) => {
                format!("generated {}, {} before this evaluation", time(generated), age(at - generated))
            }
            (Some(generated), None) => format!("generated {}", time(generated)),
            (None, _) => "generation time unknown".to_owned(),
        };
        row("Credential report", &report);
        row("Users scanned", &scan.users_scanned.to_string());
        if !scan.users_not_in_report.is_empty() {
            row("Not yet in the report", &format!("{} users (tag checks only)", scan.users_not_in_report.len()));
        }
    } else {
        row("Scope", "one IAM change (event), not a full scan");
    }
    row("Findings", &total.to_string());
    out.push_str("</dl>\n");
}

/// `42 min`, `5 h`, `12 days` (as the CLI header says it); negative means a clock ahead.
fn age(d: chrono::Duration) -> String {
    let (sign, d) = if d < chrono::Duration::zero() { ("-", -d) } else { ("", d) };
    match d.num_minutes() {
        m if m < 120 => format!("{sign}{m} min"),
        m if m < 48 * 60 => format!("{sign}{} h", m / 60),
        _ => format!("{sign}{} days", d.num_days()),
    }
}

fn by_check(findings: &[Finding]) -> BTreeMap<CheckId, usize> {
    let mut counts = BTreeMap::new();
    for f in findings {
        *counts.entry(f.check).or_insert(0) += 1;
    }
    counts
}

/// Two horizontal bar charts: every severity (zeros included), then each check found.
fn charts(out: &mut String, findings: &[Finding]) {
    out.push_str("<h2>Counts</h2><div class=\"charts\">");
    let severities: Vec<(String, String, usize)> = Severity::ALL_DESCENDING
        .iter()
        .map(|&s| (s.as_str().to_owned(), s.as_str().to_owned(), findings.iter().filter(|f| f.severity == s).count()))
        .collect();
    bar_chart(out, "Findings by severity", &severities, 80);
    let checks: Vec<(String, String, usize)> = by_check(findings)
        .into_iter()
        .map(|(c, n)| {
            let label = match c.cis_control() {
                Some(cis) => format!("{c} (CIS {})", cis.id),
                None => c.as_str().to_owned(),
            };
            (label, c.severity().as_str().to_owned(), n)
        })
        .collect();
    if checks.is_empty() {
        out.push_str("<figure><figcaption>Findings by check</figcaption><p class=\"none\">No findings.</p></figure>");
    } else {
        bar_chart(out, "Findings by check", &checks, 260);
    }
    out.push_str("</div>\n");
}

/// One SVG bar chart of (label, severity class, count) rows, labels `label_width` px wide.
fn bar_chart(out: &mut String, title: &str, rows: &[(String, String, usize)], label_width: usize) {
    const ROW: usize = 22;
    const BAR: usize = 300;
    let max = rows.iter().map(|r| r.2).max().unwrap_or(0).max(1);
    let (width, height) = (label_width + BAR + 60, rows.len() * ROW + 4);
    let _ = write!(
        out,
        "<figure><figcaption>{title}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{title}\">",
        title = Escaped(title)
    );
    for (i, (label, class, n)) in rows.iter().enumerate() {
        let y = i * ROW + 2;
        // A non-zero count always shows at least a sliver.
        let bar = if *n == 0 { 0 } else { (n * BAR / max).max(2) };
        let _ = write!(
            out,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"{class}\" x=\"{label_width}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\"/>\
             <text class=\"n\" x=\"{nx}\" y=\"{ty}\">{n}</text>",
            lx = label_width - 6,
            ty = y + 14,
            label = Escaped(label),
            class = Escaped(class),
            h = ROW - 6,
            nx = label_width + bar + 6,
        );
    }
    out.push_str("</svg></figure>");
}

/// Each check found: severity, count, and the CIS control it maps to.
fn checks_table(out: &mut String, findings: &[Finding]) {
    let counts = by_check(findings);
    if counts.is_empty() {
        return;
    }
    out.push_str(
        "<h2>Checks and CIS controls</h2><table id=\"checks\"><thead><tr><th>Check</th><th>Severity</th><th>Findings</th>\
         <th>CIS AWS Foundations Benchmark v5.0</th></tr></thead><tbody>\n",
    );
    for (check, n) in counts {
        let sev = check.severity();
        let cis = check.cis_control().map_or_else(
            || "<span class=\"none\">— (this project's exception policy)</span>".to_owned(),
            |c| format!("{} {}", Escaped(c.id), Escaped(c.title)),
        );
        let _ = writeln!(
            out,
            "<tr><td>{check}</td><td class=\"s\"><span class=\"{sev}\">{sev}</span></td><td>{n}</td><td>{cis}</td></tr>",
            check = Escaped(check.as_str()),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn findings_table(out: &mut String, findings: &[Finding]) {
    let _ = write!(out, "<h2>Findings ({})</h2>", findings.len());
    if findings.is_empty() {
        out.push_str("<p class=\"none\">No findings.</p>\n");
        return;
    }
    out.push_str(
        "<table id=\"findings\"><thead><tr><th>Severity</th><th>Check</th><th>CIS</th><th>User</th><th>Key</th><th>Finding</th>\
         <th>Evidence</th><th>Remediation</th></tr></thead><tbody>\n",
    );
    for f in findings {
        let who = f.user.as_deref().unwrap_or(&f.principal);
        let cis = f.check.cis_control().map_or("", |c| c.id);
        let remediation = f.remediation.as_ref().map_or_else(String::new, |r| match &r.detail {
            Some(detail) => format!("{}: {} — {detail}", r.action, r.status.as_str()),
            None => format!("{}: {}", r.action, r.status.as_str()),
        });
        let _ = writeln!(
            out,
            "<tr><td class=\"s\"><span class=\"{sev}\">{sev}</span></td><td>{check}</td><td>{cis}</td><td>{who}</td>\
             <td>{key}</td><td>{message}</td><td>{evidence}</td><td>{remediation}</td></tr>",
            sev = f.severity,
            check = Escaped(f.check.as_str()),
            cis = Escaped(cis),
            who = Escaped(who),
            key = Escaped(f.resource.as_deref().unwrap_or("")),
            message = Escaped(&f.message),
            evidence = Escaped(&evidence(&f.evidence)),
            remediation = Escaped(&remediation),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// `tag_key=AccessException, tag_value=True`: the evidence's fields as a person reads them
/// (strings unquoted, anything nested as compact JSON).
fn evidence(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(fields) => {
            let mut out = String::new();
            for (i, (k, v)) in fields.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = match v {
                    serde_json::Value::String(s) => write!(out, "{sep}{k}={s}"),
                    v => write!(out, "{sep}{k}={v}"),
                };
            }
            out
        }
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Scope;

    fn finding(check: CheckId, user: &str) -> Finding {
        let scope = Scope {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            trigger: "schedule".into(),
            now: "2026-11-23T10:00:00Z".parse().unwrap(),
        };
        let mut f = scope.finding(check, &format!("arn:aws:iam::123456789012:user/{user}"), format!("{user} m"));
        f.user = Some(user.to_owned());
        f
    }

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            Escaped("<a href=\"x\">'&'</a>").to_string(),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(Escaped("plain").to_string(), "plain");
    }

    #[test]
    fn hostile_names_and_tag_values_come_out_as_text() {
        let mut f = finding(CheckId::ExceptionTagMalformed, "<script>alert(1)</script>");
        f.evidence = serde_json::json!({ "tag_value": "\"><script>alert(2)</script>" });
        let page = render(&[f], None);
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    }

    #[test]
    fn counts_every_severity_and_names_the_cis_control() {
        let page = render(&[finding(CheckId::AccessKeyStale, "a"), finding(CheckId::AccessKeyStale, "b")], None);
        for s in Severity::ALL_DESCENDING {
            assert!(page.contains(&format!(">{s}</text>")), "{s} in the severity chart");
        }
        assert!(page.contains("access-key-stale (CIS 1.13)"));
        assert!(page.contains("1.13 Ensure access keys are rotated every 90 days or less"));
        assert!(!page.contains(" style=\""), "no inline styles");
    }
}
