//! Trigger: one CloudTrail event — claimed once by its id, parsed, routed to its handler.

use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use super::executor::{Lifecycle, one_message_each};
use super::{App, AppError, Failure, Outcome, Report, RunOptions};
use crate::checks::access::AccessJudge;
use crate::checks::{TagChange, UserInput, check_root_summary, check_user, root_used};
use crate::event::{IamChange, Parsed, RootActivity, Trigger, parse_event};
use crate::finding::{Scope, sort_findings};
use crate::ports::{AccountReader, ApprovalsStore, EventClaim, FindingsSink, UserDirectory};

impl<D: UserDirectory + AccountReader, A: ApprovalsStore, S: FindingsSink> App<D, A, S> {
    /// Handles one EventBridge event (or an event file given to the CLI).
    pub async fn handle(&self, event: Value, opts: &RunOptions) -> Result<Report, AppError> {
        if opts.publish && self.sink.is_none() {
            return Err(AppError::NoTopic);
        }
        let delivery = delivery_of(&event);
        let parsed = parse_event(event, &self.config.policy.exception_tag_key)?;
        let claim = match (&parsed, &self.state, delivery) {
            (Parsed::Trigger(t), Some(state), Some(delivery))
                if opts.publish && !matches!(t, Trigger::Schedule { .. }) =>
            {
                Some((state, delivery))
            }
            _ => None,
        };
        let Some((state, delivery)) = claim else { return self.dispatch(parsed, opts).await };
        // At-least-once delivery: an event id is handled once (a conditional write, with TTL).
        let lease_until = opts.now + lease(opts.stop_by);
        let (opts, claim_failure) =
            match state.claim_event(&delivery.account, &delivery.event_id, opts.now, lease_until).await {
                Ok(EventClaim::First) => (opts.clone(), None),
                Ok(EventClaim::Done { at }) => {
                    return Ok(Report::ignored(
                        "event".into(),
                        format!(
                            "event {} was already handled at {} (a duplicate delivery)",
                            delivery.event_id,
                            at.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    ));
                }
                Ok(EventClaim::InProgress { until }) => {
                    return Err(AppError::EventInProgress { event_id: delivery.event_id, until });
                }
                Ok(EventClaim::Retry { sent }) => (RunOptions { already_sent: Arc::new(sent), ..opts.clone() }, None),
                // Without the table the event is handled as if stateless, and the run says so.
                Err(e) => (opts.clone(), Some(e)),
            };
        let result = self.dispatch(parsed, &opts).await;
        if claim_failure.is_some() {
            return result.map(|mut report| {
                report.failures.extend(claim_failure.map(Failure::State));
                report.failure = Some(report.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
                report
            });
        }
        let sent: Vec<String> = match &result {
            Ok(report) => report.sent.clone(),
            Err(_) => Vec::new(),
        };
        let done = result.as_ref().is_ok_and(|r| r.failures.is_empty());
        let finished = state.finish_event(&delivery.account, &delivery.event_id, &sent, done, opts.now).await;
        match (result, finished) {
            (Ok(mut report), Err(e)) => {
                report.failures.push(Failure::State(e));
                report.failure = Some(report.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "));
                Ok(report)
            }
            (result, _) => result,
        }
    }

    async fn dispatch(&self, parsed: Parsed, opts: &RunOptions) -> Result<Report, AppError> {
        match parsed {
            Parsed::Ignored(reason) => Ok(Report::ignored("event".into(), reason)),
            // Boxed: the collect-and-publish future holds several SDK calls and is large.
            Parsed::Trigger(Trigger::IamChange(change)) => Box::pin(self.handle_change(change, opts)).await,
            Parsed::Trigger(Trigger::RootActivity(activity)) => Box::pin(self.handle_root(activity, opts)).await,
            Parsed::Trigger(Trigger::Schedule { account, .. }) => Box::pin(self.scan(account, opts)).await,
            Parsed::Trigger(Trigger::AccessChange(change)) => Box::pin(self.handle_access(change, opts)).await,
            Parsed::Trigger(Trigger::PasswordPolicyChange(call)) => {
                Box::pin(self.handle_password_policy(call, opts)).await
            }
            Parsed::Trigger(Trigger::RoleAssumed(a)) => Box::pin(self.handle_role_assumed(a, opts)).await,
            Parsed::Trigger(Trigger::UserSignIn(s)) => Box::pin(self.handle_user_sign_in(s, opts)).await,
            Parsed::Trigger(Trigger::SecretChanged(c)) => Box::pin(self.handle_secret_changed(c, opts)).await,
            Parsed::Trigger(Trigger::OrganizationChange(c)) => Box::pin(self.handle_organization_change(c, opts)).await,
            Parsed::Trigger(Trigger::RootSessionStarted(c)) => {
                Box::pin(self.handle_root_session_started(c, opts)).await
            }
            Parsed::Trigger(Trigger::RootFeatureChanged(c)) => {
                Box::pin(self.handle_root_feature_changed(c, opts)).await
            }
        }
    }

    async fn handle_change(&self, change: IamChange, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = format!("event:{}", change.event_name);
        if let Some(own) = &self.config.self_role_arn
            && change.actor.is_own(own, self.config.self_session_name.as_deref())
        {
            return Ok(Report::ignored(trigger, format!("{} was made by this function's own role", change.event_name)));
        }
        // A user given credentials now needs the network and MFA policies: read what reaches it.
        let gives_credentials = CREDENTIAL_EVENTS.contains(&change.event_name.as_str());
        let read_access = async { if gives_credentials { Some(self.directory.read_access().await) } else { None } };
        let (user, approvals, access) =
            tokio::join!(self.directory.read_user(&change.user_name), self.approvals.load(), read_access);
        let access = access.transpose()?;
        let scope = Scope {
            account: change.account.clone(),
            region: change.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        // Root acting on a user is reported even when the user is gone by now.
        let root_use = change.actor.root.then(|| root_used(&change.event_name, &change.actor, &change.context, &scope));
        let Some(user) = user? else {
            let outcome = Outcome::UserGone(format!("user {} no longer exists", change.user_name));
            let Some(root_use) = root_use else { return Ok(Report::without_findings(trigger, outcome)) };
            let findings = vec![root_use];
            let report =
                self.finish(trigger, findings, Vec::new(), opts, None, Lifecycle::default(), one_message_each).await?;
            return Ok(Report { outcome, ..report });
        };
        let tag_change =
            TagChange { actor: change.actor.clone(), exception_value_set: change.exception_value_set.clone() };
        let mut user = user;
        if let Some(access) = &access {
            user.policies = access.users.iter().find(|(n, _)| *n == user.name).map(|(_, p)| p.clone());
        }
        let judge = access.as_ref().map(|a| AccessJudge::new(&a.catalogue, &self.config.policy.enterprise_cidrs));
        let mut findings = check_user(&UserInput {
            user: &user,
            approvals: approvals.as_ref().ok(),
            change: Some(&tag_change),
            policy: &self.config.policy,
            scope: &scope,
            access: judge.as_ref(),
        });
        crate::remediate::stale::attach(&mut findings, &user, &self.config.policy, &self.config.stale_keys, opts.now);
        findings.extend(root_use);
        let mut failures = self.remediate_or_report(&mut findings, approvals.err(), &scope, opts).await?;
        let (opt_in, failed) = self.judge_opt_in(&change, &user, &scope, opts).await;
        findings.extend(opt_in);
        failures.extend(failed);
        if change.event_name.contains("AccessKey") {
            // A key changed: an opted-in user's rotation may have a step to take now.
            let (rotated, failed) = self.rotate_keys(&[&user], &scope, opts).await;
            findings.extend(rotated);
            failures.extend(failed);
        }
        sort_findings(&mut findings);
        self.finish(trigger, findings, failures, opts, None, Lifecycle::default(), one_message_each).await
    }

    /// Root acted on itself or signed in: `root-used`, then root's keys and MFA from the
    /// account summary (one call), with the event as evidence.
    async fn handle_root(&self, activity: RootActivity, opts: &RunOptions) -> Result<Report, AppError> {
        let trigger = format!("event:{}", activity.event_name);
        let scope = Scope {
            account: activity.account.clone(),
            region: activity.region.clone(),
            trigger: trigger.clone(),
            now: opts.now,
        };
        // The root-used alert goes out even if the summary cannot be read; the failure is reported.
        let mut failures = Vec::new();
        let (root_use, in_session) = self.root_use(&activity, &scope, &mut failures).await;
        let mut findings = vec![root_use];
        // A paired root session holds no credentials to judge: its task is the whole story.
        let summary = if in_session { None } else { Some(self.directory.read_root_summary().await) };
        match summary {
            None => {}
            Some(Ok(summary)) => findings.extend(check_root_summary(
                summary,
                &activity.event_name,
                &activity.actor,
                &activity.context,
                activity.access_key_id.as_deref(),
                &scope,
            )),
            Some(Err(e)) => failures.push(Failure::RootSummary(e)),
        }
        sort_findings(&mut findings);
        self.finish(trigger, findings, failures, opts, None, Lifecycle::default(), one_message_each).await
    }
}

/// Events that give a user credentials (a password, a new or reactivated key): the network and
/// MFA policy checks apply from that moment, so these also read what reaches the user (GAAD).
const CREDENTIAL_EVENTS: &[&str] = &["CreateLoginProfile", "CreateAccessKey", "UpdateAccessKey"];

/// Which delivery an event is: its account and CloudTrail `eventID` (EventBridge's `id` when
/// the detail has none).
struct Delivery {
    account: String,
    event_id: String,
}

fn delivery_of(event: &Value) -> Option<Delivery> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let event_id = text(&event["detail"]["eventID"]).or_else(|| text(&event["id"]))?;
    let account = text(&event["account"]).or_else(|| text(&event["detail"]["recipientAccountId"]))?;
    Some(Delivery { account, event_id })
}

/// How long an event is claimed: until the invocation's deadline, or 15 minutes (Lambda's
/// longest timeout) without one; a claim outliving a crashed attempt lapses then.
fn lease(stop_by: Option<Instant>) -> chrono::Duration {
    let remaining = stop_by.map_or(std::time::Duration::from_mins(15), |t| t.saturating_duration_since(Instant::now()));
    chrono::Duration::from_std(remaining + std::time::Duration::from_secs(10)).unwrap_or(chrono::Duration::minutes(15))
}
