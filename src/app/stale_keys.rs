//! Wires the stale-key executor ([`crate::remediate::stale`]) into an invocation.

use super::{App, AppError, Failure, RunOptions};
use crate::finding::Finding;
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, UserDirectory};
use crate::remediate::stale::{Recheck, execute};

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// Deactivates the keys the findings plan to (or says it would, in dry-run); a deadline
    /// reached midway is an error naming the progress.
    pub(super) async fn deactivate_stale_keys(
        &self,
        findings: &mut [Finding],
        opts: &RunOptions,
    ) -> Result<Vec<Failure>, AppError> {
        let mode = self.config.stale_keys.mode;
        let recheck = Recheck { unused_days: self.config.policy.key_unused_days, now: opts.now };
        let last_use = self.key_rotation.as_deref();
        match execute(&self.directory, last_use, findings, recheck, mode, opts.dry_run, || opts.must_stop()).await {
            Ok(errors) => Ok(errors.into_iter().map(Failure::Remediation).collect()),
            Err(stopped) => Err(AppError::DeadlineNear {
                completed: format!(
                    "deactivated {} of {} stale key(s); nothing was published",
                    stopped.applied, stopped.total
                ),
            }),
        }
    }
}
