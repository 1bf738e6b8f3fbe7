//! `undo` and `history`: the action journal of the state table, read from the command line.

use std::process::ExitCode;

use chrono::Utc;

use crate::aws::CallCounter;
use crate::output::Format;
use crate::runtime::AwsApp;

use super::{Common, Failed, fail};

/// The journal and the account to read it for: `--account`, or the caller's own (one
/// `sts:GetCallerIdentity`, which also names who acts, for the undo's journal entry).
async fn journal_access(
    account: Option<String>,
    common: &Common,
) -> Result<(AwsApp, CallCounter, String, String), Failed> {
    let (config, sdk, _) = common.sdk(false).await?;
    let (app, counter) = crate::runtime::build_app_with(config, &sdk);
    if app.state.is_none() {
        return Err(Failed::config(
            "STATE_TABLE is not set: the action journal lives in the state table (the stack's StateTableName output)"
                .into(),
        ));
    }
    let sts =
        aws_sdk_sts::Client::from_conf(aws_sdk_sts::config::Builder::from(&sdk).interceptor(counter.clone()).build());
    let identity = sts.get_caller_identity().send().await.map_err(|e| Failed {
        code: 1,
        message: crate::aws::call_error("sts:GetCallerIdentity", "your credentials", &e).to_string(),
    })?;
    let caller = identity.arn().unwrap_or("unknown caller").to_owned();
    let account = match account {
        Some(a) if crate::event::is_account_id(&a) => a,
        Some(a) => return Err(Failed::config(format!("--account {a:?} is not a 12-digit account id"))),
        None => identity.account().unwrap_or_default().to_owned(),
    };
    Ok((app, counter, account, caller))
}

/// Exit status: 0 undone (or would be, with --dry-run), 1 refused or a call failed, 2 the
/// journal holds no such action, or bad configuration.
pub(super) async fn undo(
    finding_id: &str,
    from: Option<&std::path::Path>,
    account: Option<String>,
    common: &Common,
) -> ExitCode {
    use crate::remediate::undo::{UndoError, apply, find_record};
    use crate::state::journal::{JournalEntry, Refusal, check_pointer, to_undo};
    let (app, counter, account, caller) = match journal_access(account, common).await {
        Ok(access) => access,
        Err(f) => return fail(f.code, &f.message),
    };
    let Some(state) = app.state.as_ref() else { return fail(2, "STATE_TABLE is not set") };
    let entries = match state.actions_of(&account, finding_id).await {
        Ok(e) => e,
        Err(e) => return fail(1, &e.to_string()),
    };
    let entry = match to_undo(&entries, &account, finding_id) {
        Ok(entry) => entry.clone(),
        Err(e @ Refusal::NoAction { .. }) => return fail(2, &e.to_string()),
        Err(e) => return fail(1, &e.to_string()),
    };
    if let Some(path) = from {
        // The file is a pointer: its record must be the journal's, field for field.
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(2, &format!("cannot read {}: {e}", path.display())),
        };
        let checked = find_record(&text, finding_id)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|record| check_pointer(&record, &entry.action).map_err(|e| format!("{}: {e}", path.display())));
        if let Err(e) = checked {
            return fail(1, &e);
        }
    }
    let rotation = app.key_rotation.as_deref();
    let now = Utc::now();
    let result = apply(&app.directory, &app.approvals, rotation, &app.config, &entry.action, now, common.dry_run).await;
    let journaled = match &result {
        Ok(_) if !common.dry_run => state.journal(&JournalEntry::undone(&entry, now, &caller)).await.err(),
        _ => None,
    };
    let calls = counter.snapshot().total_calls();
    match result {
        Ok(done) => {
            println!(
                "{done} (recorded {} by {} on {}, trigger {})",
                entry.at.format("%Y-%m-%d %H:%M UTC"),
                entry.by,
                entry.account,
                entry.trigger
            );
            eprintln!("undo: {calls} AWS call(s)");
            match journaled {
                Some(e) => fail(1, &format!("undone, but the undo could not be journaled: {e}")),
                None => ExitCode::SUCCESS,
            }
        }
        Err(e @ (UndoError::Refused(_) | UndoError::Call(_))) => fail(1, &e.to_string()),
        Err(e @ UndoError::NoRecord(_)) => fail(2, &e.to_string()),
    }
}

/// Exit status: 0 listed (even if empty), 1 the journal could not be read, 2 bad configuration.
pub(super) async fn history(user: &str, account: Option<String>, common: &Common) -> ExitCode {
    let (app, _, account, _) = match journal_access(account, common).await {
        Ok(access) => access,
        Err(f) => return fail(f.code, &f.message),
    };
    let Some(state) = app.state.as_ref() else { return fail(2, "STATE_TABLE is not set") };
    let entries = match state.history(&account, user).await {
        Ok(e) => e,
        Err(e) => return fail(1, &e.to_string()),
    };
    if matches!(common.format, Format::Json) {
        for e in &entries {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
        }
        return ExitCode::SUCCESS;
    }
    println!("History of {user} in account {account}: {} action(s)", entries.len());
    for e in &entries {
        let kind = match e.kind {
            crate::state::journal::EntryKind::Applied => "applied",
            crate::state::journal::EntryKind::Undone => "undone",
        };
        println!(
            "{}  {kind:<7}  {} -> {}  finding {}  ({}, by {})",
            e.at.format("%Y-%m-%d %H:%M:%S UTC"),
            e.before,
            e.after,
            e.finding_id,
            e.trigger,
            e.by
        );
    }
    ExitCode::SUCCESS
}
