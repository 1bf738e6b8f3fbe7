//! Remediations beyond the checks: first a pure plan (what to change, decided from the
//! snapshot, the policy and "now"), then one executor that re-reads, acts and records what it
//! did, so that every credential action can be reversed with `iam-sentinel undo`.

pub mod rotation;
pub mod stale;
pub mod undo;
