//! `iam-sentinel`: the Lambda function when started by the Lambda runtime, the CLI otherwise.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
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
}
