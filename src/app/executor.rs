//! The executor every trigger ends in: remediate (untag), journal, import into Security Hub,
//! publish, and remember what was said.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{App, AppError, Failure, Outcome, Report, RunOptions};
use crate::approvals::Approvals;
use crate::checks::EXCEPTION_VALUE;
use crate::finding::{Action, CheckId, Finding, Remediation, RemediationStatus, Scope};
use crate::message::{MAX_BODY_BYTES, Message, ScanSummary, digest};
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, RegistryUnavailable, UserDirectory};
use crate::render::asff;

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// Imports `findings` into the store, if there is one; returns how many it accepted.
    async fn import(
        &self,
        findings: &[Finding],
        first_seen: &HashMap<String, DateTime<Utc>>,
        opts: &RunOptions,
        failures: &mut Vec<Failure>,
    ) -> usize {
        let Some(store) = self.findings_store.as_ref().filter(|_| opts.publish && !findings.is_empty()) else {
            return 0;
        };
        let documents: Vec<Value> =
            findings.iter().map(|f| asff::document(f, first_seen.get(&asff::finding_id(f)).copied())).collect();
        match store.import(&documents, opts.stop_by).await {
            Ok(n) => n,
            Err(e) => {
                let n = e.imported;
                failures.push(Failure::SecurityHub(e));
                n
            }
        }
    }

    /// Imports the findings into Security Hub (when enabled), publishes the `messages` built
    /// from them (only when publishing; batch by batch, stopping before the deadline), then archives the resolved findings once their
    /// announcement is out, and collects every failure into the report. A deadline reached
    /// with findings unpublished is an error that says how far publishing got.
    // One step after another, in the order the README documents.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn finish(
        &self,
        trigger: String,
        mut findings: Vec<Finding>,
        mut failures: Vec<Failure>,
        opts: &RunOptions,
        scan: Option<ScanSummary>,
        mut lifecycle: Lifecycle,
        messages: impl FnOnce(&[Finding], Option<&ScanSummary>, &[Finding]) -> Vec<Message>,
    ) -> Result<Report, AppError> {
        if let Some(name) = self.organization.as_ref().and_then(|o| o.account_name.as_ref()) {
            for f in findings.iter_mut().chain(lifecycle.resolved.iter_mut()) {
                f.account_name.get_or_insert_with(|| name.clone());
            }
        }
        // Every remediation applied is journaled before anything is announced.
        self.journal(&findings, &mut failures).await;
        let mut warnings = std::mem::take(&mut lifecycle.warnings);
        let mut plan = lifecycle.plan.take();
        if plan.is_none() && scan.is_none() && opts.publish && !findings.is_empty() {
            match self.plan_event(&findings, opts).await {
                Ok(Some((p, w))) => {
                    plan = Some(p);
                    warnings.extend(w);
                }
                Ok(None) => {}
                Err(e) => failures.push(Failure::State(e)),
            }
        }
        for w in &warnings {
            tracing::warn!(record = %w, "state table: malformed record skipped");
        }
        if let Some(plan) = &plan {
            let notices: HashMap<&str, &crate::finding::Notice> =
                plan.announce.iter().filter_map(|f| Some((f.id.as_str(), f.notice.as_ref()?))).collect();
            for f in &mut findings {
                f.notice = notices.get(f.id.as_str()).map(|n| (*n).clone());
            }
        }
        // Security Hub not enabled: reading failed already, and every import would fail the same way.
        let store_usable =
            !lifecycle.failure.as_ref().is_some_and(|f| matches!(f, Failure::SecurityHub(e) if e.not_enabled));
        let mut imported = 0;
        if store_usable {
            imported = self.import(&findings, &lifecycle.first_seen, opts, &mut failures).await;
        }
        let mut published = 0;
        // Rendered only to be sent: a run that does not publish renders nothing.
        let messages = match &plan {
            _ if !opts.publish => Vec::new(),
            Some(plan) => announcements(plan, &findings, scan.as_ref()),
            None => messages(&findings, scan.as_ref(), &lifecycle.resolved),
        };
        // A retry after a partial publish sends only what was not sent.
        let messages: Vec<Message> = messages.into_iter().filter(|m| !opts.already_sent.contains(&m.id)).collect();
        let mut sent = Vec::new();
        if !messages.is_empty() {
            let sink = self.sink.as_ref().ok_or(AppError::NoTopic)?;
            match sink.publish(&messages, opts.stop_by).await {
                Ok(n) => {
                    published = n;
                    sent = messages.iter().map(|m| m.id.clone()).collect();
                }
                Err(e) if e.deadline => {
                    return Err(AppError::DeadlineNear {
                        completed: format!(
                            "{}published {} of {} messages ({} findings); the rest were not sent",
                            untag_progress(&findings),
                            e.published,
                            e.total,
                            findings.len()
                        ),
                    });
                }
                Err(e) => {
                    published = e.published;
                    sent.clone_from(&e.sent);
                    failures.push(Failure::Publish(e));
                }
            }
        }
        // Remembered once sent: a record whose message did not go out is announced next time.
        if let (Some(state), Some(plan)) = (&self.state, &plan) {
            let delivered: HashSet<String> = sent.iter().chain(opts.already_sent.iter()).cloned().collect();
            let writes = crate::state::writes_after(plan, &delivered);
            if !writes.is_empty()
                && let Err(e) = state.write_threads(&writes).await
            {
                failures.push(Failure::State(e));
            }
        }
        // Archived only once announced: if publishing failed, the next scan finds them open
        // again and announces them then, rather than never.
        let announced = !failures.iter().any(|f| matches!(f, Failure::Publish(_)));
        if store_usable && announced {
            imported += self.import(&lifecycle.resolved, &lifecycle.first_seen, opts, &mut failures).await;
        }
        let failure =
            (!failures.is_empty()).then(|| failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
        Ok(Report {
            trigger,
            outcome: Outcome::Processed,
            findings,
            resolved: lifecycle.resolved,
            published,
            imported,
            scan,
            failure,
            failures,
            sent,
            state_warnings: warnings,
            phases: Vec::new(),
        })
    }

    /// The event path's plan: the records of the findings' threads (one `BatchGetItem`), then
    /// what is new or changed. `None` without a state table.
    async fn plan_event(
        &self,
        findings: &[Finding],
        opts: &RunOptions,
    ) -> Result<Option<(crate::state::Plan, Vec<String>)>, crate::ports::StateError> {
        let Some(state) = &self.state else { return Ok(None) };
        let account = &findings[0].account;
        let threads: Vec<String> =
            findings.iter().filter(|f| !crate::state::is_act(f.check)).map(Finding::thread_id).collect();
        let read = state.threads_of(account, &threads).await?;
        Ok(Some((crate::state::plan_event(&read.records, findings, opts.now), read.malformed)))
    }

    /// Writes every applied remediation that carries its undo record to the action journal.
    async fn journal(&self, findings: &[Finding], failures: &mut Vec<Failure>) {
        let Some(state) = &self.state else { return };
        for f in
            findings.iter().filter(|f| f.remediation.as_ref().is_some_and(|r| r.status == RemediationStatus::Applied))
        {
            let Some(record) = f.evidence.get("undo").and_then(|u| serde_json::from_value(u.clone()).ok()) else {
                continue;
            };
            let entry =
                crate::state::journal::JournalEntry::applied(&f.account, &f.id, record, f.observed_at, &f.trigger);
            if let Err(e) = state.journal(&entry).await {
                failures.push(Failure::State(e));
            }
        }
    }

    /// With a readable registry, remediates; without one, adds the critical finding and
    /// touches nothing (never untag on uncertainty). Returns the failures.
    pub(super) async fn remediate_or_report(
        &self,
        findings: &mut Vec<Finding>,
        registry_error: Option<RegistryUnavailable>,
        scope: &Scope,
        opts: &RunOptions,
    ) -> Result<Vec<Failure>, AppError> {
        let mut failures = match registry_error {
            None => self.remediate(findings, opts).await?,
            Some(e) => {
                findings.push(self.registry_unavailable(scope, &e));
                vec![Failure::RegistryUnavailable(e)]
            }
        };
        // Stale keys do not depend on the registry: they are judged from IAM alone.
        failures.extend(self.deactivate_stale_keys(findings, opts).await?);
        Ok(failures)
    }

    fn registry_unavailable(&self, scope: &Scope, error: &RegistryUnavailable) -> Finding {
        let mut f = scope.finding(
            CheckId::ApprovalsRegistryUnavailable,
            self.approvals.location(),
            format!("the approvals registry could not be used, so no exception tag was judged or removed: {error}"),
        );
        f.evidence = json!({ "secret_id": self.approvals.location(), "error": error.to_string() });
        f
    }

    /// Carries out the findings' untag actions, re-reading the registry first so an approval
    /// that landed since the first read is honoured, and checking the deadline before each
    /// call. Returns the failures; a deadline reached midway is an error naming the progress.
    async fn remediate(&self, findings: &mut [Finding], opts: &RunOptions) -> Result<Vec<Failure>, AppError> {
        let mut targets: Vec<&mut Finding> =
            findings.iter_mut().filter(|f| matches!(f.action, Some(Action::Untag { .. }))).collect();
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let set = |f: &mut Finding, status, detail: Option<String>| {
            f.remediation = Some(Remediation { action: "untag".into(), status, detail });
        };
        if !self.config.auto_remediate || opts.dry_run {
            let why = if opts.dry_run { "--dry-run" } else { "AUTO_REMEDIATE=false" };
            for f in targets {
                set(f, RemediationStatus::DryRun, Some(format!("would remove the tag ({why})")));
            }
            return Ok(Vec::new());
        }
        let fresh: Approvals = match self.approvals.load().await {
            Ok(a) => a,
            Err(e) => {
                let failure = Failure::RegistryReRead(e);
                for f in targets {
                    set(f, RemediationStatus::Failed, Some(failure.to_string()));
                }
                return Ok(vec![failure]);
            }
        };
        let total = targets.len();
        let (mut failures, mut applied) = (Vec::new(), 0);
        for f in &mut targets {
            let Some(Action::Untag { user, tag_key }) = f.action.clone() else { continue };
            if opts.must_stop() {
                return Err(AppError::DeadlineNear {
                    completed: format!(
                        "judged {total} exception tag(s) to remove, untagged {applied} of {total}; nothing was published"
                    ),
                });
            }
            if fresh.is_valid_for(&user, opts.now) {
                set(f, RemediationStatus::Skipped, Some("an approval appeared when the registry was re-read".into()));
                continue;
            }
            match self.directory.remove_tag(&user, &tag_key).await {
                Ok(()) => {
                    tracing::warn!(user = %user, tag_key = %tag_key, check = %f.check, "removed exception tag");
                    let previous_value = f.evidence["tag_value"].as_str().unwrap_or(EXCEPTION_VALUE).to_owned();
                    crate::remediate::undo::record(
                        &mut f.evidence,
                        &crate::remediate::undo::UndoRecord::Untag { user: user.clone(), tag_key, previous_value },
                    );
                    set(f, RemediationStatus::Applied, None);
                    applied += 1;
                }
                Err(e) => {
                    set(f, RemediationStatus::Failed, Some(e.to_string()));
                    failures.push(Failure::Remediation(e));
                }
            }
        }
        Ok(failures)
    }
}

/// One message per finding (and per resolution): the event path's publishing.
pub(super) fn one_message_each(findings: &[Finding], _: Option<&ScanSummary>, resolved: &[Finding]) -> Vec<Message> {
    findings.iter().chain(resolved).map(Message::finding).collect()
}

/// `untagged N of M, ` for the deadline message, from the findings' remediation statuses.
fn untag_progress(findings: &[Finding]) -> String {
    let planned = findings.iter().filter(|f| matches!(f.action, Some(Action::Untag { .. }))).count();
    if planned == 0 {
        return String::new();
    }
    let applied = findings
        .iter()
        .filter(|f| f.remediation.as_ref().is_some_and(|r| r.status == RemediationStatus::Applied))
        .count();
    format!("untagged {applied} of {planned}, ")
}

/// What the state table says to announce: the scan's digest, then one message per new,
/// changed or reminded finding, then one per resolution of a thread that was announced.
fn announcements(plan: &crate::state::Plan, findings: &[Finding], scan: Option<&ScanSummary>) -> Vec<Message> {
    let announced_threads: HashSet<&str> = plan.writes.iter().filter_map(|(k, _)| k.as_deref()).collect();
    let mut out = scan.map(|s| digest(s, findings, MAX_BODY_BYTES)).unwrap_or_default();
    out.extend(plan.announce.iter().map(Message::finding));
    out.extend(plan.resolved.iter().filter(|f| announced_threads.contains(f.id.as_str())).map(Message::finding));
    out
}

/// What a scan learnt from the findings store: when each open finding was first reported
/// (by store id), the findings it resolves, and why the store could not be read, if it could not.
#[derive(Debug, Default)]
pub(super) struct Lifecycle {
    pub(super) first_seen: HashMap<String, DateTime<Utc>>,
    pub(super) resolved: Vec<Finding>,
    pub(super) failure: Option<Failure>,
    /// The state table could not be read: the scan announces as if stateless.
    pub(super) state_failure: Option<Failure>,
    /// What the state table decided (announcements, resolutions, writes).
    pub(super) plan: Option<crate::state::Plan>,
    /// Malformed records of the table, skipped.
    pub(super) warnings: Vec<String>,
}
