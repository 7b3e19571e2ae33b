//! What moto cannot show: real AWS's per-id `Errors` and `NextToken` pages in
//! `BatchGetSecretValue`, faked at the SDK boundary with `aws-smithy-mocks`.
// Test helpers: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

use aws_sdk_secretsmanager::operation::batch_get_secret_value::BatchGetSecretValueOutput;
use aws_sdk_secretsmanager::types::{ApiErrorType, SecretValueEntry};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::Blob;
use secrets_injector_agent::aws::Clients;
use secrets_injector_agent::fetch::{AwsFetcher, Fetch};
use secrets_injector_agent::value::SecretValue as Value;
use secrets_injector_shared::{SecretRef, SecretSpec};

const CANARY: &str = "CANARY-mocked-91b2";

#[tokio::test]
async fn per_id_errors_and_pages_of_one_batch() {
    let page1 = mock!(aws_sdk_secretsmanager::Client::batch_get_secret_value)
        .match_requests(|r| r.next_token().is_none() && r.secret_id_list().len() == 4)
        .then_output(|| {
            BatchGetSecretValueOutput::builder()
                .secret_values(
                    SecretValueEntry::builder()
                        .name("a")
                        .arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf")
                        .secret_string(CANARY)
                        .build(),
                )
                .errors(
                    ApiErrorType::builder()
                        .secret_id("b")
                        .error_code("ResourceNotFoundException")
                        .message("Secrets Manager can't find the specified secret.")
                        .build(),
                )
                .errors(
                    ApiErrorType::builder()
                        .secret_id("d")
                        .error_code("AccessDeniedException")
                        .message("not authorized to perform secretsmanager:GetSecretValue")
                        .build(),
                )
                .next_token("page-2")
                .build()
        });
    let page2 = mock!(aws_sdk_secretsmanager::Client::batch_get_secret_value)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            BatchGetSecretValueOutput::builder()
                .secret_values(
                    SecretValueEntry::builder()
                        .name("c")
                        .secret_binary(Blob::new(vec![0u8, 1, 2]))
                        .build(),
                )
                .build()
        });
    let sm = mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, [&page1, &page2]);
    let ssm = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::Config::builder().build());
    let f = AwsFetcher::new(Clients::from_parts("us-east-1", None, sm, ssm));
    let specs: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|r| SecretSpec::new(SecretRef::parse(r).unwrap(), "f"))
        .collect();
    let o = f.fetch(&specs).await;
    assert_eq!(page1.num_calls(), 1);
    assert_eq!(page2.num_calls(), 1);
    assert_eq!(o.iter().filter(|r| r.is_ok()).count(), 2, "{o:?}");
    match (&o[0], &o[2]) {
        (Ok(Value::Text(s)), Ok(Value::Binary(b))) => {
            assert_eq!(s, CANARY);
            assert_eq!(b, &[0, 1, 2]);
        }
        other => panic!("unexpected {other:?}"),
    }
    let b = o[1].as_ref().unwrap_err();
    assert_eq!(b.code, "ResourceNotFoundException");
    assert!(!b.is_transient());
    let d = o[3].as_ref().unwrap_err();
    assert_eq!(d.code, "AccessDeniedException");
    assert!(!d.is_transient());
    assert!(
        d.hint.as_deref().unwrap().contains(
            "secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:*:secret:d-*"
        ),
        "{d:?}"
    );
    assert!(!f.batch_denied(), "per-id denial is not a batch denial");
    assert!(!format!("{o:?}").contains(CANARY));
}
