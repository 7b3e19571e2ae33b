//! The agent's reaction to AWS throttling, through the quota front: a few
//! agents started at once against a tiny Secrets Manager quota all succeed,
//! and the front's call log shows them backing off (spread-out retries, no
//! tight loop) rather than hammering the API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use secrets_injector_bench::agentbench::{self, AgentRoot, CANARY, PodEnv, sm_id};
use secrets_injector_bench::proxy;
use secrets_injector_bench::quota::{Quota, Quotas};
use secrets_injector_shared::{AgentConfig, SecretRef, SecretSpec};
use secrets_injector_tests::{Moto, wait_output_within, workspace_bin};

const AGENTS: usize = 4;

/// One secret per agent, so the call log tells the agents apart.
fn config_for(i: usize) -> AgentConfig {
    AgentConfig {
        secrets: vec![SecretSpec::new(SecretRef::parse(&sm_id(i)).unwrap(), "s")],
        ..AgentConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_against_a_tiny_quota_back_off_and_all_succeed() {
    let moto = Moto::start();
    agentbench::seed(&moto, AGENTS, 0);
    // One call a second for the whole "account", burst 1: four agents starting
    // together must queue behind each other through throttling.
    let one_a_second = Quota {
        rate: 1.0,
        burst: 1.0,
    };
    let quotas = Quotas::new([
        (
            "secretsmanager.BatchGetSecretValue".to_string(),
            one_a_second,
        ),
        ("secretsmanager.GetSecretValue".to_string(), one_a_second),
    ]);
    let (addr, front) = proxy::start_front(&moto.endpoint(), quotas, "127.0.0.1:0")
        .await
        .unwrap();
    let pod = PodEnv::new(&format!("http://{addr}")).unwrap();

    let children: Vec<_> = (0..AGENTS)
        .map(|i| {
            let cfg = config_for(i);
            let root = AgentRoot::new(&pod, &format!("agent-{i}"), &cfg).unwrap();
            let child = Command::new(workspace_bin("secrets-injector-agent"))
                .arg("--once")
                .env_clear()
                .envs(root.env(&pod, &cfg, "text"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (root.mount, child)
        })
        .collect();
    for (i, (dir, child)) in children.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || {
            wait_output_within(child, Duration::from_secs(60), "secrets-injector-agent")
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "agent {i} failed: {stderr}");
        let value = std::fs::read_to_string(dir.join("s")).unwrap();
        assert!(value.contains(CANARY), "agent {i} wrote the wrong value");
        assert!(!stderr.contains(CANARY), "agent {i} logged a secret value");
    }

    // Secrets Manager calls per agent, in arrival order.
    let mut per_agent: BTreeMap<String, Vec<(u64, bool)>> = BTreeMap::new();
    for c in front.calls.snapshot() {
        if c.op.starts_with("secretsmanager.") {
            per_agent
                .entry(c.first_name)
                .or_default()
                .push((c.at_ms, c.throttled));
        }
    }
    let timeline = format!("{per_agent:?}");
    assert_eq!(per_agent.len(), AGENTS, "{timeline}");
    let throttled: usize = per_agent
        .values()
        .map(|calls| calls.iter().filter(|(_, t)| *t).count())
        .sum();
    assert!(
        throttled >= AGENTS - 1,
        "four agents against one call a second were throttled only {throttled} times: {timeline}"
    );
    for (name, calls) in &per_agent {
        // Each agent ends with one admitted call: nothing after success.
        assert_eq!(
            calls.iter().filter(|(_, t)| !t).count(),
            1,
            "{name}: {timeline}"
        );
        assert!(!calls.last().unwrap().1, "{name}: {timeline}");
        // Backoff, not a tight loop: few attempts, spread out in time.
        assert!(
            calls.len() <= 15,
            "{name} retried {} times: {timeline}",
            calls.len()
        );
        if calls.len() >= 3 {
            let span = calls.last().unwrap().0 - calls[0].0;
            let mean_gap = span / (calls.len() as u64 - 1);
            assert!(
                mean_gap >= 50,
                "{name}: retries {mean_gap} ms apart on average: {timeline}"
            );
        }
    }
    // The quota held: never more admitted calls in a second than its rate (plus the burst).
    let admitted_ms: Vec<u64> = per_agent
        .values()
        .flatten()
        .filter(|(_, t)| !t)
        .map(|(at, _)| *at)
        .collect();
    let first = *admitted_ms.iter().min().unwrap();
    let last = *admitted_ms.iter().max().unwrap();
    assert!(
        last - first >= 1000 * (AGENTS as u64 - 2),
        "{AGENTS} calls admitted within {} ms at one a second: {timeline}",
        last - first
    );
}
