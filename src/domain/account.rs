//! What an account says about itself: its root user's credentials, its place in the organization.

/// Root's credential state from `GetAccountSummary` (`AccountAccessKeysPresent`, `AccountMFAEnabled`,
/// `AccountPasswordPresent`, `AccountSigningCertificatesPresent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RootSummary {
    /// Root has at least one access key (the summary does not say whether it is active).
    pub access_keys_present: bool,
    /// Root has MFA.
    pub mfa_enabled: bool,
    /// Root has a console password.
    pub password_present: bool,
    /// Root has at least one X.509 signing certificate.
    pub signing_certificates_present: bool,
}

/// One account of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    /// The 12-digit account id.
    pub id: String,
    /// The account's name, as Organizations holds it.
    pub name: String,
}
