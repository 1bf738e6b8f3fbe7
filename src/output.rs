//! Rendering findings for people (`table`) and tools (`json`, one finding per line).

use std::fmt::Write as _;

use crate::domain::message::ScanSummary;
use crate::finding::{Finding, Severity};
pub use crate::render::text::summary;

/// Output formats of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Grouped by severity, one line per finding, then a summary line.
    Table,
    /// NDJSON: one finding per line.
    Json,
    /// Only the counts.
    Summary,
    /// AWS Security Finding Format: one JSON array, as `aws securityhub batch-import-findings` takes.
    Asff,
    /// OCSF 1.1.0 Detection Findings, one per line, for a SIEM or a security lake.
    Ocsf,
    /// One self-contained HTML page (charts, findings, CIS controls) to attach to an audit ticket.
    Html,
}

/// Renders `findings` in `format`; `scan` (what a scan read: account, users, report age)
/// heads the formats that show it.
#[must_use]
pub fn render(findings: &[Finding], scan: Option<&ScanSummary>, format: Format) -> String {
    match format {
        Format::Json => {
            findings.iter().filter_map(|f| serde_json::to_string(f).ok()).fold(String::new(), |mut out, line| {
                out.push_str(&line);
                out.push('\n');
                out
            })
        }
        Format::Table => table(findings),
        Format::Summary => summary(findings) + "\n",
        Format::Asff => crate::render::asff::render(findings),
        Format::Ocsf => crate::render::ocsf::render(findings),
        Format::Html => crate::render::html::render(findings, scan),
    }
}

fn table(findings: &[Finding]) -> String {
    let who = |f: &Finding| f.user.clone().unwrap_or_else(|| f.principal.clone());
    let check_w = findings.iter().map(|f| f.check.as_str().len()).max().unwrap_or(0);
    let who_w = findings.iter().map(|f| who(f).len()).max().unwrap_or(0);
    let mut out = String::new();
    for sev in Severity::ALL_DESCENDING {
        let group: Vec<&Finding> = findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{} ({})", sev.as_str().to_ascii_uppercase(), group.len());
        for f in group {
            let remediation =
                f.remediation.as_ref().map(|r| format!("  [{}: {}]", r.action, r.status.as_str())).unwrap_or_default();
            let _ = writeln!(out, "  {:<check_w$}  {:<who_w$}  {}{remediation}", f.check.as_str(), who(f), f.message);
        }
    }
    out.push_str(&summary(findings));
    out.push('\n');
    out
}
