//! `iam-sentinel`: the Lambda function when started by the Lambda runtime, the CLI otherwise.

use std::process::ExitCode;

/// Stack for every runtime thread: the SDK's typed response readers (Security Hub's
/// `GetFindings` above all) nest deeply, and tokio's worker default of 2 MiB is not enough.
const THREAD_STACK: usize = 8 * 1024 * 1024;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(THREAD_STACK).build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("iam-sentinel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            // Boxed: the SDK futures are deep enough to exceed the default layout query depth.
            match Box::pin(iam_sentinel::lambda::run()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("iam-sentinel: {e}");
                    ExitCode::FAILURE
                }
            }
        } else {
            Box::pin(iam_sentinel::cli::run()).await
        }
    })
}
