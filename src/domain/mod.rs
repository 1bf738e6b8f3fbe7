//! The domain: plain data every layer shares, at the bottom of the crate.
//!
//! A file here imports only from the domain (this folder, [`crate::finding`],
//! [`crate::snapshot`], [`crate::approvals`], [`crate::credential_report`]); when a layer
//! above needs a type that a lower one also needs, the type moves here. The old paths
//! (`checks::Actor`, `ports::KeyState`, `message::Message`, …) re-export what moved.

pub mod account;
pub mod call;
pub mod cidr;
pub mod keys;
pub mod memory;
pub mod message;
pub mod names;
pub mod password;
pub mod policy;
pub mod registry;
pub mod root;
pub mod stored;
pub mod timing;
