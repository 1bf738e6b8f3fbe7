//! Trigger: the schedule — the daily scan (bulk reads, every user judged, a digest).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::executor::Lifecycle;
use super::{App, AppError, Failure, Outcome, Report, RunOptions, lifecycle};
use crate::approvals::Approvals;
use crate::checks::access::AccessJudge;
use crate::checks::{EXCEPTION_VALUE, UserInput, check_root, check_user, check_user_tags, last_used, password};
use crate::domain::timing::Phase;
use crate::finding::{Finding, Scope, Severity, sort_findings};
use crate::message::{ActiveException, MAX_BODY_BYTES, Message, ScanSummary, digest};
use crate::ports::{AccountReader, ApprovalsStore, FindingsSink, UserDirectory};
use crate::render::asff;

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// Runs the daily scan: bulk reads only, every user checked, a digest published.
    pub async fn scan(&self, event_account: Option<String>, opts: &RunOptions) -> Result<Report, AppError> {
        if opts.publish && self.sink.is_none() {
            return Err(AppError::NoTopic);
        }
        let reading = std::time::Instant::now();
        let approvals_read = async {
            let started = std::time::Instant::now();
            (self.approvals.load().await, Phase::since("approvals", started))
        };
        // Boxed: the reads' future is large; the scan's own stays small for its callers.
        let collect = Box::pin(async { tokio::join!(self.directory.read_account(), approvals_read) });
        let (snapshot, (approvals, approvals_phase)) = match opts.stop_by {
            None => collect.await,
            Some(stop) => tokio::time::timeout_at(stop, collect).await.map_err(|_| AppError::DeadlineNear {
                completed: "nothing: the credential report and GetAccountAuthorizationDetails were still being \
                                read; no finding was published, no tag removed"
                    .into(),
            })?,
        };
        let mut snapshot = snapshot?;
        let mut phases = std::mem::take(&mut snapshot.phases);
        phases.push(approvals_phase);
        phases.push(Phase::since("read", reading));
        let judging = std::time::Instant::now();
        let scope = Scope {
            account: snapshot.account.clone().or(event_account).unwrap_or_else(|| "unknown".into()),
            region: self.region.clone(),
            trigger: "schedule".into(),
            now: opts.now,
        };
        let registry = approvals.as_ref().ok();
        let exceptions = registry.map(|a| exceptions_in_force(&snapshot.users, a, &self.config.policy, opts.now));
        let exceptions_active = exceptions.as_ref().map(Vec::len);
        let registry_read = registry.is_some();
        let mut findings = self.judge_users(&snapshot, registry, &scope, opts);
        if let Some(root) = &snapshot.root {
            findings.extend(check_root(root, &scope));
        }
        findings.extend(password::check(snapshot.password_policy.as_ref(), &self.config.policy.password, &scope));
        if self.organization.as_ref().is_some_and(|o| o.management) {
            // SCPs never apply to the management account: its IAM users are unrestricted.
            let names: Vec<String> = snapshot.users.iter().map(|u| u.name.clone()).collect();
            findings.extend(crate::org::coverage::management_account_users(&scope.account, &names, &scope));
        }
        if opts.must_stop() {
            return Err(AppError::DeadlineNear {
                completed: format!(
                    "read and checked {} users ({} findings); stopped before remediation and publishing",
                    snapshot.users.len(),
                    findings.len()
                ),
            });
        }
        phases.push(Phase::since("judge", judging));
        let remediating = std::time::Instant::now();
        let mut failures = self.remediate_or_report(&mut findings, approvals.err(), &scope, opts).await?;
        self.scan_member_root(&scope, &mut findings, &mut failures).await;
        let privileged = self.scan_privileged(&snapshot, &scope, &mut findings, &mut failures).await;
        self.rotate_scanned(&snapshot, &scope, opts, &mut findings, &mut failures).await;
        sort_findings(&mut findings);
        phases.push(Phase::since("remediate", remediating));
        let planning = std::time::Instant::now();
        let coverage = lifecycle::Coverage {
            account: &scope.account,
            registry_read,
            root_checked: snapshot.root.is_some(),
            users_not_in_report: &snapshot.users_not_in_report,
            break_glass_checked: privileged.break_glass_checked,
        };
        let lifecycle = self.lifecycle(&findings, &coverage, opts).await;
        phases.push(Phase::since("state.plan", planning));
        failures.extend(lifecycle.failure.clone());
        failures.extend(lifecycle.state_failure.clone());
        let summary = ScanSummary {
            account: scope.account.clone(),
            region: scope.region.clone(),
            observed_at: opts.now,
            credential_report_generated_at: snapshot.report_generated_at,
            users_scanned: snapshot.users.len(),
            exceptions_active,
            exceptions: exceptions.unwrap_or_default(),
            users_not_in_report: snapshot.users_not_in_report,
            users_deleted_since_report: snapshot.users_deleted_since_report,
            registry_last_changed_at: privileged.registry_last_changed_at,
            changes: lifecycle.plan.as_ref().map(|p| p.changes.clone()),
        };
        let messages = |findings: &[Finding], summary: Option<&ScanSummary>, resolved: &[Finding]| {
            let mut messages = summary.map(|s| digest(s, findings, MAX_BODY_BYTES)).unwrap_or_default();
            messages.extend(findings.iter().filter(|f| f.severity >= Severity::High).map(Message::finding));
            messages.extend(resolved.iter().map(Message::finding));
            messages
        };
        let finishing = std::time::Instant::now();
        // Boxed: the publishing future is large; the scan's own stays small for its callers.
        let report =
            Box::pin(self.finish("schedule".into(), findings, failures, opts, Some(summary), lifecycle, messages))
                .await?;
        phases.push(Phase::since("publish", finishing));
        Ok(Report { phases, ..report })
    }

    /// Every user of the snapshot judged: all checks, or only the tag checks for a user the
    /// credential report does not list yet; stale keys get their remediation attached.
    fn judge_users(
        &self,
        snapshot: &crate::ports::AccountSnapshot,
        registry: Option<&Approvals>,
        scope: &Scope,
        opts: &RunOptions,
    ) -> Vec<Finding> {
        let policy = &self.config.policy;
        let judge = AccessJudge::new(&snapshot.catalogue, &policy.enterprise_cidrs);
        snapshot
            .users
            .iter()
            .flat_map(|user| {
                let input = UserInput { user, approvals: registry, change: None, policy, scope, access: Some(&judge) };
                if snapshot.users_not_in_report.contains(&user.name) {
                    check_user_tags(&input)
                } else {
                    let mut found = check_user(&input);
                    crate::remediate::stale::attach(&mut found, user, policy, &self.config.stale_keys, opts.now);
                    found
                }
            })
            .collect()
    }

    /// Reads the store's open findings and decides which this scan resolves (pure, in
    /// [`lifecycle::resolved`]). Without a store, or without publishing, there is nothing to do.
    async fn lifecycle(
        &self,
        findings: &[Finding],
        coverage: &lifecycle::Coverage<'_>,
        opts: &RunOptions,
    ) -> Lifecycle {
        if !opts.publish {
            return Lifecycle::default();
        }
        // The state table decides what is announced and resolved; Security Hub follows it.
        if let Some(state) = &self.state {
            match state.threads(coverage.account).await {
                Ok(read) => {
                    let plan =
                        crate::state::plan_scan(&read.records, findings, coverage, opts.now, self.config.remind_days);
                    return Lifecycle {
                        first_seen: first_seen_by_asff_id(&plan, findings),
                        resolved: plan.resolved.clone(),
                        warnings: read.malformed,
                        plan: Some(plan),
                        ..Lifecycle::default()
                    };
                }
                Err(e) => {
                    // Unreadable: announce as if stateless, and fail by name so the run is retried.
                    let failure = Some(Failure::State(e));
                    return Lifecycle {
                        state_failure: failure,
                        ..self.store_lifecycle(findings, coverage, opts.now).await
                    };
                }
            }
        }
        self.store_lifecycle(findings, coverage, opts.now).await
    }

    /// The lifecycle Security Hub's open findings give (without the state table).
    async fn store_lifecycle(
        &self,
        findings: &[Finding],
        coverage: &lifecycle::Coverage<'_>,
        now: DateTime<Utc>,
    ) -> Lifecycle {
        let Some(store) = self.findings_store.as_ref() else { return Lifecycle::default() };
        match store.open_findings(coverage.account).await {
            Ok(open) => Lifecycle {
                first_seen: open.iter().filter_map(|s| Some((s.store_id.clone(), s.first_observed_at?))).collect(),
                resolved: lifecycle::resolved(&open, findings, coverage, now),
                ..Lifecycle::default()
            },
            Err(e) => Lifecycle { failure: Some(Failure::SecurityHub(e)), ..Lifecycle::default() },
        }
    }

    /// The baseline most tools implement: list users, then read each one with per-user
    /// calls (about 5 per user). Kept for the benchmark; never used by the Lambda.
    pub async fn scan_per_user(&self, opts: &RunOptions) -> Result<Report, AppError> {
        let names = self.directory.list_user_names().await?;
        let approvals = self.approvals.load().await.ok();
        let mut findings = Vec::new();
        for name in &names {
            let Some(user) = self.directory.read_user(name).await? else { continue };
            let scope = Scope {
                account: user.arn.split(':').nth(4).unwrap_or("unknown").to_owned(),
                region: self.region.clone(),
                trigger: "schedule".into(),
                now: opts.now,
            };
            findings.extend(check_user(&UserInput {
                user: &user,
                approvals: approvals.as_ref(),
                change: None,
                policy: &self.config.policy,
                scope: &scope,
                access: None,
            }));
        }
        sort_findings(&mut findings);
        Ok(Report { findings, ..Report::without_findings("schedule".into(), Outcome::Processed) })
    }
}

/// When each finding (and resolution) was first seen, keyed by its Security Hub id.
fn first_seen_by_asff_id(plan: &crate::state::Plan, findings: &[Finding]) -> HashMap<String, DateTime<Utc>> {
    findings
        .iter()
        .chain(&plan.resolved)
        .filter_map(|f| Some((asff::finding_id(f), *plan.first_seen.get(&f.thread_id())?)))
        .collect()
}

/// The exceptions in force: tagged `True` under a valid approval (a metric and a list for the
/// approver in the digest, not findings).
fn exceptions_in_force(
    users: &[crate::snapshot::UserSnapshot],
    approvals: &Approvals,
    policy: &crate::config::Policy,
    now: DateTime<Utc>,
) -> Vec<ActiveException> {
    users
        .iter()
        .filter(|u| u.tag(&policy.exception_tag_key).is_some_and(|t| t.value == EXCEPTION_VALUE))
        .filter_map(|u| {
            let a = approvals.for_user(&u.name).filter(|a| a.expires > now)?;
            Some(ActiveException {
                user: u.name.clone(),
                approved_by: a.approved_by.clone(),
                ticket: a.ticket.clone(),
                expires: a.expires,
                last_used: last_used(u),
            })
        })
        .collect()
}
