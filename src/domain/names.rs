//! The shapes of AWS names and ids, checked before they are trusted.

/// Exactly 12 digits.
#[must_use]
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// IAM user names: 1–64 characters of `[A-Za-z0-9+=,.@_-]`.
#[must_use]
pub fn is_valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}
