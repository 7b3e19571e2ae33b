//! The contract's limits and branches pinned from outside: every bound of the
//! annotations and of a hand-written `AgentConfig` on both sides, each rejection
//! with its message (found by mutation testing, docs/mutation-testing.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use secrets_injector_shared::annotations::MAX_SECRETS;
use secrets_injector_shared::config::{
    DEFAULT_REFRESH_SECS, DEFAULT_STARTUP_TIMEOUT_SECS, MAX_REFRESH_SECS, MAX_STARTUP_TIMEOUT_SECS,
    MIN_REFRESH_SECS,
};
use secrets_injector_shared::env::{EnvFile, EnvRequest};
use secrets_injector_shared::error::MAX_MESSAGE_BYTES;
use secrets_injector_shared::{
    AgentConfig, InjectionRequest, Mode, Problem, Problems, SecretRef, SecretSpec, keys,
    parse_annotations,
};

fn ann(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn secret(file: &str) -> (String, String) {
    kv(&format!("{}{file}", keys::SECRET_PREFIX), "prod/db")
}

fn parse(pairs: &[(String, String)]) -> Result<Option<InjectionRequest>, String> {
    parse_annotations(&ann(pairs))
        .into_result()
        .map_err(|p| p.to_string())
}

fn request(pairs: &[(String, String)]) -> InjectionRequest {
    parse(pairs).unwrap().expect("a request")
}

fn problems(pairs: &[(String, String)]) -> String {
    parse(pairs).unwrap_err()
}

#[test]
fn request_accessors_read_the_config() {
    let r = request(&[
        secret("db"),
        kv(keys::MODE, "sidecar"),
        kv(keys::MOUNT_PATH, "/run/app"),
    ]);
    assert_eq!(r.mode(), Mode::Sidecar);
    assert_eq!(r.mount_path(), "/run/app");
    let r = request(&[secret("db")]);
    assert_eq!((r.mode(), r.mount_path()), (Mode::Init, "/mnt/secrets"));
    assert_eq!(Mode::Init.as_str(), "init");
    assert_eq!(Mode::Sidecar.as_str(), "sidecar");
}

#[test]
fn the_exec_wrapper_is_wanted_only_with_env_annotations() {
    assert!(!request(&[secret("db")]).config.exec_wrapper);
    let r = request(&[secret("db"), kv(&format!("{}DB", keys::ENV_PREFIX), "db")]);
    assert!(r.config.exec_wrapper);
    assert_eq!(r.env.vars.len(), 1);
}

#[test]
fn env_annotations_alone_are_denied_not_ignored() {
    let err = problems(&[kv(&format!("{}DB", keys::ENV_PREFIX), "db")]);
    assert!(err.contains("secrets-injector.io/env-DB"), "{err}");
    assert!(!err.contains("unknown annotation"), "{err}");
}

#[test]
fn secret_annotation_count_is_limited_at_500() {
    let at_limit: Vec<_> = (0..MAX_SECRETS).map(|i| secret(&format!("s{i}"))).collect();
    assert_eq!(request(&at_limit).config.secrets.len(), 500);
    let mut over = at_limit;
    over.push(secret("one-more"));
    let err = problems(&over);
    assert!(
        err.contains("the pod has 501 secret annotations; the limit is 500"),
        "{err}"
    );
}

#[test]
fn env_annotation_count_is_limited_at_500() {
    let mut pairs = vec![secret("db")];
    let env = |i: usize| kv(&format!("{}V{i}", keys::ENV_PREFIX), "db");
    pairs.extend((0..MAX_SECRETS).map(env));
    assert_eq!(request(&pairs).env.vars.len(), 500);
    pairs.push(env(MAX_SECRETS));
    let err = problems(&pairs);
    assert!(
        err.contains("the pod has 501 env annotations; the limit is 500"),
        "{err}"
    );
}

#[test]
fn secrets_from_objects_and_annotations_count_together() {
    let objects = |n: usize| {
        (0..n)
            .map(|i| format!("- {{objectName: o{i}, objectType: secretsmanager}}\n"))
            .collect::<String>()
    };
    let r = request(&[kv(keys::OBJECTS, &objects(499)), secret("db")]);
    assert_eq!(r.config.secrets.len(), 500);
    let err = problems(&[kv(keys::OBJECTS, &objects(500)), secret("db")]);
    assert!(
        err.contains("the pod names 501 secrets; the limit is 500"),
        "{err}"
    );
}

#[test]
fn duration_bounds_on_both_sides() {
    let get = |key: &str, v: &str| {
        let c = request(&[secret("db"), kv(keys::MODE, "sidecar"), kv(key, v)]).config;
        (c.refresh_interval_secs, c.startup_timeout_secs)
    };
    let refresh = keys::REFRESH_INTERVAL;
    let startup = keys::STARTUP_TIMEOUT;
    assert_eq!(get(refresh, "30s").0, MIN_REFRESH_SECS);
    assert_eq!(get(refresh, "24h").0, MAX_REFRESH_SECS);
    assert_eq!(get(startup, "500ms").1, 1, "rounded up to a second");
    assert_eq!(get(startup, "1h").1, MAX_STARTUP_TIMEOUT_SECS);
    for (key, v, want) in [
        (refresh, "29s", "\"29s\" is below the minimum of 30s"),
        (refresh, "24h1s", "\"24h1s\" is above the maximum of 24h"),
        (
            startup,
            "0s",
            "secrets-injector.io/startup-timeout: must be greater than zero",
        ),
        (startup, "3601s", "\"3601s\" is above the maximum of 1h"),
        (refresh, "soon", "is not a duration"),
    ] {
        let err = problems(&[secret("db"), kv(keys::MODE, "sidecar"), kv(key, v)]);
        assert!(err.contains(want), "{key}={v}: {err}");
    }
    let c = request(&[secret("db")]).config;
    assert_eq!(
        (c.refresh_interval_secs, c.startup_timeout_secs),
        (DEFAULT_REFRESH_SECS, DEFAULT_STARTUP_TIMEOUT_SECS)
    );
}

#[test]
fn env_requests_are_empty_only_without_vars_and_dirs() {
    let var = EnvFile {
        name: "A".into(),
        path: "a".into(),
    };
    for (vars, from, empty) in [
        (vec![], vec![], true),
        (vec![var.clone()], vec![], false),
        (vec![], vec!["dir".to_string()], false),
        (vec![var], vec!["dir".to_string()], false),
    ] {
        assert_eq!(EnvRequest { vars, from }.is_empty(), empty);
    }
}

#[test]
fn pinning_is_by_version_or_stage() {
    let mut s = SecretSpec::new(SecretRef::parse("db").unwrap(), "db");
    assert!(!s.is_pinned());
    s.version_id = Some("v1".into());
    assert!(s.is_pinned());
    s.version_id = None;
    s.version_stage = Some("AWSPREVIOUS".into());
    assert!(s.is_pinned());
    s.version_id = Some("v1".into());
    assert!(s.is_pinned());
}

#[test]
fn false_flags_are_left_out_of_the_config_json() {
    let mut cfg = AgentConfig::default();
    cfg.secrets
        .push(SecretSpec::new(SecretRef::parse("db").unwrap(), "db"));
    let json = cfg.to_json();
    for field in ["optional", "allow_node_role", "exec_wrapper"] {
        assert!(!json.contains(field), "{field} in {json}");
    }
    cfg.secrets[0].optional = true;
    cfg.allow_node_role = true;
    cfg.exec_wrapper = true;
    let json = cfg.to_json();
    for field in [
        "\"optional\":true",
        "\"allow_node_role\":true",
        "\"exec_wrapper\":true",
    ] {
        assert!(json.contains(field), "{field} not in {json}");
    }
    assert_eq!(AgentConfig::from_json(&json).unwrap(), cfg);
}

/// The error of a hand-written config differing from the default in `edit`.
fn config_error(edit: impl FnOnce(&mut AgentConfig)) -> Option<String> {
    let mut cfg = AgentConfig::default();
    cfg.secrets
        .push(SecretSpec::new(SecretRef::parse("db").unwrap(), "db"));
    edit(&mut cfg);
    AgentConfig::from_json(&cfg.to_json())
        .err()
        .map(|e| e.to_string())
}

#[test]
fn hand_written_config_bounds_on_both_sides() {
    assert_eq!(config_error(|c| c.refresh_interval_secs = 30), None);
    assert_eq!(config_error(|c| c.refresh_interval_secs = 86_400), None);
    assert_eq!(config_error(|c| c.startup_timeout_secs = 1), None);
    assert_eq!(config_error(|c| c.startup_timeout_secs = 3600), None);
    assert_eq!(config_error(|c| c.file_permission = Some(0o777)), None);
    assert_eq!(
        config_error(|c| c.secrets[0].file_permission = Some(0o777)),
        None
    );
    for (edit, want) in [
        (
            Box::new(|c: &mut AgentConfig| c.refresh_interval_secs = 29)
                as Box<dyn FnOnce(&mut AgentConfig)>,
            "invalid AgentConfig: refresh_interval_secs 29 is below the minimum 30",
        ),
        (
            Box::new(|c: &mut AgentConfig| c.refresh_interval_secs = 86_401),
            "invalid AgentConfig: refresh_interval_secs 86401 is above the maximum 86400",
        ),
        (
            Box::new(|c: &mut AgentConfig| c.startup_timeout_secs = 0),
            "invalid AgentConfig: startup_timeout_secs 0 must be between 1 and 3600",
        ),
        (
            Box::new(|c: &mut AgentConfig| c.startup_timeout_secs = 3601),
            "invalid AgentConfig: startup_timeout_secs 3601 must be between 1 and 3600",
        ),
        (
            Box::new(|c: &mut AgentConfig| c.file_permission = Some(0o1000)),
            "invalid AgentConfig: file mode 0o1000 has bits above 0777 (setuid, setgid or sticky)",
        ),
        (
            Box::new(|c: &mut AgentConfig| c.secrets[0].file_permission = Some(0o4440)),
            "invalid AgentConfig: file mode 0o4440 has bits above 0777 (setuid, setgid or sticky)",
        ),
        (
            Box::new(|c: &mut AgentConfig| c.mount_path = "mnt".into()),
            "invalid AgentConfig: mount_path \"mnt\" must be absolute",
        ),
    ] {
        assert_eq!(config_error(edit).as_deref(), Some(want));
    }
}

#[test]
fn a_problem_reads_key_then_message() {
    let p = Problem {
        annotation: "secrets-injector.io/mode".into(),
        message: "bad".into(),
    };
    assert_eq!(p.to_string(), "secrets-injector.io/mode: bad");
}

/// Problems whose full message is exactly `total` bytes, the last item included.
fn problems_of_total(total: usize) -> Problems {
    let n = 15;
    let key = "secrets-injector.io/x";
    let mut len = format!("secrets-injector: {n} invalid annotations: ").len();
    let mut p = Problems::default();
    for i in 0..n - 1 {
        let msg = "m".repeat(250);
        len += if i > 0 { 2 } else { 0 } + format!("[{}] {key}: {msg}", i + 1).len();
        p.push(key, msg);
    }
    let overhead = format!("; [{n}] {key}: ").len();
    p.push(key, "z".repeat(total - len - overhead));
    p
}

#[test]
fn the_deny_message_keeps_every_item_that_fits_in_4056_bytes() {
    let fits = problems_of_total(MAX_MESSAGE_BYTES - 40).to_string();
    assert_eq!(fits.len(), 4056);
    assert!(fits.ends_with('z'), "{}", &fits[fits.len() - 40..]);
    let over = problems_of_total(MAX_MESSAGE_BYTES - 39).to_string();
    assert!(
        over.ends_with("m; … and 1 more"),
        "{}",
        &over[over.len() - 40..]
    );
    assert!(over.len() < 4056);
}

#[test]
fn elided_parts_keep_their_head_and_tail_at_char_boundaries() {
    // 199 ASCII bytes then 'é' (2 bytes) straddles byte 200: the head stops before it.
    let long = format!("{}é{}{}", "h".repeat(199), "x".repeat(300), "t".repeat(59));
    let mut p = Problems::default();
    p.push("k", long.clone());
    let msg = p.to_string();
    let shown = msg
        .strip_prefix("secrets-injector: 1 invalid annotation: [1] k: ")
        .unwrap();
    let head = "h".repeat(199);
    // The tail starts 60 bytes from the end: 'x' then the 59 't's.
    let tail = format!("x{}", "t".repeat(59));
    let elided = long.len() - head.len() - tail.len();
    assert_eq!(shown, format!("{head}…({elided} bytes elided)…{tail}"));
    // A 2-byte character straddling the tail's start moves the tail forward.
    let long = format!("{}{}é{}", "h".repeat(200), "x".repeat(300), "t".repeat(59));
    let mut p = Problems::default();
    p.push("k", long.clone());
    let msg = p.to_string();
    let tail = "t".repeat(59);
    let elided = long.len() - 200 - 59;
    assert!(
        msg.ends_with(&format!(
            "{}…({elided} bytes elided)…{tail}",
            "h".repeat(200)
        )),
        "{msg}"
    );
}

#[test]
fn template_annotation_count_is_limited_at_100() {
    use secrets_injector_shared::template::MAX_TEMPLATES;
    let pod = |n: usize| {
        let mut v = vec![secret("db")];
        v.extend((0..n).map(|i| kv(&format!("{}t{i}", keys::TEMPLATE_PREFIX), "x")));
        v
    };
    let over = problems(&pod(MAX_TEMPLATES + 1));
    assert!(
        over.contains(&format!(
            "the pod has {} template annotations; the limit is {MAX_TEMPLATES}",
            MAX_TEMPLATES + 1
        )),
        "{over}"
    );
    if let Err(at) = parse(&pod(MAX_TEMPLATES)) {
        assert!(!at.contains("template annotations; the limit"), "{at}");
    }
}
