//! The IAM credential report (one CSV for the whole account) parsed into snapshots.
//!
//! Format: <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_getting-report.html>.
//! Dates are ISO 8601; `N/A` means "no such credential", `no_information` means "never
//! used", `not_supported` means the field does not apply (root password rotation).
//! The report has no key ids, so keys are named by slot (`access_key_1`).

use chrono::{DateTime, Utc};

use crate::snapshot::{AccessKey, KeyRef, RootSnapshot};

/// The user column value of the root account's row.
pub const ROOT_ROW: &str = "<root_account>";

/// The header AWS writes (22 columns since 2015), for building reports in tests and tools.
pub const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

/// A report text: [`HEADER`], then `rows`, one per line.
#[must_use]
pub fn report_text(rows: &[&str]) -> String {
    let mut text = format!("{HEADER}\n");
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// The columns this parser needs; a report without one of them is rejected.
const REQUIRED_COLUMNS: &[&str] = &[
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
];

/// One row as AWS writes it; every value is text (`true`, `N/A`, an ISO 8601 date, …).
#[derive(Debug, serde::Deserialize)]
struct Row {
    user: String,
    arn: String,
    user_creation_time: String,
    password_enabled: String,
    password_last_used: String,
    password_last_changed: String,
    mfa_active: String,
    access_key_1_active: String,
    access_key_1_last_rotated: String,
    access_key_1_last_used_date: String,
    access_key_2_active: String,
    access_key_2_last_rotated: String,
    access_key_2_last_used_date: String,
}

/// Credential state of one user from the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportUser {
    /// User name.
    pub name: String,
    /// User ARN.
    pub arn: String,
    /// Console password enabled.
    pub password_enabled: bool,
    /// Last console sign-in with the password; `None` if never (`no_information`) or no password.
    pub password_last_used: Option<DateTime<Utc>>,
    /// When the password was set: `password_last_changed`, else the user's creation time
    /// (AWS leaves `password_last_changed` at N/A until the first change).
    pub password_set: Option<DateTime<Utc>>,
    /// At least one MFA device.
    pub mfa_active: bool,
    /// Keys by slot (inactive ones included).
    pub keys: Vec<AccessKey>,
}

/// A parsed credential report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialReport {
    /// Every IAM user row.
    pub users: Vec<ReportUser>,
    /// The root row, when present.
    pub root: Option<RootSnapshot>,
}

/// A report that could not be parsed; names the row and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The 16-column layout of 2015, before AWS added when and where each key was last used.
    #[error(
        "credential report is in the obsolete 16-column format of 2015 (no access_key_N_last_used_date \
         columns), so unused keys cannot be judged; AWS has generated the 22-column format since 2015: \
         generate a new report"
    )]
    ObsoleteFormat,
    /// The header lacks a column this parser needs.
    #[error("credential report has no `{0}` column")]
    MissingColumn(&'static str),
    /// A row could not be read as CSV.
    #[error("credential report line {line}: {problem}")]
    Csv {
        /// 1-based line number.
        line: u64,
        /// What went wrong.
        problem: String,
    },
    /// A field has a value outside the documented format.
    #[error("credential report row for {user:?}: column `{column}` has unexpected value {value:?}")]
    BadValue {
        /// The row's user.
        user: String,
        /// The column.
        column: &'static str,
        /// The value (never a secret: the report holds none).
        value: String,
    },
}

/// Parses the CSV text of `GetCredentialReport`.
pub fn parse(text: &[u8]) -> Result<CredentialReport, ReportError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(text);
    let headers = reader.headers().map_err(|e| ReportError::Csv { line: 1, problem: e.to_string() })?.clone();
    let has = |col: &str| headers.iter().any(|h| h == col);
    if has("access_key_1_last_rotated") && !has("access_key_1_last_used_date") {
        return Err(ReportError::ObsoleteFormat);
    }
    if let Some(col) = REQUIRED_COLUMNS.iter().find(|c| !has(c)) {
        return Err(ReportError::MissingColumn(col));
    }
    let mut report = CredentialReport::default();
    for (n, row) in reader.deserialize::<Row>().enumerate() {
        let row = row.map_err(|e| ReportError::Csv {
            line: e.position().map_or(n as u64 + 2, csv::Position::line),
            problem: e.to_string(),
        })?;
        let bad = |column: &'static str, value: &str| ReportError::BadValue {
            user: row.user.clone(),
            column,
            value: value.to_owned(),
        };
        let flag = |column: &'static str, value: &str| match value {
            // Root's password_enabled is not_supported: root always has a password.
            "true" | "not_supported" => Ok(true),
            "false" => Ok(false),
            v => Err(bad(column, v)),
        };
        let date = |column: &'static str, value: &str| -> Result<Option<DateTime<Utc>>, ReportError> {
            match value {
                "N/A" | "no_information" | "not_supported" | "" => Ok(None),
                v => DateTime::parse_from_rfc3339(v).map(|d| Some(d.with_timezone(&Utc))).map_err(|_| bad(column, v)),
            }
        };
        let slots = [
            (
                1u8,
                ("access_key_1_active", &row.access_key_1_active),
                ("access_key_1_last_rotated", &row.access_key_1_last_rotated),
                ("access_key_1_last_used_date", &row.access_key_1_last_used_date),
            ),
            (
                2u8,
                ("access_key_2_active", &row.access_key_2_active),
                ("access_key_2_last_rotated", &row.access_key_2_last_rotated),
                ("access_key_2_last_used_date", &row.access_key_2_last_used_date),
            ),
        ];
        let mut keys = Vec::new();
        for (slot, (active_col, active), (rotated_col, rotated), (used_col, used)) in slots {
            let active = flag(active_col, active)?;
            match date(rotated_col, rotated)? {
                Some(created) => {
                    keys.push(AccessKey { key: KeyRef::Slot(slot), active, created, last_used: date(used_col, used)? });
                }
                None if active => return Err(bad(rotated_col, rotated)),
                None => {}
            }
        }
        let mfa_active = flag("mfa_active", &row.mfa_active)?;
        if row.user == ROOT_ROW {
            report.root = Some(RootSnapshot { arn: row.arn.clone(), keys, mfa_active });
        } else {
            let password_enabled = flag("password_enabled", &row.password_enabled)?;
            let password_set = match date("password_last_changed", &row.password_last_changed)? {
                Some(changed) => Some(changed),
                None if password_enabled => date("user_creation_time", &row.user_creation_time)?,
                None => None,
            };
            report.users.push(ReportUser {
                password_enabled,
                password_last_used: date("password_last_used", &row.password_last_used)?,
                password_set,
                name: row.user.clone(),
                arn: row.arn.clone(),
                mfa_active,
                keys,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rows: &[&str]) -> Result<CredentialReport, ReportError> {
        parse(report_text(rows).as_bytes())
    }

    #[test]
    fn root_row_with_an_active_key_and_no_mfa() {
        let r = report(&["<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2026-11-01T08:00:00+00:00,not_supported,not_supported,false,true,2024-03-05T10:00:00+00:00,2026-11-20T09:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"]).unwrap();
        let root = r.root.unwrap();
        assert!(!root.mfa_active);
        assert_eq!(root.keys.len(), 1);
        assert!(root.keys[0].active);
        assert_eq!(root.keys[0].resource(), "access_key_1 created 2024-03-05");
        assert!(r.users.is_empty());
    }

    #[test]
    fn two_keys_never_used_and_na_dates() {
        let r = report(&[
            "svc,arn:aws:iam::123456789012:user/svc,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2025-01-02T00:00:00+00:00,N/A,N/A,N/A,true,2026-05-07T12:00:00+00:00,2026-11-01T00:00:00+00:00,eu-west-1,iam,false,N/A,false,N/A",
            "dave,arn:aws:iam::123456789012:user/dave,2025-01-01T00:00:00+00:00,true,no_information,2025-01-01T00:00:00+00:00,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        ])
        .unwrap();
        let svc = &r.users[0];
        assert_eq!(svc.keys.len(), 2);
        assert_eq!(svc.keys[0].last_used, None, "never used");
        assert_eq!(svc.keys[1].resource(), "access_key_2 created 2026-05-07");
        assert!(svc.keys[1].last_used.is_some());
        let dave = &r.users[1];
        assert!(dave.password_enabled && dave.mfa_active && dave.keys.is_empty());
    }

    #[test]
    fn malformed_reports_are_named_errors() {
        assert_eq!(parse(b"user,arn\nx,y\n").unwrap_err(), ReportError::MissingColumn("user_creation_time"));
        let err = report(&["svc,arn:x,2025-01-01T00:00:00+00:00,maybe,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"]).unwrap_err();
        assert!(err.to_string().contains("password_enabled") && err.to_string().contains("svc"), "{err}");
        let err = report(&["svc,arn:x,2025"]).unwrap_err();
        assert!(matches!(err, ReportError::Csv { .. }), "{err}");
        let err = report(&["svc,arn:x,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"]).unwrap_err();
        assert!(err.to_string().contains("access_key_1_last_rotated"), "{err}");
    }

    #[test]
    fn password_use_and_when_it_was_set() {
        let r = report(&[
            "olga,arn:aws:iam::123456789012:user/olga,2025-01-01T00:00:00+00:00,true,2026-09-01T08:00:00+00:00,2025-06-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            "new,arn:aws:iam::123456789012:user/new,2026-11-01T00:00:00+00:00,true,no_information,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            "keys,arn:aws:iam::123456789012:user/keys,2025-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A",
        ])
        .unwrap();
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(
            (r.users[0].password_last_used, r.users[0].password_set),
            (at("2026-09-01T08:00:00Z"), at("2025-06-01T00:00:00Z"))
        );
        assert_eq!(
            (r.users[1].password_last_used, r.users[1].password_set),
            (None, at("2026-11-01T00:00:00Z")),
            "never changed: creation time"
        );
        assert_eq!((r.users[2].password_last_used, r.users[2].password_set), (None, None), "no password");
    }

    #[test]
    fn the_2015_layout_is_refused_as_obsolete() {
        let old = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_2_active,access_key_2_last_rotated,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\nbob,arn:aws:iam::123456789012:user/bob,2014-10-16T16:03:09+00:00,true,N/A,N/A,N/A,false,true,2014-12-03T18:53:41+00:00,false,N/A,false,N/A,false,N/A\n";
        let err = parse(old.as_bytes()).unwrap_err();
        assert_eq!(err, ReportError::ObsoleteFormat);
        assert!(err.to_string().contains("obsolete 16-column format"), "{err}");
    }

    #[test]
    fn an_empty_account_has_only_a_header() {
        assert_eq!(parse(format!("{HEADER}\n").as_bytes()).unwrap(), CredentialReport::default());
    }
}
