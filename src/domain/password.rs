//! The account password policy, as IAM holds it and as it must at least be.

/// The account password policy as `GetAccountPasswordPolicy` returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// `MinimumPasswordLength`.
    pub minimum_password_length: Option<u32>,
    /// `PasswordReusePrevention`: how many previous passwords cannot be reused; `None` when off.
    pub password_reuse_prevention: Option<u32>,
    /// `MaxPasswordAge` in days; `None` (or `ExpirePasswords` false) when passwords never expire.
    pub max_password_age: Option<u32>,
    /// `ExpirePasswords`.
    pub expire_passwords: bool,
    /// `RequireSymbols`.
    pub require_symbols: bool,
    /// `RequireNumbers`.
    pub require_numbers: bool,
    /// `RequireUppercaseCharacters`.
    pub require_uppercase_characters: bool,
    /// `RequireLowercaseCharacters`.
    pub require_lowercase_characters: bool,
    /// `AllowUsersToChangePassword`.
    pub allow_users_to_change_password: bool,
    /// `HardExpiry`: an expired password can only be reset by an administrator.
    pub hard_expiry: Option<bool>,
}

/// What the account password policy must at least require.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordMinimums {
    /// Shortest allowed password (CIS v5.0 1.7: 14).
    pub min_length: u32,
    /// Previous passwords remembered (CIS v5.0 1.8: 24).
    pub reuse_prevention: u32,
    /// Longest allowed password age in days; `None` when the organisation does not rotate passwords.
    pub max_age_days: Option<u32>,
    /// Character classes to require; CIS v5.0 no longer asks for any, so all default to false.
    pub require_symbols: bool,
    /// See `require_symbols`.
    pub require_numbers: bool,
    /// See `require_symbols`.
    pub require_uppercase: bool,
    /// See `require_symbols`.
    pub require_lowercase: bool,
}

impl Default for PasswordMinimums {
    fn default() -> Self {
        PasswordMinimums {
            min_length: 14,
            reuse_prevention: 24,
            max_age_days: None,
            require_symbols: false,
            require_numbers: false,
            require_uppercase: false,
            require_lowercase: false,
        }
    }
}
