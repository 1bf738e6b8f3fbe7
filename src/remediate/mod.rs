//! Remediation beyond the exception tag: decided purely, carried out in one place.

pub mod rotation;
