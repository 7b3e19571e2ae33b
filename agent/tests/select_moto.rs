//! Selections (§3c) against a real moto server through the counting proxy:
//! pages and call counts, exact tag pairs, hostile names, the cap, sidecar
//! refresh, templates over selections, IAM hints; a canary never leaks.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "common/fault_proxy.rs"]
mod fault_proxy;

use std::path::Path;
use std::time::Duration;

use fault_proxy::{Fault, FaultProxy, Rule};
use secrets_injector_agent::aws::{Env, clients_with};
use secrets_injector_agent::fetch::{AwsFetcher, Fetch, Selected};
use secrets_injector_agent::run::{Exit, RunSettings, run};
use secrets_injector_shared::select::{MAX_SELECTED, SelectionSpec, Selector};
use secrets_injector_shared::{AgentConfig, Format, Mode, TemplateSpec};
use secrets_injector_tests::Moto;
use tokio_util::sync::CancellationToken;

const CANARY: &str = "CANARY-select-4be07";
const WAIT: Duration = Duration::from_secs(60);

fn env(endpoint: &str) -> Env {
    Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
    ])
}

async fn start() -> (Moto, FaultProxy) {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.port).await;
    (moto, proxy)
}

async fn fetcher(proxy: &FaultProxy) -> AwsFetcher {
    AwsFetcher::new(
        clients_with(&AgentConfig::default(), &env(&proxy.endpoint()))
            .await
            .unwrap(),
    )
}

fn selection(sel: &str, dir: &str) -> SelectionSpec {
    SelectionSpec {
        select: Selector::parse(sel).unwrap(),
        path: dir.into(),
        format: Format::Raw,
    }
}

/// Names and values of one selection, sorted; panics with the failure (canary-checked).
fn names_values(r: &Selected) -> Vec<(String, String)> {
    let found = match r {
        Ok(found) => found,
        Err(f) => panic!("selection failed: {f:?}"),
    };
    let mut v: Vec<(String, String)> = found
        .iter()
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v.bytes()).into_owned()))
        .collect();
    v.sort();
    v
}

fn assert_no_canary(s: &str) {
    assert!(!s.contains(CANARY), "canary leaked: {s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prefix_of_45_secrets_takes_three_batch_calls_and_exact_prefixes_only() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        r#"
sm = client('secretsmanager')
for i in range(45):
    sm.create_secret(Name=f'prod/orders/s{{i:02}}', SecretString=f'v{{i}}')
sm.create_secret(Name='prod/orders-archive/x', SecretString='{CANARY}')
sm.create_secret(Name='prod/other/y', SecretString='{CANARY}')
"#
    ));
    let f = fetcher(&proxy).await;
    proxy.reset_counts();
    let out = f.select(&[selection("prod/orders/*", "orders")]).await;
    let got = names_values(&out[0]);
    assert_eq!(got.len(), 45);
    assert_eq!(got[0], ("s00".to_string(), "v0".to_string()));
    assert_eq!(got[44], ("s44".to_string(), "v44".to_string()));
    assert_eq!(proxy.count("BatchGetSecretValue"), 3, "⌈45/20⌉ pages");
    assert_eq!(proxy.total(), 3, "no other call");
    assert!(
        proxy
            .last_body("BatchGetSecretValue")
            .unwrap()
            .contains("\"MaxResults\":20")
    );
    assert_no_canary(&format!("{out:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssm_path_is_read_recursively_decrypted_ten_a_page() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        r#"
ssm = client('ssm')
for i in range(11):
    ssm.put_parameter(Name=f'/prod/orders/p{{i:02}}', Value=f'v{{i}}', Type='String')
ssm.put_parameter(Name='/prod/orders/db/password', Value='{CANARY}', Type='SecureString')
ssm.put_parameter(Name='/prod/orders/db/deep/er', Value='deep', Type='String')
ssm.put_parameter(Name='/prod/orders-x/decoy', Value='no', Type='String')
ssm.put_parameter(Name='/prod/other', Value='no', Type='String')
"#
    ));
    let f = fetcher(&proxy).await;
    proxy.reset_counts();
    let out = f.select(&[selection("ssm:/prod/orders/*", "orders")]).await;
    let got = names_values(&out[0]);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 13, "{names:?}");
    assert!(
        names.contains(&"db/deep/er") && names.contains(&"p10"),
        "{names:?}"
    );
    let pw = got.iter().find(|(n, _)| n == "db/password").unwrap();
    assert_eq!(pw.1, CANARY, "SecureString decrypted");
    assert_eq!(proxy.count("GetParametersByPath"), 2, "⌈13/10⌉ pages");
    assert_eq!(proxy.total(), 2);
    let body = proxy.last_body("GetParametersByPath").unwrap();
    assert!(
        body.contains("\"Recursive\":true") && body.contains("\"WithDecryption\":true"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_match_key_and_value_together() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        r#"
sm = client('secretsmanager')
def mk(name, tags, value='v'):
    sm.create_secret(Name=name, SecretString=value, Tags=[{{'Key': k, 'Value': v}} for k, v in tags.items()])
mk('orders/api-key', {{'team': 'orders', 'env': 'prod'}}, 'the-key')
mk('orders/db', {{'team': 'orders', 'env': 'prod', 'extra': 'x'}}, 'the-db')
mk('decoy/key-only', {{'team': 'payments', 'owner': 'orders', 'env': 'prod'}}, '{CANARY}')
mk('decoy/value-only', {{'owner': 'orders', 'env': 'prod'}}, '{CANARY}')
mk('decoy/other-env', {{'team': 'orders', 'env': 'dev'}}, '{CANARY}')
mk('decoy/swapped', {{'team': 'prod', 'env': 'orders'}}, '{CANARY}')
"#
    ));
    let f = fetcher(&proxy).await;
    proxy.reset_counts();
    let out = f
        .select(&[selection("tag:team=orders,env=prod", "t")])
        .await;
    assert_eq!(
        names_values(&out[0]),
        [
            ("orders/api-key".to_string(), "the-key".to_string()),
            ("orders/db".to_string(), "the-db".to_string())
        ]
    );
    assert_eq!(proxy.count("ListSecrets"), 1);
    assert_eq!(proxy.count("BatchGetSecretValue"), 1);
    assert_eq!(proxy.total(), 2);
    assert_no_canary(&format!("{out:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn more_than_the_cap_is_an_error_not_a_partial_set() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        r#"
sm = client('secretsmanager')
for i in range({}):
    sm.create_secret(Name=f'big/s{{i:03}}', SecretString='{CANARY}')
"#,
        MAX_SELECTED + 1
    ));
    let f = fetcher(&proxy).await;
    let out = f.select(&[selection("big/*", "big")]).await;
    let Err(e) = &out[0] else {
        panic!("over the cap must fail")
    };
    assert_eq!(e.code, "SelectionTooLarge");
    assert!(e.message.contains("more than 500 secrets"), "{e:?}");
    assert_eq!(e.secret, "big/*");
    assert_no_canary(&format!("{out:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn access_denied_hints_name_the_list_and_path_actions() {
    let (_moto, proxy) = start().await;
    let f = fetcher(&proxy).await;
    proxy.set_rules(vec![Rule {
        action: None,
        region: None,
        fault: Fault::Error(400, "AccessDeniedException"),
    }]);
    let out = f
        .select(&[
            selection("prod/orders/*", "a"),
            selection("ssm:/prod/orders/*", "b"),
            selection("tag:team=orders", "c"),
        ])
        .await;
    let hints: Vec<String> = out
        .iter()
        .map(|r| r.as_ref().unwrap_err().hint.clone().unwrap_or_default())
        .collect();
    assert!(
        hints[0].contains("secretsmanager:ListSecrets"),
        "{}",
        hints[0]
    );
    assert!(hints[0].contains("secret:prod/orders/*"), "{}", hints[0]);
    assert!(hints[1].contains("ssm:GetParametersByPath"), "{}", hints[1]);
    assert!(
        hints[2].contains("secretsmanager:ListSecrets"),
        "{}",
        hints[2]
    );
}

fn settings(dir: &Path, cfg: &AgentConfig) -> RunSettings {
    let mount = dir.join("mnt");
    std::fs::create_dir_all(&mount).unwrap();
    let mut s = RunSettings::new(cfg, mount, dir.join("termination-log"));
    s.refresh = Duration::from_millis(100);
    s
}

/// Every path under `dir`, relative, skipping the agent's hidden sets.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("..") {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_never_escape_the_directory() {
    let (moto, proxy) = start().await;
    moto.boto3(
        r#"
sm = client('secretsmanager')
sm.create_secret(Name='h/ok', SecretString='fine')
sm.create_secret(Name='h/a/../../etc/x', SecretString='evil')
sm.create_secret(Name='h/a//b', SecretString='evil')
sm.create_secret(Name='h/..data', SecretString='evil')
sm.create_secret(Name='h/', SecretString='evil')
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = AgentConfig {
        selections: vec![selection("h/*", "h")],
        ..AgentConfig::default()
    };
    let s = settings(dir.path(), &cfg);
    let f = fetcher(&proxy).await;
    let exit = tokio::time::timeout(WAIT, run(&cfg, &f, &s, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(exit, Exit::Done);
    assert_eq!(
        tree(dir.path()),
        ["mnt/h/ok"],
        "only the safe name, nothing outside"
    );
    assert!(!dir.path().join("etc").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sidecar_refresh_adds_and_removes_secrets_atomically() {
    let (moto, proxy) = start().await;
    moto.boto3(
        r#"
sm = client('secretsmanager')
sm.create_secret(Name='live/a', SecretString='A')
sm.create_secret(Name='live/b', SecretString='B')
"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = AgentConfig {
        mode: Mode::Sidecar,
        selections: vec![selection("live/*", "live")],
        ..AgentConfig::default()
    };
    let s = settings(dir.path(), &cfg);
    let f = fetcher(&proxy).await;
    let shutdown = CancellationToken::new();
    let task = {
        let (cfg, s, shutdown) = (cfg.clone(), s.clone(), shutdown.clone());
        tokio::spawn(async move { run(&cfg, &f, &s, shutdown).await })
    };
    let wait_for = |want: Vec<&'static str>| {
        let mount = s.mount_dir.clone();
        async move {
            for _ in 0..600 {
                if tree(&mount) == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(wait_for(vec!["live/a", "live/b"]).await, "first write");
    moto.boto3(
        r#"
sm = client('secretsmanager')
sm.create_secret(Name='live/c', SecretString='C')
sm.delete_secret(SecretId='live/a', ForceDeleteWithoutRecovery=True)
"#,
    );
    assert!(
        wait_for(vec!["live/b", "live/c"]).await,
        "c added and a removed: {:?}",
        tree(&s.mount_dir)
    );
    shutdown.cancel();
    let exit = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert_eq!(exit, Exit::Done);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_renders_over_a_selection_and_its_errors_never_show_a_value() {
    let (moto, proxy) = start().await;
    moto.boto3(&format!(
        r#"
sm = client('secretsmanager')
sm.create_secret(Name='prod/orders/api-key', SecretString='{CANARY}')
sm.create_secret(Name='prod/orders/db', SecretString=json.dumps({{'user': 'app', 'password': '{CANARY}'}}))
"#
    ));
    let mut sel = selection("prod/orders/*", "orders");
    sel.format = Format::NoFile;
    let mut cfg = AgentConfig {
        selections: vec![sel],
        templates: vec![TemplateSpec {
            path: "app.env".into(),
            template:
                "KEY={{ secrets[\"orders\"][\"api-key\"] }}\nDB_USER={{ secrets.orders.db.user }}\n"
                    .into(),
        }],
        ..AgentConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &cfg);
    let f = fetcher(&proxy).await;
    let exit = tokio::time::timeout(WAIT, run(&cfg, &f, &s, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(exit, Exit::Done);
    assert_eq!(
        tree(&s.mount_dir),
        ["app.env"],
        "format none: only the template"
    );
    let env = std::fs::read_to_string(s.mount_dir.join("app.env")).unwrap();
    assert_eq!(env, format!("KEY={CANARY}\nDB_USER=app\n"));

    cfg.templates[0].template = "{{ secrets.orders.db.pasword }}".into();
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &cfg);
    let exit = tokio::time::timeout(WAIT, run(&cfg, &f, &s, CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(exit, Exit::Failed);
    let log = std::fs::read_to_string(&s.termination_log).unwrap();
    assert!(
        log.contains("template-app.env: TemplateError: line 1: undefined value"),
        "{log}"
    );
    assert_no_canary(&log);
    assert!(tree(&s.mount_dir).is_empty());
}
