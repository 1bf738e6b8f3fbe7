//! Builds the production [`App`] from configuration: SDK clients are created once and reused.

use crate::app::App;
use crate::aws::approvals::SecretApprovals;
use crate::aws::iam::IamDirectory;
use crate::aws::securityhub::SecurityHubStore;
use crate::aws::sns::SnsSink;
use crate::aws::{CallCounter, Endpoint, load_sdk_config};
use crate::config::Config;

/// The app wired to AWS.
pub type AwsApp = App<IamDirectory, SecretApprovals, SnsSink>;

/// Builds the AWS-backed app; every client counts its calls in the returned counter.
pub async fn build_app(config: Config, endpoint: &Endpoint) -> (AwsApp, CallCounter) {
    build_app_with(config, &load_sdk_config(endpoint).await)
}

/// Builds the AWS-backed app from an existing SDK configuration.
#[must_use]
pub fn build_app_with(config: Config, sdk: &aws_config::SdkConfig) -> (AwsApp, CallCounter) {
    let sdk = sdk.clone();
    let counter = CallCounter::default();
    let iam =
        aws_sdk_iam::Client::from_conf(aws_sdk_iam::config::Builder::from(&sdk).interceptor(counter.clone()).build());
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).interceptor(counter.clone()).build(),
    );
    let sink = config.findings_topic_arn.clone().map(|topic| {
        SnsSink::new(
            aws_sdk_sns::Client::from_conf(
                aws_sdk_sns::config::Builder::from(&sdk).interceptor(counter.clone()).build(),
            ),
            topic,
        )
    });
    let key_rotation = Some(Box::new(crate::aws::rotation::AwsKeyRotation::new(
        iam.clone(),
        secrets.clone(),
        config.rotation.kms_key_id.clone(),
    )) as Box<dyn crate::ports::KeyRotation>);
    let approvals = SecretApprovals::new(secrets, config.approvals_secret_id.clone());
    let region = sdk.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
    let findings_store = config.security_hub.then(|| {
        let client = aws_sdk_securityhub::Client::from_conf(
            aws_sdk_securityhub::config::Builder::from(&sdk).interceptor(counter.clone()).build(),
        );
        Box::new(SecurityHubStore::new(client, region.clone())) as Box<dyn crate::ports::FindingsStore>
    });
    (
        App {
            findings_store,
            config,
            directory: IamDirectory::new(iam),
            approvals,
            sink,
            region,
            key_rotation,
            organization: None,
        },
        counter,
    )
}
