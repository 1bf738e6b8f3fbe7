//! The organization scan's steps, shared by the Step Functions state machine (each step one
//! invocation: `list_accounts`, `scan_account`, `org_digest`) and by `iam-sentinel scan
//! --organization` (all steps in one process, accounts scanned with bounded concurrency).

use std::collections::HashMap;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{AppError, Report, RunOptions};
use crate::checks::root_access::RootFeatures;
use crate::event::is_account_id;
use crate::finding::Finding;
use crate::message::{MAX_BODY_BYTES, Message};
use crate::org::digest::{AccountResult, OrgSummary, messages};
use crate::ports::{CallError, FindingsSink, PublishError};
use crate::runtime::Deployment;

/// Why an organization step could not be done.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// The deployment is not in organization mode.
    #[error("{0} needs ORGANIZATION_MODE=true (this deployment guards one account)")]
    NotOrganization(&'static str),
    /// A request from the state machine is not in the documented shape.
    #[error("malformed {what}: {problem}")]
    Malformed {
        /// Which request.
        what: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// Reading the organization, or reaching an account, failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The account's scan failed.
    #[error("account {account}: {source}")]
    Scan {
        /// The account.
        account: String,
        /// Why.
        source: AppError,
    },
    /// The organization digest could not be published.
    #[error("organization digest: {0}")]
    Publish(PublishError),
}

/// A request of the organization scan's state machine, recognised by its one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgRequest {
    /// `{"list_accounts": {}}`.
    ListAccounts,
    /// `{"scan_account": "111122223333", "account_name"?: "…", "management_account"?: "…",
    /// "root_managed_centrally"?: true}`.
    ScanAccount {
        /// The account to scan.
        account: String,
        /// Its name, when the caller knows it.
        account_name: Option<String>,
        /// The organization's management account, when the caller knows it.
        management_account: Option<String>,
        /// Whether the organization manages root credentials centrally, as `list_accounts` read
        /// it once for the whole run; `None` when unknown (the member's root credentials are then
        /// not judged).
        root_managed_centrally: Option<bool>,
    },
    /// `{"org_digest": {"accounts": [...], "results": [...]}}` or with `"failure"` instead of results.
    Digest(DigestInput),
}

/// The last step's input: the accounts listed and every child's result, or why the map failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestInput {
    /// The accounts the first step listed.
    pub accounts: Vec<String>,
    /// One result per scanned account.
    #[serde(default)]
    pub results: Option<Vec<AccountResult>>,
    /// The map's error (`{"Error": …, "Cause": …}`) when it failed.
    #[serde(default)]
    pub failure: Option<Value>,
}

/// The organization request in `payload`, if it is one; `None` for EventBridge events.
pub fn request(payload: &Value) -> Result<Option<OrgRequest>, OrgError> {
    let Some(object) = payload.as_object() else { return Ok(None) };
    if object.contains_key("list_accounts") {
        return Ok(Some(OrgRequest::ListAccounts));
    }
    if let Some(account) = object.get("scan_account") {
        let malformed = |problem: String| OrgError::Malformed { what: "scan_account request", problem };
        let account = account
            .as_str()
            .filter(|a| is_account_id(a))
            .ok_or_else(|| malformed(format!("`scan_account` must be a 12-digit account id, not {account}")))?;
        let text = |key: &str| -> Result<Option<String>, OrgError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(malformed(format!("`{key}` must be a string, not {v}"))),
            }
        };
        let management_account = text("management_account")?;
        if let Some(m) = management_account.as_deref().filter(|m| !is_account_id(m)) {
            return Err(malformed(format!("`management_account` must be a 12-digit account id, not {m:?}")));
        }
        let root_managed_centrally = match object.get("root_managed_centrally") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => return Err(malformed(format!("`root_managed_centrally` must be true, false or null, not {v}"))),
        };
        return Ok(Some(OrgRequest::ScanAccount {
            account: account.to_owned(),
            account_name: text("account_name")?,
            management_account,
            root_managed_centrally,
        }));
    }
    if let Some(input) = object.get("org_digest") {
        let input: DigestInput = serde_json::from_value(input.clone())
            .map_err(|e| OrgError::Malformed { what: "org_digest request", problem: e.to_string() })?;
        return Ok(Some(OrgRequest::Digest(input)));
    }
    Ok(None)
}

/// The first step: every active account (paged), the management account, and whether the
/// organization manages root credentials centrally (`root_managed_centrally`: read here once, carried
/// by every `scan_account` request; `null` when the read failed, which the digest reports by name).
pub async fn list_accounts(deployment: &Deployment) -> Result<Value, OrgError> {
    let reader = deployment.organization().ok_or(OrgError::NotOrganization("list_accounts"))?;
    let (listed, root) = tokio::join!(
        async { tokio::try_join!(reader.list_accounts(), reader.management_account()) },
        root_managed_centrally(deployment)
    );
    let (accounts, management) = listed?;
    Ok(json!({
        "accounts": accounts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        "management_account": management,
        "root_managed_centrally": root,
    }))
}

/// Whether `RootCredentialsManagement` is on; `None` (logged) when it cannot be read: the
/// members' root credentials are then not judged, and the digest's own read names the failure.
async fn root_managed_centrally(deployment: &Deployment) -> Option<bool> {
    match deployment.root_access()?.features().await {
        Ok(f) => Some(f.credentials_management),
        Err(e) => {
            tracing::warn!(error = %e, "root access features not read: members' root credentials are not judged");
            None
        }
    }
}

/// One account's daily scan through its member role (the central account with the function's
/// own credentials): the same scan as single-account mode, published the same way.
pub async fn scan_account(
    deployment: &Deployment,
    account: &str,
    account_name: Option<String>,
    management_account: Option<&str>,
    root_managed_centrally: Option<bool>,
    opts: &RunOptions,
) -> Result<(Report, AccountResult), OrgError> {
    let reader = deployment.organization().ok_or(OrgError::NotOrganization("scan_account"))?;
    let management = match management_account {
        Some(m) => m == account,
        None => reader.management_account().await? == account,
    };
    let mut app = deployment.app_for(account, account_name, management, opts.now).await?;
    if let crate::runtime::AccountApp::Member(member) = &mut app
        && let Some(org) = member.organization.as_mut()
    {
        org.root_managed_centrally = root_managed_centrally;
    }
    let name = app.organization.as_ref().and_then(|o| o.account_name.clone());
    let report = Box::pin(app.scan(Some(account.to_owned()), opts))
        .await
        .map_err(|source| OrgError::Scan { account: account.to_owned(), source })?;
    let result = AccountResult::of(account, name, &report);
    Ok((report, result))
}

/// The last step: judges the organization-level checks, then publishes them (one message
/// each) and the organization digest. A map that failed is reported in the digest. A read the
/// judgement needed that failed (the structure, the root access features) is named in the
/// digest, which still goes out, and then fails the step.
pub async fn digest(
    deployment: &Deployment,
    listed: &[String],
    results: &[AccountResult],
    failure: Option<String>,
    root: Option<Result<RootFeatures, CallError>>,
    opts: &RunOptions,
) -> Result<Digested, OrgError> {
    let (digested, not_judged) = judge_and_publish(deployment, listed, results, failure, root, opts).await?;
    match not_judged {
        // The digest said so; the invocation still fails, so the run shows as failed.
        Some(e) => Err(OrgError::Call(e)),
        None => Ok(digested),
    }
}

/// [`digest`]'s work; the failed read, if any, is returned beside the digest (whose summary names it).
async fn judge_and_publish(
    deployment: &Deployment,
    listed: &[String],
    results: &[AccountResult],
    failure: Option<String>,
    root: Option<Result<RootFeatures, CallError>>,
    opts: &RunOptions,
) -> Result<(Digested, Option<CallError>), OrgError> {
    let reader = deployment.organization().ok_or(OrgError::NotOrganization("org_digest"))?;
    let region = &deployment.central.region;
    // One bulk read per run gives the SCP coverage of every member and the accounts' names
    // (the state machine keeps no names: every byte of its state counts); one more call says
    // whether root access is managed centrally (unless the caller read it already).
    let read_root = async {
        match (root, deployment.root_access()) {
            (Some(root), _) => root,
            (None, Some(r)) => r.features().await,
            (None, None) => Err(CallError {
                action: "iam:ListOrganizationsFeatures",
                target: "the organization".into(),
                message: "not in organization mode".into(),
            }),
        }
    };
    let (structure, root) = tokio::join!(reader.read_structure(None), read_root);
    let (mut org_findings, not_judged) = match &structure {
        Ok(org) => (crate::org::judge(org, &deployment.central.config, region, opts.now, "schedule", None), None),
        Err(e) => (Vec::new(), Some(e.clone())),
    };
    let reading_account = deployment
        .own_account()
        .map(str::to_owned)
        .or_else(|| structure.as_ref().ok().map(|o| o.management_account.clone()))
        .unwrap_or_else(|| "unknown".into());
    let scope = crate::finding::Scope {
        account: reading_account,
        region: region.clone(),
        trigger: "schedule".into(),
        now: opts.now,
    };
    let root_not_judged = match &root {
        Ok(features) => {
            org_findings.extend(crate::checks::root_access::check_root_access(features, &scope));
            None
        }
        Err(e) => Some(e.clone()),
    };
    crate::finding::sort_findings(&mut org_findings);
    let mut failures: Vec<String> = failure.into_iter().collect();
    failures.extend(not_judged.iter().map(|e| format!("SCP coverage not judged: {e}")));
    failures.extend(root_not_judged.iter().map(|e| format!("root access not judged: {e}")));
    let failure = (!failures.is_empty()).then(|| failures.join("; "));
    let names: HashMap<&str, &str> =
        structure.iter().flat_map(|o| &o.accounts).map(|a| (a.id.as_str(), a.name.as_str())).collect();
    let mut counted = results.to_vec();
    for r in counted.iter_mut().filter(|r| r.account_name.is_none()) {
        r.account_name = names.get(r.account.as_str()).filter(|n| !n.is_empty()).map(|n| (*n).to_owned());
    }
    // Each account's row counts its organization-level findings too (worst accounts first).
    let row: HashMap<String, usize> = counted.iter().enumerate().map(|(i, r)| (r.account.clone(), i)).collect();
    let mut outside = Vec::new();
    for f in &org_findings {
        match row.get(&f.account) {
            Some(&i) => counted[i].add(f),
            None => outside.push(f.clone()),
        }
    }
    let results = counted.as_slice();
    let summary = OrgSummary::new(listed, results, &outside, failure, opts.now, region);
    let mut out: Vec<Message> = org_findings.iter().map(Message::finding).collect();
    out.extend(messages(&summary, results, MAX_BODY_BYTES));
    let mut published = 0;
    if opts.publish {
        let sink = deployment.central.sink.as_ref().ok_or(OrgError::NotOrganization("publishing"))?;
        published = sink.publish(&out, opts.stop_by).await.map_err(OrgError::Publish)?;
    }
    Ok((Digested { summary, results: counted, org_findings, published }, not_judged.or(root_not_judged)))
}

/// What the digest step did.
#[derive(Debug)]
pub struct Digested {
    /// The organization digest's summary.
    pub summary: OrgSummary,
    /// Every account's result, its organization-level findings counted in.
    pub results: Vec<AccountResult>,
    /// The organization-level findings (SCP coverage), published one message each.
    pub org_findings: Vec<Finding>,
    /// Messages the topic accepted.
    pub published: usize,
}

/// The state machine's error as one line: `Error: Cause` (the cause names the failed account).
#[must_use]
pub fn failure_text(failure: &Value) -> String {
    let field = |k: &str| failure.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    match (field("Error"), field("Cause")) {
        (e, c) if e.is_empty() && c.is_empty() => failure.to_string(),
        (e, c) if c.is_empty() => e,
        (e, c) => format!("{e}: {c}"),
    }
}

/// `iam-sentinel scan --organization`: every step in this process, at most `max_concurrency`
/// accounts at once. A failed account is reported (in the digest and the result), never skipped.
pub async fn scan_organization(
    deployment: &Deployment,
    opts: &RunOptions,
    max_concurrency: usize,
    keep_findings: bool,
) -> Result<OrganizationScan, OrgError> {
    let reader = deployment.organization().ok_or(OrgError::NotOrganization("scan --organization"))?;
    let (listed, root) =
        tokio::join!(async { tokio::try_join!(reader.list_accounts(), reader.management_account()) }, async {
            match deployment.root_access() {
                Some(r) => Some(r.features().await),
                None => None,
            }
        });
    let (accounts, management) = listed?;
    let management = management.as_str();
    // Read once: each member's scan is told, and the digest judges the same answer.
    let centrally = root.as_ref().and_then(|r| r.as_ref().ok()).map(|f| f.credentials_management);
    let mut findings = Vec::new();
    let mut results: Vec<AccountResult> = futures_util::stream::iter(accounts.iter())
        .map(|a| async move {
            let name = Some(a.name.clone()).filter(|n| !n.is_empty());
            match scan_account(deployment, &a.id, name.clone(), Some(management), centrally, opts).await {
                Ok((report, result)) => (result, report.findings),
                Err(e) => (AccountResult::failed(&a.id, name, e.to_string()), Vec::new()),
            }
        })
        .buffer_unordered(max_concurrency.max(1))
        .map(|(result, account_findings)| {
            if keep_findings {
                findings.extend(account_findings);
            }
            result
        })
        .collect()
        .await;
    results.sort_by(|a, b| a.account.cmp(&b.account));
    let listed: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let failed: Vec<String> =
        results.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.account))).collect();
    let failure = (!failed.is_empty()).then(|| format!("{} account(s) failed: {}", failed.len(), failed.join("; ")));
    // A failed read is in the summary's failure line: the findings are still returned (and
    // printed), and the command fails on that line.
    let (digested, _) = judge_and_publish(deployment, &listed, &results, failure, root, opts).await?;
    findings.extend(digested.org_findings);
    crate::finding::sort_findings(&mut findings);
    Ok(OrganizationScan {
        summary: digested.summary,
        results: digested.results,
        findings,
        digest_published: digested.published,
    })
}

/// What `scan --organization` did.
#[derive(Debug)]
pub struct OrganizationScan {
    /// The organization digest's summary.
    pub summary: OrgSummary,
    /// One result per account, by account id.
    pub results: Vec<AccountResult>,
    /// Every account's findings (when kept) and the organization-level ones, most severe first.
    pub findings: Vec<Finding>,
    /// Messages of the digest (and organization-level findings) the topic accepted.
    pub digest_published: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_recognised_by_their_key_and_checked() {
        assert_eq!(request(&json!({"list_accounts": {}})).unwrap(), Some(OrgRequest::ListAccounts));
        assert_eq!(
            request(&json!({"scan_account": "111122223333", "management_account": "999988887777"})).unwrap(),
            Some(OrgRequest::ScanAccount {
                account: "111122223333".into(),
                account_name: None,
                management_account: Some("999988887777".into()),
                root_managed_centrally: None,
            })
        );
        let events = [json!({"source": "aws.iam", "account": "111122223333"}), json!([1, 2]), json!("x")];
        for event in events {
            assert_eq!(request(&event).unwrap(), None, "{event}");
        }
        let bad = [
            (json!({"scan_account": 111_122_223_333_u64}), "12-digit"),
            (json!({"scan_account": "11112222333"}), "12-digit"),
            (json!({"scan_account": "111122223333", "management_account": "root"}), "management_account"),
            (json!({"scan_account": "111122223333", "account_name": 7}), "account_name"),
            (json!({"scan_account": "111122223333", "root_managed_centrally": "yes"}), "root_managed_centrally"),
            (json!({"org_digest": {"results": []}}), "accounts"),
            (json!({"org_digest": {"accounts": [], "surprise": 1}}), "surprise"),
        ];
        for (payload, named) in bad {
            let e = request(&payload).unwrap_err().to_string();
            assert!(e.starts_with("malformed") && e.contains(named), "{payload}: {e}");
        }
    }

    #[test]
    fn the_state_machines_error_reads_as_one_line() {
        let failure = json!({"Error": "States.ExceedToleratedFailureThreshold", "Cause": "account 111122223333: sts:AssumeRole failed"});
        assert_eq!(
            failure_text(&failure),
            "States.ExceedToleratedFailureThreshold: account 111122223333: sts:AssumeRole failed"
        );
        assert_eq!(failure_text(&json!({"Error": "States.Timeout"})), "States.Timeout");
    }
}
