//! Annotations → `parse_annotations` (what the webhook runs) → config JSON →
//! the real agent binary against moto: a template over a selection and a
//! `format: none` secret, and a render error that never prints the value.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "common/agent_bin.rs"]
mod agent_bin;

use std::collections::BTreeMap;

use agent_bin::{Run, run_agent};
use secrets_injector_shared::{AgentConfig, parse_annotations};
use secrets_injector_tests::Moto;

const CANARY: &str = "CANARY-bin-tmpl-83c1";

fn config(pairs: &[(&str, &str)]) -> AgentConfig {
    let a: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (format!("secrets-injector.io/{k}"), v.to_string()))
        .collect();
    parse_annotations(&a).into_result().unwrap().unwrap().config
}

fn seed(moto: &Moto) {
    moto.boto3(&format!(
        r#"
sm = client('secretsmanager')
sm.create_secret(Name='prod/orders/api-key', SecretString='k-123')
sm.create_secret(Name='prod/orders/db', SecretString=json.dumps({{'user': 'app', 'password': '{CANARY}/x'}}))
ssm = client('ssm')
ssm.put_parameter(Name='/prod/host', Value='db.internal', Type='String')
"#
    ));
}

/// The agent binary run once against a seeded moto, with the config the
/// webhook would make of these annotations.
fn run_seeded(pairs: &[(&str, &str)]) -> (AgentConfig, Run) {
    let moto = Moto::start();
    seed(&moto);
    let cfg = config(pairs);
    let e = moto.aws_env();
    let env: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = run_agent(&cfg, &env);
    (cfg, run)
}

#[test]
fn the_agent_binary_renders_templates_over_selections_from_annotations() {
    let (cfg, run) = run_seeded(&[
        ("secret-orders", "prod/orders/*"),
        ("format-orders", "none"),
        ("secret-host", "ssm:/prod/host"),
        (
            "template-dsn",
            "postgres://{{ secrets.orders.db.user }}:{{ secrets.orders.db.password | urlencode }}@{{ secrets.host }}/o\n",
        ),
        ("template-api", "{{ secrets[\"orders\"][\"api-key\"] }}"),
    ]);
    assert!(run.success, "{}", run.all());
    assert_eq!(
        run.file(&cfg, "dsn").unwrap(),
        format!("postgres://app:{CANARY}%2Fx@db.internal/o\n")
    );
    assert_eq!(run.file(&cfg, "api").unwrap(), "k-123");
    assert_eq!(run.file(&cfg, "host").unwrap(), "db.internal");
    assert!(run.file(&cfg, "orders/db").is_none(), "format none");
    let out = format!("{}\n{}", run.stdout, run.stderr);
    assert!(!out.contains(CANARY), "{out}");
}

#[test]
fn a_template_error_fails_the_init_agent_without_the_value() {
    let (cfg, run) = run_seeded(&[
        ("secret-orders", "prod/orders/*"),
        ("format-orders", "none"),
        (
            "template-dsn",
            "{{ secrets.orders.db.password ~ secrets.orders.db.nope }}",
        ),
    ]);
    assert!(!run.success);
    assert!(
        run.termination_log.contains(
            "secret secrets-injector.io/template-dsn: TemplateError: line 1: undefined value"
        ),
        "{}",
        run.all()
    );
    assert!(!run.all().contains(CANARY), "{}", run.all());
    assert!(run.file(&cfg, "dsn").is_none());
}

#[test]
fn a_template_over_its_time_budget_fails_the_init_agent_instead_of_hanging() {
    // Within the fuel, ~1,000 s of CPU: a filter over 1 MB, 100,000 times.
    // `run_agent` kills the agent after 90 s: only the budget's exit leaves this message.
    let (cfg, run) = run_seeded(&[
        ("secret-host", "ssm:/prod/host"),
        (
            "template-slow",
            "{% set x = 'x' * 1000000 %}{% for i in range(100000) %}{% set y = x | replace('x', 'yy') %}{% endfor %}",
        ),
    ]);
    assert!(!run.success, "{}", run.all());
    assert!(
        run.termination_log.contains(
            "secret secrets-injector.io/template-slow: TemplateError: rendering took longer than 10 s"
        ),
        "{}",
        run.all()
    );
    assert!(run.file(&cfg, "slow").is_none());
}
