//! The AWS fetcher against a real moto server, through a counting/fault proxy.
// Test helpers: a failed setup should fail the test loudly.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use std::time::Duration;

use fault_proxy::{Fault, FaultProxy, Rule};
use secrets_injector_agent::aws::{Env, clients_with};
use secrets_injector_agent::failure::FetchFailure;
use secrets_injector_agent::fetch::{AwsFetcher, Fetch, FetchOutcome};
use secrets_injector_agent::value::SecretValue as Value;
use secrets_injector_shared::{AgentConfig, SecretRef, SecretSpec};
use secrets_injector_tests::Moto;

/// Seeded into every test; must never show up in a failure, error or Debug output.
const CANARY: &str = "CANARY-s3cr3t-7f3a9c";

fn env(endpoint: &str) -> Env {
    Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
    ])
}

async fn fetcher(cfg: &AgentConfig, endpoint: &str) -> AwsFetcher {
    AwsFetcher::new(clients_with(cfg, &env(endpoint)).await.unwrap())
}

fn spec(r: &str) -> SecretSpec {
    SecretSpec::new(SecretRef::parse(r).unwrap(), "f")
}

fn text(o: &FetchOutcome, index: usize) -> String {
    match o.get(index) {
        Some(Ok(Value::Text(s))) => s.clone(),
        other => panic!("no text value for #{index}: {other:?}; outcome {o:?}"),
    }
}

/// The failures of an outcome, in spec order.
fn failures(o: &FetchOutcome) -> Vec<&FetchFailure> {
    o.iter().filter_map(|r| r.as_ref().err()).collect()
}

fn failure(o: &FetchOutcome, index: usize) -> &FetchFailure {
    match o.get(index) {
        Some(Err(f)) => f,
        other => panic!("no failure for #{index}: {other:?}"),
    }
}

fn assert_no_canary(o: &FetchOutcome) {
    let dump = format!("{o:?}");
    assert!(!dump.contains(CANARY), "canary leaked into Debug: {dump}");
    for f in failures(o) {
        let all = format!("{} {} {:?}", f.message, f.code, f.hint);
        assert!(!all.contains(CANARY), "canary leaked into a failure: {all}");
    }
}

async fn start() -> (Moto, FaultProxy) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.port).await;
    (moto, proxy)
}

#[tokio::test(flavor = "multi_thread")]
async fn fetches_every_kind_of_value_with_the_fewest_calls() {
    let (moto, proxy) = start().await;
    let out = moto.boto3(&format!(
        r#"
sm = client('secretsmanager')
sm.create_secret(Name='app/json', SecretString=json.dumps({{'user': 'u', 'password': '{CANARY}'}}))
sm.create_secret(Name='app/plain', SecretString='plain-value')
sm.create_secret(Name='app/binary', SecretBinary=bytes([0, 159, 146, 150, 255]))
v1 = sm.create_secret(Name='app/rotated', SecretString='v1')['VersionId']
sm.put_secret_value(SecretId='app/rotated', SecretString='v2')
west = client('secretsmanager', 'eu-west-1').create_secret(Name='app/west', SecretString='from-west')['ARN']
ssm = client('ssm')
ssm.put_parameter(Name='/app/string', Value='s1', Type='String')
ssm.put_parameter(Name='/app/secure', Value='{CANARY}', Type='SecureString')
ssm.put_parameter(Name='/app/versioned', Value='p1', Type='String')
ssm.put_parameter(Name='/app/versioned', Value='p2', Type='String', Overwrite=True)
print(v1)
print(west)
"#
    ));
    let mut lines = out.lines();
    let v1 = lines.next().unwrap().to_string();
    let west_arn = lines.next().unwrap().to_string();

    let mut specs = vec![
        spec("app/json"),
        spec("app/plain"),
        spec("app/binary"),
        spec("app/rotated"),
        spec("app/rotated"),
        spec("app/rotated"),
        spec(&west_arn),
        spec("ssm:/app/string"),
        spec("ssm:/app/secure"),
        spec("ssm:/app/versioned"),
        spec("ssm:/app/versioned"),
        spec("app/json"),
    ];
    specs[4].version_id = Some(v1);
    specs[5].version_stage = Some("AWSPREVIOUS".into());
    specs[10].version_id = Some("1".into());
    let cfg = AgentConfig {
        secrets: specs.clone(),
        ..AgentConfig::default()
    };
    let f = fetcher(&cfg, &proxy.endpoint()).await;
    let o = f.fetch(&specs).await;
    assert!(failures(&o).is_empty(), "{:?}", failures(&o));
    assert!(text(&o, 0).contains(CANARY));
    assert_eq!(
        text(&o, 11),
        text(&o, 0),
        "deduplicated ref gives the same value"
    );
    assert_eq!(text(&o, 1), "plain-value");
    match &o[2] {
        Ok(Value::Binary(b)) => assert_eq!(b, &[0, 159, 146, 150, 255]),
        other => panic!("binary secret came back as {other:?}"),
    }
    assert_eq!(text(&o, 3), "v2");
    assert_eq!(text(&o, 4), "v1", "pinned version id");
    assert_eq!(text(&o, 5), "v1", "pinned stage AWSPREVIOUS");
    assert_eq!(text(&o, 6), "from-west", "region from the ARN");
    assert_eq!(text(&o, 7), "s1");
    assert_eq!(text(&o, 8), CANARY, "SecureString decrypted");
    assert_eq!(text(&o, 9), "p2");
    assert_eq!(text(&o, 10), "p1", "pinned SSM version");
    // us-east-1 batch (json, plain, binary, rotated; json once) + eu-west-1 batch.
    assert_eq!(proxy.count("BatchGetSecretValue"), 2);
    assert_eq!(proxy.count("GetSecretValue"), 2, "only the pinned ones");
    assert_eq!(proxy.count("GetParameters"), 1);
    assert_no_canary(&o);
}

#[tokio::test(flavor = "multi_thread")]
async fn call_counts_are_ceil_n_over_batch_size() {
    let (moto, proxy) = start().await;
    moto.boto3(
        r#"
sm = client('secretsmanager')
for i in range(45):
    sm.create_secret(Name=f's/{i:02}', SecretString=f'value-{i}')
ssm = client('ssm')
for i in range(25):
    ssm.put_parameter(Name=f'/p/{i:02}', Value=f'param-{i}', Type='SecureString')
"#,
    );
    let cfg = AgentConfig::default();
    let f = fetcher(&cfg, &proxy.endpoint()).await;
    for n in [1usize, 20, 21, 45] {
        proxy.reset_counts();
        let specs: Vec<_> = (0..n).map(|i| spec(&format!("s/{i:02}"))).collect();
        let o = f.fetch(&specs).await;
        assert!(failures(&o).is_empty(), "{:?}", failures(&o));
        for i in 0..n {
            assert_eq!(text(&o, i), format!("value-{i}"));
        }
        assert_eq!(proxy.count("BatchGetSecretValue"), n.div_ceil(20), "n={n}");
        assert_eq!(proxy.count("GetSecretValue"), 0, "n={n}");
    }
    for n in [1usize, 10, 11, 25] {
        proxy.reset_counts();
        let specs: Vec<_> = (0..n).map(|i| spec(&format!("ssm:/p/{i:02}"))).collect();
        let o = f.fetch(&specs).await;
        assert!(failures(&o).is_empty(), "{:?}", failures(&o));
        for i in 0..n {
            assert_eq!(text(&o, i), format!("param-{i}"));
        }
        assert_eq!(proxy.count("GetParameters"), n.div_ceil(10), "n={n}");
    }
    proxy.reset_counts();
    let mut specs: Vec<_> = (0..23).map(|i| spec(&format!("s/{i:02}"))).collect();
    for s in specs.iter_mut().take(3) {
        s.version_stage = Some("AWSCURRENT".into());
    }
    let o = f.fetch(&specs).await;
    assert!(failures(&o).is_empty(), "{:?}", failures(&o));
    assert_eq!(
        proxy.count("GetSecretValue"),
        3,
        "one call per pinned secret"
    );
    assert_eq!(
        proxy.count("BatchGetSecretValue"),
        1,
        "20 unpinned in one batch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_secret_in_a_batch_fails_alone_with_a_hint() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='ok', SecretString='{CANARY}')\n\
         client('ssm').put_parameter(Name='/ok', Value='{CANARY}', Type='SecureString')"
    ));
    let specs = vec![
        spec("ok"),
        spec("missing/one"),
        spec("ssm:/ok"),
        spec("ssm:/missing"),
    ];
    let cfg = AgentConfig::default();
    let o = fetcher(&cfg, &proxy.endpoint()).await.fetch(&specs).await;
    assert_eq!(text(&o, 0), CANARY);
    assert_eq!(text(&o, 2), CANARY);
    assert_eq!(failures(&o).len(), 2, "{:?}", failures(&o));
    let sm = failure(&o, 1);
    assert_eq!(sm.code, "ResourceNotFoundException");
    assert_eq!(sm.secret, "missing/one");
    assert!(!sm.is_transient());
    assert!(sm.hint.as_deref().unwrap().contains("us-east-1"), "{sm:?}");
    let p = failure(&o, 3);
    assert_eq!(p.code, "ParameterNotFound");
    assert_eq!(p.secret, "ssm:/missing");
    assert!(!p.is_transient());
    assert_no_canary(&o);
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_on_batch_falls_back_to_get_secret_value_and_remembers() {
    let (moto, proxy) = start().await;
    moto.boto3(
        "sm = client('secretsmanager')\nfor i in range(3):\n    sm.create_secret(Name=f'd/{i}', SecretString=f'v{i}')",
    );
    let specs: Vec<_> = (0..3).map(|i| spec(&format!("d/{i}"))).collect();
    proxy.set_rules(vec![Rule {
        action: Some("BatchGetSecretValue"),
        region: None,
        fault: Fault::Error(400, "AccessDeniedException"),
    }]);
    let f = fetcher(&AgentConfig::default(), &proxy.endpoint()).await;
    for round in 0..2 {
        let o = f.fetch(&specs).await;
        assert!(failures(&o).is_empty(), "{:?}", failures(&o));
        for i in 0..3 {
            assert_eq!(text(&o, i), format!("v{i}"));
        }
        assert_eq!(proxy.count("BatchGetSecretValue"), 1, "round {round}");
        assert_eq!(proxy.count("GetSecretValue"), 3 * (round + 1));
    }
    assert!(f.batch_denied());

    proxy.set_rules(vec![Rule {
        action: None,
        region: None,
        fault: Fault::Error(400, "AccessDeniedException"),
    }]);
    let o = f.fetch(&specs[..1]).await;
    let fail = failure(&o, 0);
    assert_eq!(fail.code, "AccessDeniedException");
    assert!(!fail.is_transient());
    let hint = fail.hint.as_deref().unwrap();
    assert!(
        hint.contains(
            "secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:*:secret:d/0-*"
        ),
        "{hint}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_transient_and_a_later_fetch_succeeds() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='t', SecretString='{CANARY}')\n\
         client('ssm').put_parameter(Name='/t', Value='{CANARY}', Type='SecureString')"
    ));
    let specs = vec![spec("t"), spec("ssm:/t")];
    let f = fetcher(&AgentConfig::default(), &proxy.endpoint()).await;
    let faults = [
        (
            Fault::Error(400, "ThrottlingException"),
            "ThrottlingException",
        ),
        (
            Fault::Error(500, "InternalServiceError"),
            "InternalServiceError",
        ),
        (
            Fault::Error(503, "ServiceUnavailable"),
            "ServiceUnavailable",
        ),
        // Beyond the 10 s attempt timeout.
        (Fault::Slow(Duration::from_secs(15)), "Timeout"),
        (Fault::Reset, "NetworkError"),
    ];
    for (fault, code) in faults {
        proxy.set_rules(vec![Rule {
            action: None,
            region: None,
            fault: fault.clone(),
        }]);
        let o = f.fetch(&specs).await;
        assert!(o.iter().all(Result::is_err), "{fault:?}: {o:?}");
        assert_eq!(failures(&o).len(), 2, "{fault:?}");
        for fail in failures(&o) {
            assert!(fail.is_transient(), "{fault:?} → {fail:?}");
            assert_eq!(fail.code, code, "{fault:?} → {fail:?}");
        }
        assert_no_canary(&o);
        proxy.set_rules(Vec::new());
        let o = f.fetch(&specs).await;
        assert!(failures(&o).is_empty(), "after {fault:?}: {o:?}");
        assert_eq!(text(&o, 0), CANARY);
        assert_eq!(text(&o, 1), CANARY);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn primary_region_5xx_reads_from_the_failover_region() {
    let (moto, proxy) = start().await;
    moto.boto3(
        r#"
for region in ['us-east-1', 'us-west-2']:
    client('secretsmanager', region).create_secret(Name='fo', SecretString=f'from-{region}')
    client('ssm', region).put_parameter(Name='/fo', Value=f'param-{region}', Type='String')
client('secretsmanager', 'us-west-2').create_secret(Name='fo-replica', SecretString='replica')
"#,
    );
    let mut specs = vec![spec("fo"), spec("ssm:/fo"), spec("fo")];
    specs[2].failover = Some(SecretRef::parse("fo-replica").unwrap());
    let cfg = AgentConfig {
        failover_region: Some("us-west-2".into()),
        ..AgentConfig::default()
    };
    let f = fetcher(&cfg, &proxy.endpoint()).await;
    let o = f.fetch(&specs).await;
    assert_eq!(text(&o, 0), "from-us-east-1", "healthy primary is used");

    proxy.set_rules(vec![Rule {
        action: None,
        region: Some("us-east-1"),
        fault: Fault::Error(503, "ServiceUnavailable"),
    }]);
    proxy.reset_counts();
    let o = f.fetch(&specs).await;
    assert!(failures(&o).is_empty(), "{:?}", failures(&o));
    assert_eq!(text(&o, 0), "from-us-west-2");
    assert_eq!(text(&o, 1), "param-us-west-2");
    assert_eq!(text(&o, 2), "replica", "the failover object is read");
    // One failed primary call each, then the failover reads batched like the primary.
    assert_eq!(
        proxy.count("BatchGetSecretValue"),
        2,
        "1 primary + 1 failover"
    );
    assert_eq!(proxy.count("GetSecretValue"), 0);
    assert_eq!(proxy.count("GetParameters"), 2, "1 primary + 1 failover");

    // Permanent errors do not fail over.
    proxy.set_rules(vec![Rule {
        action: None,
        region: Some("us-east-1"),
        fault: Fault::Error(400, "AccessDeniedException"),
    }]);
    let o = f.fetch(&specs[..1]).await;
    assert_eq!(failures(&o).len(), 1, "{o:?}");
    assert_eq!(failure(&o, 0).code, "AccessDeniedException");
}

/// The whole init loop (`run::run`) over the real fetcher: throttling, resets
/// and 500s while the pod starts are retried until they clear, well inside
/// the startup timeout; the files then hold the values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_rides_out_transient_faults_through_the_run_loop() {
    use secrets_injector_agent::run::{Exit, RunSettings, run};
    use secrets_injector_shared::Mode;
    use tokio_util::sync::CancellationToken;

    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        "client('secretsmanager').create_secret(Name='app/db', SecretString='{CANARY}')\n\
         client('ssm').put_parameter(Name='/app/key', Value='k1', Type='SecureString')\n"
    ));
    let mut specs = vec![spec("app/db"), spec("ssm:/app/key")];
    specs[1].path = "key".into();
    let cfg = AgentConfig {
        mode: Mode::Init,
        secrets: specs,
        startup_timeout_secs: 60,
        ..AgentConfig::default()
    };
    let f = fetcher(&cfg, &proxy.endpoint()).await;
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mnt");
    std::fs::create_dir_all(&mount).unwrap();
    let mut s = RunSettings::new(&cfg, mount.clone(), dir.path().join("termination-log"));
    s.backoff_initial = Duration::from_millis(50);
    s.backoff_cap = Duration::from_millis(200);

    for fault in [
        Fault::Error(400, "ThrottlingException"),
        Fault::Error(500, "InternalServiceError"),
        Fault::Reset,
    ] {
        let _ = std::fs::remove_dir_all(&mount);
        std::fs::create_dir_all(&mount).unwrap();
        proxy.set_rules(vec![Rule {
            action: None,
            region: None,
            fault: fault.clone(),
        }]);
        proxy.reset_counts();
        let task = {
            let (cfg, f, s) = (cfg.clone(), &f, s.clone());
            async move { run(&cfg, f, &s, CancellationToken::new()).await }
        };
        let clear = async {
            // Let a few attempts fail, then the fault clears.
            while proxy.count("BatchGetSecretValue") < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            proxy.set_rules(vec![]);
        };
        let (exit, ()) =
            tokio::time::timeout(Duration::from_secs(60), async { tokio::join!(task, clear) })
                .await
                .unwrap_or_else(|_| panic!("{fault:?}: init did not finish"));
        assert_eq!(exit, Exit::Done, "{fault:?}");
        assert_eq!(
            std::fs::read_to_string(mount.join("f")).unwrap(),
            CANARY,
            "{fault:?}"
        );
        assert_eq!(std::fs::read_to_string(mount.join("key")).unwrap(), "k1");
        assert!(
            !dir.path().join("termination-log").exists(),
            "{fault:?}: no termination message on success"
        );
    }
}
