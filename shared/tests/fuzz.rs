//! Property-based fuzzing of the contract (issue 12): annotations, `objects`
//! YAML, durations, refs and selectors, `AgentConfig` from any JSON, and
//! template compile + render. Every input gets an answer (Ok or a typed
//! error, never a panic), plus the cheap invariants named per target.
//! `FUZZ_CASES` sets the cases per target (256 by default; docs/security.md
//! records the long run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod generators;

use std::collections::BTreeMap;

use generators::{Component, Tally, UNITS, fuzz};
use proptest::prelude::*;
use secrets_injector_shared::config::{
    MAX_REFRESH_SECS, MAX_STARTUP_TIMEOUT_SECS, MIN_REFRESH_SECS,
};
use secrets_injector_shared::error::MAX_MESSAGE_BYTES;
use secrets_injector_shared::objects::{MAX_OBJECTS, parse_objects};
use secrets_injector_shared::select::Selector;
use secrets_injector_shared::template::{self, MAX_OUTPUT_BYTES, MAX_TEMPLATE_BYTES, Secrets};
use secrets_injector_shared::validate::{check_jmes_path, parse_duration_secs};
use secrets_injector_shared::{
    AgentConfig, Error, OnChange, Quantity, SecretRef, Service, keys, parse_annotations,
};
use serde_json::{Value, json};

/// Invariants of every config the webhook accepts: the agent accepts it too,
/// unchanged, and its durations are within the documented bounds.
fn check_accepted_config(cfg: &AgentConfig) -> Result<(), TestCaseError> {
    let json = cfg.to_json();
    let back = AgentConfig::from_json(&json);
    prop_assert!(back.is_ok(), "agent refuses an accepted config: {back:?}");
    prop_assert_eq!(&back.unwrap(), cfg);
    prop_assert!((MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&cfg.refresh_interval_secs));
    prop_assert!((1..=MAX_STARTUP_TIMEOUT_SECS).contains(&cfg.startup_timeout_secs));
    prop_assert!(cfg.mount_path.starts_with('/'));
    Ok(())
}

#[test]
fn fuzz_annotations() {
    let tally = Tally::default();
    fuzz("annotations", generators::annotations(), |a| {
        let parsed = parse_annotations(&a);
        tally.add(match (&parsed.request, parsed.problems.is_empty()) {
            (None, true) => "no secrets",
            (None, false) => "denied, no request",
            (Some(_), false) => "denied",
            (Some(_), true) => "accepted",
        });
        let message = parsed.problems.to_string();
        prop_assert!(
            message.len() <= MAX_MESSAGE_BYTES,
            "{} bytes",
            message.len()
        );
        let problem_keys: Vec<&str> = parsed
            .problems
            .0
            .iter()
            .map(|p| p.annotation.as_str())
            .collect();
        if let Some(req) = &parsed.request {
            let cfg = &req.config;
            // Over the count limit the request is kept for the report, and denied.
            if cfg.secrets.len() > MAX_OBJECTS {
                prop_assert!(!parsed.problems.is_empty());
            }
            // A duration without a problem of its own is within its bounds.
            if !problem_keys.contains(&keys::REFRESH_INTERVAL) {
                prop_assert!(
                    (MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&cfg.refresh_interval_secs)
                );
            }
            if !problem_keys.contains(&keys::STARTUP_TIMEOUT) {
                prop_assert!((1..=MAX_STARTUP_TIMEOUT_SECS).contains(&cfg.startup_timeout_secs));
            }
            if parsed.problems.is_empty() {
                check_accepted_config(cfg)?;
            }
        }
        Ok(())
    });
    tally.print("annotations");
}

#[test]
fn fuzz_objects_yaml() {
    let tally = Tally::default();
    fuzz("objects", generators::objects_yaml(), |yaml| {
        match parse_objects(&yaml) {
            Ok(specs) => {
                tally.add(if specs.is_empty() {
                    "empty"
                } else {
                    "accepted"
                });
                prop_assert!(specs.len() <= MAX_OBJECTS);
                for s in &specs {
                    // Accepted sources are canonical: they re-parse to themselves.
                    prop_assert_eq!(
                        SecretRef::parse(&s.source.to_string()),
                        Ok(s.source.clone())
                    );
                    for j in &s.jmes_path {
                        prop_assert!(check_jmes_path(&j.path).is_ok(), "{:?}", j.path);
                    }
                }
            }
            Err(problems) => {
                tally.add("refused");
                prop_assert!(!problems.is_empty());
                let mut p = secrets_injector_shared::Problems::default();
                problems.into_iter().for_each(|m| p.push(keys::OBJECTS, m));
                prop_assert!(p.to_string().len() <= MAX_MESSAGE_BYTES);
            }
        }
        Ok(())
    });
    tally.print("objects");
}

/// Seconds bounds of structured components: each fraction adds less than one unit.
fn duration_bounds(components: &[Component]) -> Option<(u128, u128)> {
    let (mut low, mut high) = (0u128, 0u128);
    for c in components {
        let scale = UNITS.iter().find(|(u, _)| *u == c.unit)?.1;
        let int: u128 = if c.int.is_empty() {
            0
        } else {
            c.int.parse().ok()?
        };
        low = low.checked_add(int.checked_mul(scale)?)?;
        let extra = u128::from(c.frac.as_ref().is_some_and(|f| !f.is_empty()));
        high = high.checked_add(int.checked_add(extra)?.checked_mul(scale)?)?;
    }
    Some((low.div_ceil(1_000_000_000), high.div_ceil(1_000_000_000)))
}

#[test]
fn fuzz_durations() {
    fuzz("durations", generators::duration(), |s| {
        // Typed answer; an accepted one also passes the annotation bounds check.
        let r = parse_duration_secs(&s);
        if let Err(e) = &r {
            prop_assert!(!e.is_empty());
        }
        let mut a = BTreeMap::new();
        a.insert(format!("{}x", keys::SECRET_PREFIX), "prod/db".to_string());
        a.insert(keys::MODE.to_string(), "sidecar".to_string());
        a.insert(keys::REFRESH_INTERVAL.to_string(), s.clone());
        a.insert(keys::STARTUP_TIMEOUT.to_string(), s);
        let parsed = parse_annotations(&a);
        let cfg = parsed.request.expect("names a secret").config;
        prop_assert!((MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&cfg.refresh_interval_secs));
        prop_assert!((1..=MAX_STARTUP_TIMEOUT_SECS).contains(&cfg.startup_timeout_secs));
        Ok(())
    });
    // Structured values against an independent bound: [ceil(Σ int), ceil(Σ (int+1))] seconds.
    fuzz(
        "durations-structured",
        generators::duration_components(),
        |c| {
            let text: String = c.iter().map(Component::text).collect();
            let got = parse_duration_secs(&text);
            let valid = c.iter().all(|c| {
                UNITS.iter().any(|(u, _)| *u == c.unit)
                    && !(c.int.is_empty() && c.frac.as_deref().is_none_or(str::is_empty))
            });
            // Neighbours merge across an empty unit ("5" "30s" is "530s") or a
            // unit-only component ("5m" "s" is "5ms"): no independent answer then.
            let merged = c[..c.len() - 1].iter().any(|c| c.unit.is_empty())
                || c[1..].iter().any(|c| c.int.is_empty() && c.frac.is_none());
            match (valid, duration_bounds(&c)) {
                _ if merged => {}
                (false, _) | (true, None) => prop_assert!(got.is_err(), "{text:?} gave {got:?}"),
                (true, Some((low, high))) if high <= u128::from(u64::MAX) => {
                    let secs = got.map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
                    prop_assert!(
                        (low..=high).contains(&u128::from(secs)),
                        "{text:?} gave {secs}, expected {low}..={high}"
                    );
                }
                // Near u64 seconds: "too large", or a value no less than the lower bound.
                (true, Some((low, _))) => match got {
                    Ok(secs) => prop_assert!(u128::from(secs) >= low, "{text:?} wrapped to {secs}"),
                    Err(e) => prop_assert!(e.contains("too large"), "{text:?}: {e}"),
                },
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_refs() {
    fuzz("refs", generators::secret_ref(), |s| {
        if let Ok(r) = SecretRef::parse(&s) {
            // Accepted refs are canonical: the printed form re-parses identically.
            prop_assert_eq!(SecretRef::parse(&r.to_string()), Ok(r.clone()));
            prop_assert!(!r.id().is_empty());
            let _ = r.default_file_name();
            let json = serde_json::to_string(&r).unwrap();
            prop_assert_eq!(serde_json::from_str::<SecretRef>(&json).unwrap(), r);
        }
        for service in [Service::SecretsManager, Service::SsmParameter] {
            if let Ok(r) = SecretRef::parse_as(&s, service) {
                prop_assert_eq!(r.service(), service);
                prop_assert_eq!(SecretRef::parse(&r.to_string()), Ok(r));
            }
        }
        Ok(())
    });
    fuzz("selectors", generators::selector(), |s| {
        if let Ok(sel) = Selector::parse(&s) {
            prop_assert!(sel.check().is_ok());
            prop_assert_eq!(Selector::parse(&sel.to_string()), Ok(sel));
        }
        Ok(())
    });
    let small = prop_oneof![
        generators::hostile(),
        generators::from_alphabet("signal:SIGHUPhttp://localhost[::1]:0123/", 40),
        generators::from_alphabet("0123456789.+-eEmkMGTPKi ", 24),
    ];
    fuzz("on-change-and-quantities", small, |s| {
        if let Ok(OnChange::Signal { process, .. }) = OnChange::parse(&s) {
            prop_assert!((1..=15).contains(&process.len()));
        }
        if let Ok(q) = Quantity::parse(&s) {
            prop_assert!(!q.value().is_sign_negative(), "{s:?} is negative");
        }
        Ok(())
    });
}

/// Key names of the config's schema, for JSON of any shape.
const CONFIG_KEYS: &[&str] = &[
    "version",
    "mode",
    "mount_path",
    "region",
    "refresh_interval_secs",
    "startup_timeout_secs",
    "file_permission",
    "owner",
    "uid",
    "gid",
    "on_change",
    "type",
    "signal",
    "process",
    "url",
    "secrets",
    "source",
    "service",
    "id",
    "name",
    "path",
    "format",
    "jmes_path",
    "alias",
    "selections",
    "select",
    "by",
    "prefix",
    "tags",
    "key",
    "value",
    "templates",
    "template",
    "failover",
    "optional",
    "exec_wrapper",
    "/mnt/secrets",
    "init",
    "sidecar",
    "prod/db",
    "secrets_manager",
    "ssm_parameter",
    "raw",
    "files",
    "none",
    "SIGHUP",
    "ssm_path",
];

fn any_json() -> impl Strategy<Value = Value> + Clone {
    generators::any_json(CONFIG_KEYS)
}

/// A well-formed config most of whose values come from the grammars.
fn config_json() -> impl Strategy<Value = Value> + Clone {
    let valid_ref = prop::sample::select(vec!["prod/db", "ssm:/app/key", "ssm:MyParam"]);
    let secret = (
        prop_oneof![3 => valid_ref.prop_map(String::from), 1 => generators::secret_ref()],
        generators::from_alphabet("ab/._-", 12).prop_map(|p| format!("s{p}")),
        prop::sample::select(vec!["raw", "json", "files", "none", "toml"]),
        prop::collection::vec(
            (
                generators::jmes_path(),
                generators::from_alphabet("ab/._-", 8).prop_map(|p| format!("j{p}")),
            ),
            0..3,
        ),
        prop::option::of(prop_oneof![3 => Just(0o440u32), 1 => 0u32..0o10000]),
    )
        .prop_map(|(r, path, format, jmes, mode)| {
            let source = match SecretRef::parse(&r) {
                Ok(s) => serde_json::to_value(s).unwrap(),
                Err(_) => json!({"service": "secrets_manager", "id": r}),
            };
            let jmes: Vec<Value> = jmes
                .into_iter()
                .map(|(p, a)| json!({"path": p, "alias": a}))
                .collect();
            json!({"source": source, "path": path, "format": format, "jmes_path": jmes, "file_permission": mode})
        });
    let selector = prop_oneof![
        3 => Just("prod/orders/*".to_string()),
        1 => generators::selector(),
    ];
    let template = prop_oneof![
        3 => Just("{{ secrets.db.user }}".to_string()),
        1 => generators::template(),
    ];
    (
        (
            prop_oneof![
                6 => Just(json!(1)),
                1 => prop::sample::select(vec![json!(2), json!("1"), json!(1.0), json!(null)]),
            ],
            prop::sample::select(vec!["init", "sidecar", "sidecar", "daemon"]),
            generators::from_alphabet("/ab.", 10).prop_map(|p| format!("/{p}")),
            any::<u64>().prop_map(|n| n % 100_000),
            any::<u64>().prop_map(|n| n % 4_000),
        ),
        prop::collection::vec(secret, 0..4),
        prop::collection::vec(
            (
                selector,
                generators::from_alphabet("ab.", 6).prop_map(|p| format!("d{p}")),
            ),
            0..3,
        ),
        prop::collection::vec(
            (
                generators::from_alphabet("ab._", 8).prop_map(|p| format!("t{p}")),
                template,
            ),
            0..3,
        ),
        prop::option::of(prop_oneof![3 => Just(0o440u32), 1 => 0u32..0o10000]),
    )
        .prop_map(
            |(
                (version, mode, mount, refresh, startup),
                secrets,
                selections,
                templates,
                mode_bits,
            )| {
                let selections: Vec<Value> = selections
                    .into_iter()
                    .map(|(s, path)| {
                        let select = Selector::parse(&s)
                            .map(|s| serde_json::to_value(s).unwrap())
                            .unwrap_or_else(|_| json!({"by": "prefix", "prefix": s}));
                        json!({"select": select, "path": path})
                    })
                    .collect();
                let templates: Vec<Value> = templates
                    .into_iter()
                    .map(|(path, template)| json!({"path": path, "template": template}))
                    .collect();
                json!({
                    "version": version, "mode": mode, "mount_path": mount,
                    "refresh_interval_secs": refresh, "startup_timeout_secs": startup,
                    "file_permission": mode_bits, "secrets": secrets,
                    "selections": selections, "templates": templates,
                })
            },
        )
}

#[test]
fn fuzz_agent_config() {
    let input = prop_oneof![
        4 => config_json().prop_map(|v| v.to_string()),
        // A well-formed config with one field replaced by anything.
        2 => (config_json(), prop::sample::select(vec![
            "version", "mode", "mount_path", "refresh_interval_secs", "startup_timeout_secs",
            "file_permission", "secrets", "selections", "templates", "owner", "on_change",
        ]), any_json())
            .prop_map(|(mut v, k, x)| { v[k] = x; v.to_string() }),
        2 => any_json().prop_map(|v| v.to_string()),
        1 => generators::hostile(),
        1 => prop::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => generators::near(&[128, 129]).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n))),
    ];
    let tally = Tally::default();
    fuzz("agent-config", input, |s| {
        let result = AgentConfig::from_json(&s);
        tally.add(match &result {
            Ok(_) => "accepted",
            Err(Error::ConfigJson(_)) => "not a config",
            Err(Error::ConfigVersion { .. }) => "wrong version",
            Err(_) => "invalid",
        });
        match result {
            Ok(cfg) => {
                prop_assert!(cfg.file_permission.is_none_or(|m| m <= 0o777));
                prop_assert!(
                    cfg.secrets
                        .iter()
                        .all(|s| s.file_permission.is_none_or(|m| m <= 0o777))
                );
                check_accepted_config(&cfg)?;
            }
            Err(Error::ConfigJson(m) | Error::ConfigInvalid(m)) => prop_assert!(!m.is_empty()),
            Err(Error::ConfigVersion { .. }) => {}
            Err(Error::Invalid(p)) => {
                return Err(TestCaseError::fail(format!(
                    "annotation problems from a config: {p}"
                )));
            }
        }
        Ok(())
    });
    tally.print("agent-config");
}

/// Secret values no template or error may quote.
const CANARY: &str = "\u{2ee}canary-Zq8v\u{2ee}";

fn secrets() -> Secrets {
    let mut s = Secrets::default();
    s.insert(
        "db",
        format!(r#"{{"user":"app","password":"{CANARY}","n":[1,2,{{"x":"{CANARY}"}}]}}"#)
            .as_bytes(),
    );
    s.insert("key", CANARY.as_bytes());
    s.insert("bin", &[0xff, 0xfe, b'C', 0x00]);
    s.insert_dir(
        "dir",
        [("api-key", CANARY.as_bytes()), ("db", &b"{\"u\":1}"[..])],
    );
    s
}

#[test]
fn fuzz_templates() {
    let ctx = secrets();
    let tally = Tally::default();
    fuzz("templates", generators::template(), |src| {
        let checked = template::check(&src);
        tally.add(if checked.is_ok() {
            "compiled"
        } else {
            "refused"
        });
        // Over the size limit, check refuses and a config holding it never loads.
        let sized = src.len() <= MAX_TEMPLATE_BYTES;
        prop_assert_eq!(
            sized,
            !matches!(&checked, Err(e) if e.starts_with("template is "))
        );
        match template::render(&src, &ctx) {
            Ok(out) => {
                tally.add("rendered");
                prop_assert!(out.len() <= MAX_OUTPUT_BYTES, "{} bytes", out.len());
                prop_assert!(
                    !sized || checked.is_ok(),
                    "rendered what check refused: {checked:?}"
                );
            }
            Err(e) => {
                // Admission and agent agree on syntax; errors never quote a value.
                match &checked {
                    Err(c) if sized => prop_assert_eq!(&e, c),
                    Ok(()) => prop_assert!(!e.starts_with("syntax error"), "{e}"),
                    Err(_) => {}
                }
                tally.add(if e.contains("fuel") {
                    "out of fuel"
                } else if e.contains("larger than") {
                    "output capped"
                } else {
                    "render error"
                });
                prop_assert!(!e.contains("canary-Zq8v"), "a value in: {e}");
            }
        }
        Ok(())
    });
    tally.print("templates");
}
