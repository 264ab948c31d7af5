//! Building the SQS client, creating queues (`setup`) and finding a queue's dead-letter queue.

use super::{sqs_error, SqsConfig};
use crate::QueueError;
use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use std::time::Duration;

/// An SQS client from the standard AWS configuration chain (environment, profile, instance
/// role; region from `AWS_REGION`/`AWS_DEFAULT_REGION` or the profile), HTTPS through rustls
/// with the *ring* crypto provider (already in the build for the object store; aws-lc would add
/// a long C build).
///
/// Endpoint: `endpoint_url` when given, else `AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`
/// (aws-config reads both, service-specific first), else the AWS endpoint for the region.
/// `region` overrides the configured region (compatible servers such as moto accept any).
pub async fn client(endpoint_url: Option<&str>, region: Option<&str>) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let shared = loader.load().await;
    let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    Client::from_conf(builder.build())
}

/// The URLs [`setup`] created (or found).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    /// The source queue.
    pub queue_url: String,
    /// Its dead-letter queue (`{name}-dlq`).
    pub dlq_url: String,
}

/// Creates (idempotently: CreateQueue returns the existing URL when the attributes match) the
/// standard queue `queue_name` and its dead-letter queue `{queue_name}-dlq`, with the source's
/// RedrivePolicy `{"deadLetterTargetArn": <dlq arn>, "maxReceiveCount": max_receives}` and its
/// default visibility timeout (whole seconds, 0–43 200). The DLQ keeps messages 14 days (the
/// maximum) so dead jobs are not silently lost.
///
/// Sources: Amazon SQS Developer Guide, "Using dead-letter queues in Amazon SQS" (redrive policy,
/// maxReceiveCount 1–1000) and "Amazon SQS visibility timeout".
///
/// For the `retainwise queue setup` command. Errors: [`QueueError::Sqs`].
pub async fn setup(
    client: &Client,
    queue_name: &str,
    visibility_timeout: Duration,
    max_receives: u32,
) -> Result<QueueUrls, QueueError> {
    let dlq_name = format!("{queue_name}-dlq");
    let dlq_url = client
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    let policy = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        // SQS wants the count as a string in the policy document.
        "maxReceiveCount": max_receives.clamp(1, 1000).to_string(),
    });
    let queue_url = client
        .create_queue()
        .queue_name(queue_name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            super::whole_seconds(visibility_timeout).to_string(),
        )
        .send()
        .await
        .map_err(|e| sqs_error("CreateQueue", e))?
        .queue_url
        .unwrap_or_default();
    Ok(QueueUrls { queue_url, dlq_url })
}

/// The DLQ of `config.queue_url`: `config.dlq_url` when set, else the queue named by the
/// `deadLetterTargetArn` of its RedrivePolicy (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub(super) async fn dlq_url(client: &Client, config: &SqsConfig) -> Result<String, QueueError> {
    if let Some(url) = &config.dlq_url {
        return Ok(url.clone());
    }
    let policy = client
        .get_queue_attributes()
        .queue_url(&config.queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", e))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| no_dlq(config, "it has no RedrivePolicy"))?;
    let arn = serde_json::from_str::<serde_json::Value>(&policy)
        .ok()
        .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
        .ok_or_else(|| no_dlq(config, "its RedrivePolicy has no deadLetterTargetArn"))?;
    let mut parts = arn.rsplit(':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(no_dlq(config, "the deadLetterTargetArn is not an SQS ARN"));
    };
    client
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueUrl", e))?
        .queue_url
        .ok_or_else(|| no_dlq(config, "GetQueueUrl returned no URL"))
}

fn no_dlq(config: &SqsConfig, why: &str) -> QueueError {
    QueueError::Sqs {
        operation: "GetQueueAttributes",
        message: format!(
            "cannot find the dead-letter queue of {}: {why}; set SqsConfig::dlq_url or run setup",
            config.queue_url
        ),
    }
}
