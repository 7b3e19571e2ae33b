//! What moto cannot show for selectors: real AWS matches name prefixes
//! case-insensitively (the agent keeps exact prefixes only), and a filtered
//! batch can carry per-secret errors (the selection fails, all or nothing).
#![allow(clippy::unwrap_used, clippy::panic)]

use aws_sdk_secretsmanager::operation::batch_get_secret_value::BatchGetSecretValueOutput;
use aws_sdk_secretsmanager::types::{ApiErrorType, SecretValueEntry};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use secrets_injector_agent::aws::Clients;
use secrets_injector_agent::fetch::{AwsFetcher, Fetch};
use secrets_injector_shared::Format;
use secrets_injector_shared::select::{SelectionSpec, Selector};

const CANARY: &str = "CANARY-sel-mocked-11d";

fn fetcher(sm: aws_sdk_secretsmanager::Client) -> AwsFetcher {
    let ssm = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::Config::builder().build());
    AwsFetcher::new(Clients::from_parts("us-east-1", None, sm, ssm))
}

fn prefix() -> SelectionSpec {
    SelectionSpec {
        select: Selector::parse("prod/orders/*").unwrap(),
        path: "orders".into(),
        format: Format::Raw,
    }
}

fn entry(name: &str, value: &str) -> SecretValueEntry {
    SecretValueEntry::builder()
        .name(name)
        .secret_string(value)
        .build()
}

#[tokio::test]
async fn case_insensitive_matches_from_aws_are_dropped() {
    let page = mock!(aws_sdk_secretsmanager::Client::batch_get_secret_value)
        .match_requests(|r| {
            r.secret_id_list().is_empty()
                && r.max_results() == Some(20)
                && r.filters()[0].values() == ["prod/orders/"]
        })
        .then_output(|| {
            BatchGetSecretValueOutput::builder()
                .secret_values(entry("prod/orders/a", "A"))
                .secret_values(entry("Prod/Orders/b", CANARY))
                .secret_values(entry("prod/ordersX", CANARY))
                .build()
        });
    let sm = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&page]);
    let out = fetcher(sm).select(&[prefix()]).await;
    let found = out[0].as_ref().unwrap();
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a"]);
    assert_eq!(page.num_calls(), 1);
}

#[tokio::test]
async fn a_per_secret_error_fails_the_whole_selection_without_values() {
    let page = mock!(aws_sdk_secretsmanager::Client::batch_get_secret_value).then_output(|| {
        BatchGetSecretValueOutput::builder()
            .secret_values(entry("prod/orders/a", CANARY))
            .errors(
                ApiErrorType::builder()
                    .secret_id("prod/orders/b")
                    .error_code("DecryptionFailure")
                    .message("can't decrypt with the KMS key")
                    .build(),
            )
            .build()
    });
    let sm = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&page]);
    let out = fetcher(sm).select(&[prefix()]).await;
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(e.code, "DecryptionFailure");
    assert!(e.message.contains("prod/orders/b"), "{e:?}");
    assert!(
        e.hint
            .as_deref()
            .unwrap_or_default()
            .contains("kms:Decrypt"),
        "{e:?}"
    );
    assert!(!format!("{out:?}").contains(CANARY));
}
