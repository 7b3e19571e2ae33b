//! Pod annotations → a typed, validated [`InjectionRequest`].

use std::collections::BTreeMap;

use crate::config::{
    AgentConfig, DEFAULT_MOUNT_PATH, DEFAULT_REFRESH_SECS, DEFAULT_STARTUP_TIMEOUT_SECS, Format,
    MAX_REFRESH_SECS, MAX_STARTUP_TIMEOUT_SECS, MIN_REFRESH_SECS, Mode, OnChange, SecretSpec,
    TemplateSpec,
};
use crate::env::{self, EnvRequest};
use crate::error::Problems;
use crate::keys;
use crate::objects::parse_objects;
use crate::paths;
use crate::quantity::Quantity;
use crate::refs::SecretRef;
use crate::select::{self, SelectionSpec, Selector};
use crate::template;
use crate::validate;

/// Most secrets (annotations + objects) one pod may name.
pub const MAX_SECRETS: usize = 500;

/// What a pod asked for. The webhook adds what only the pod spec knows
/// (owner uid/gid) to `config` before handing it to the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectionRequest {
    pub config: AgentConfig,
    /// Containers to mount the volume into; `None` = all app containers.
    pub containers: Option<Vec<String>>,
    pub agent_cpu: Option<Quantity>,
    pub agent_memory: Option<Quantity>,
    /// Env vars the app containers get from the files (`env-*`).
    pub env: EnvRequest,
}

impl InjectionRequest {
    pub fn mode(&self) -> Mode {
        self.config.mode
    }
    pub fn mount_path(&self) -> &str {
        &self.config.mount_path
    }
}

/// A pod's annotations, read once: what could be parsed plus every problem,
/// so a caller never re-reads the annotations to report on a failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// `None`: the pod names no secrets, or opted out. Otherwise the request,
    /// with defaults in place of the values that were invalid.
    pub request: Option<InjectionRequest>,
    /// Every problem found; any problem means the pod must be denied.
    pub problems: Problems,
}

impl Parsed {
    /// `Ok(None)`: leave the pod unchanged; `Ok(Some)`: inject; `Err`: deny.
    pub fn into_result(self) -> Result<Option<InjectionRequest>, Problems> {
        if self.problems.is_empty() {
            Ok(self.request)
        } else {
            Err(self.problems)
        }
    }
}

/// Parse a pod's annotations. Work is linear in their size, and
/// the secret count limit is checked before any secret is parsed.
pub fn parse_annotations(annotations: &BTreeMap<String, String>) -> Parsed {
    let mut p = Problems::default();
    match annotations.get(keys::INJECT).map(|v| v.trim()) {
        Some("false" | "disabled") => return Parsed::default(),
        Some("true" | "enabled") | None => {}
        Some(other) => p.push(keys::INJECT, format!("{other:?} is not true or false")),
    }
    let Some(mut sources) = read_sources(annotations, &mut p) else {
        // A misspelt key (`secrets-injector.io/secrets-db`) must not let a pod
        // that wanted secrets start silently without them: `p` says so.
        return Parsed {
            request: None,
            problems: p,
        };
    };
    sources.apply_formats(&mut p);
    sources.check_templates(&mut p);
    check_output_paths(&sources, &mut p);
    let env = env::read(annotations, &mut p);
    let rendered: Vec<&str> = sources.templates.iter().map(|t| t.path.as_str()).collect();
    env::check_paths(&env, &sources.secrets, &rendered, &mut p);
    let values = Values(annotations);
    let get = |k: &str| values.get(k);
    let mut config = behaviour(&values, &mut p);
    config.secrets = sources.secrets;
    config.selections = sources.selections.into_iter().map(|(s, _)| s).collect();
    config.templates = sources.templates;
    config.exec_wrapper = !env.is_empty();
    let mut quantity =
        |key: &str| get(key).and_then(|v| Quantity::parse(v).map_err(|e| p.push(key, e)).ok());
    let agent_cpu = quantity(keys::AGENT_CPU);
    let agent_memory = quantity(keys::AGENT_MEMORY);
    let containers = get(keys::CONTAINERS).map(|v| container_names(v, &mut p));
    Parsed {
        request: Some(InjectionRequest {
            config,
            containers,
            agent_cpu,
            agent_memory,
            env,
        }),
        problems: p,
    }
}

/// The secrets a pod names, with the annotation each output came from.
struct Sources<'a> {
    secrets: Vec<SecretSpec>,
    /// Annotation key (or `objects[i]`) of each secret, for duplicate reports.
    origin: Vec<String>,
    /// `format-<file>` annotations: file → (key, value).
    formats: BTreeMap<&'a str, (&'a str, &'a str)>,
    /// `template-<file>` annotations, compiled.
    templates: Vec<TemplateSpec>,
    /// `secret-<dir>` selectors (§3c), with their annotation keys.
    selections: Vec<(SelectionSpec, String)>,
}

/// Every `secret-*` and `objects` annotation, and unknown keys reported;
/// `None` when the pod names no secrets.
fn read_sources<'a>(a: &'a BTreeMap<String, String>, p: &mut Problems) -> Option<Sources<'a>> {
    // Counted before parsing anything, so an oversized pod costs one pass.
    let Counts {
        named,
        env_vars,
        templates,
    } = Counts::of(a);
    if templates > template::MAX_TEMPLATES {
        p.push(
            keys::TEMPLATE_PREFIX.trim_end_matches('-'),
            format!(
                "the pod has {templates} template annotations; the limit is {}",
                template::MAX_TEMPLATES
            ),
        );
        return None;
    }
    if env_vars > MAX_SECRETS {
        p.push(
            keys::ENV_PREFIX.trim_end_matches('-'),
            format!("the pod has {env_vars} env annotations; the limit is {MAX_SECRETS}"),
        );
        return None;
    }
    let over_limit = named > MAX_SECRETS;
    if over_limit {
        p.push(
            keys::SECRET_PREFIX.trim_end_matches('-'),
            format!("the pod has {named} secret annotations; the limit is {MAX_SECRETS}"),
        );
    }
    let mut out = Sources {
        secrets: Vec::new(),
        origin: Vec::new(),
        formats: BTreeMap::new(),
        templates: Vec::new(),
        selections: Vec::new(),
    };
    // Env and template annotations name secrets too: without a source they must be denied, not ignored.
    let mut named_any = named > 0 || env_vars > 0 || templates > 0;
    for (key, value) in a {
        if let Some(file) = key.strip_prefix(keys::SECRET_PREFIX) {
            if !over_limit {
                out.secret(key, file, value, p);
            }
        } else if let Some(file) = key.strip_prefix(keys::TEMPLATE_PREFIX) {
            out.template(key, file, value, p);
        } else if let Some(file) = key.strip_prefix(keys::FORMAT_PREFIX) {
            out.formats.insert(file, (key, value));
        } else if key == keys::OBJECTS {
            named_any = true;
            match parse_objects(value) {
                Ok(specs) => {
                    out.origin
                        .extend((0..specs.len()).map(|i| format!("{}[{i}]", keys::OBJECTS)));
                    out.secrets.extend(specs);
                }
                Err(errs) => errs.into_iter().for_each(|e| p.push(key, e)),
            }
        } else if env::is_env_key(key) {
            // Read by `env::read` once the outputs are known.
        } else if is_unknown(key) {
            p.push(
                key,
                "unknown annotation (check the spelling against the documentation)",
            );
        }
    }
    out.check_totals(p);
    named_any.then_some(out)
}

/// How many keys of each counted kind a pod has.
struct Counts {
    named: usize,
    env_vars: usize,
    templates: usize,
}

impl Counts {
    fn of(a: &BTreeMap<String, String>) -> Counts {
        let count = |f: &dyn Fn(&str) -> bool| a.keys().filter(|k| f(k)).count();
        Counts {
            named: count(&|k| k.starts_with(keys::SECRET_PREFIX)),
            env_vars: count(&|k| env::is_env_key(k)),
            templates: count(&|k| k.starts_with(keys::TEMPLATE_PREFIX)),
        }
    }
}

impl Sources<'_> {
    /// Limits on what the annotations add up to (objects included).
    fn check_totals(&self, p: &mut Problems) {
        if self.selections.len() > select::MAX_SELECTORS {
            p.push(
                keys::SECRET_PREFIX.trim_end_matches('-'),
                format!(
                    "the pod has {} selectors (prefix, ssm path or tag); the limit is {}",
                    self.selections.len(),
                    select::MAX_SELECTORS
                ),
            );
        }
        if self.secrets.len() > MAX_SECRETS {
            p.push(
                keys::OBJECTS,
                format!(
                    "the pod names {} secrets; the limit is {MAX_SECRETS}",
                    self.secrets.len()
                ),
            );
        }
    }
}

/// A key under our domain that this version does not know.
fn is_unknown(key: &str) -> bool {
    key.starts_with(keys::DOMAIN)
        && key[keys::DOMAIN.len()..].starts_with('/')
        && !keys::KNOWN.contains(&key)
}

impl Sources<'_> {
    fn secret(&mut self, key: &str, file: &str, value: &str, p: &mut Problems) {
        if let Err(e) = paths::check_relative(file, false) {
            p.push(key, format!("file name {file:?} {e}"));
            return;
        }
        if select::is_selector(value) {
            match Selector::parse(value) {
                Ok(select) => self.selections.push((
                    SelectionSpec {
                        select,
                        path: file.to_string(),
                        format: Format::Raw,
                    },
                    key.to_string(),
                )),
                Err(e) => p.push(key, e),
            }
            return;
        }
        match SecretRef::parse(value) {
            Ok(source) => {
                self.secrets.push(SecretSpec::new(source, file));
                self.origin.push(key.to_string());
            }
            Err(e) => p.push(key, e),
        }
    }

    /// A `template-<file>` annotation, compiled now so a syntax error denies the pod.
    fn template(&mut self, key: &str, file: &str, value: &str, p: &mut Problems) {
        if let Err(e) = paths::check_relative(file, false) {
            p.push(key, format!("file name {file:?} {e}"));
            return;
        }
        match template::check(value) {
            Ok(()) => self.templates.push(TemplateSpec {
                path: file.to_string(),
                template: value.to_string(),
            }),
            Err(e) => p.push(key, e),
        }
    }

    /// Templates need secrets to render from; `format: none` needs a template to use it.
    fn check_templates(&self, p: &mut Problems) {
        if !self.templates.is_empty() && self.secrets.is_empty() && self.selections.is_empty() {
            p.push(
                keys::TEMPLATE_PREFIX.trim_end_matches('-'),
                "templates render from secrets, but the pod names none (add secret-* or objects annotations)",
            );
        }
        if !self.templates.is_empty() {
            return;
        }
        let specs = self.secrets.iter().zip(&self.origin);
        for (s, from) in specs.filter(|(s, _)| s.format == Format::NoFile) {
            p.push(
                annotation_of(from),
                format!(
                    "format none writes no file for {:?}, and no {}* annotation uses it",
                    s.path,
                    keys::TEMPLATE_PREFIX
                ),
            );
        }
    }

    /// Formats apply to `secret-<file>` annotations only; objects carry their own `format`.
    fn apply_formats(&mut self, p: &mut Problems) {
        let by_file: BTreeMap<&str, usize> = self
            .secrets
            .iter()
            .zip(&self.origin)
            .enumerate()
            .filter(|(_, (_, from))| from.starts_with(keys::SECRET_PREFIX))
            .map(|(i, (s, _))| (s.path.as_str(), i))
            .collect();
        let mut set = Vec::new();
        for (file, (key, value)) in &self.formats {
            match (Format::parse(value.trim()), by_file.get(file)) {
                (None, _) => p.push(
                    key,
                    format!("{value:?} is not raw, dotenv, json, yaml, properties, files or none"),
                ),
                (Some(f), None) => match self.selections.iter_mut().find(|s| s.0.path == *file) {
                    Some(sel) => sel.0.format = f,
                    None => p.push(
                        key,
                        format!("no matching {}{file} annotation", keys::SECRET_PREFIX),
                    ),
                },
                (Some(f), Some(&i)) => set.push((i, f)),
            }
        }
        for (i, f) in set {
            self.secrets[i].format = f;
        }
    }
}

/// Annotation values, trimmed; an empty value counts as absent.
struct Values<'a>(&'a BTreeMap<String, String>);

impl<'a> Values<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

/// `mode`, durations, mount path, regions, role, permissions, on-change and
/// node-role opt-in; an invalid value is reported and replaced by its default.
fn behaviour(values: &Values<'_>, p: &mut Problems) -> AgentConfig {
    let get = |k: &str| values.get(k);
    let mode = match get(keys::MODE) {
        None | Some("init") => Mode::Init,
        Some("sidecar") => Mode::Sidecar,
        Some(other) => {
            p.push(keys::MODE, format!("{other:?} is not init or sidecar"));
            Mode::Init
        }
    };
    let mut cfg = AgentConfig {
        mode,
        ..AgentConfig::default()
    };
    cfg.refresh_interval_secs = duration(values, p, keys::REFRESH_INTERVAL, REFRESH_BOUNDS);
    cfg.startup_timeout_secs = duration(values, p, keys::STARTUP_TIMEOUT, STARTUP_BOUNDS);
    cfg.mount_path = match get(keys::MOUNT_PATH) {
        None => DEFAULT_MOUNT_PATH.to_string(),
        Some(v) => match paths::check_absolute(v) {
            Ok(()) => v.trim_end_matches('/').to_string(),
            Err(e) => {
                p.push(keys::MOUNT_PATH, format!("{v:?} {e}"));
                DEFAULT_MOUNT_PATH.to_string()
            }
        },
    };
    let mut opt = |key: &str, check: &dyn Fn(&str) -> Result<String, String>| {
        get(key).and_then(|v| check(v).map_err(|e| p.push(key, e)).ok())
    };
    cfg.region = opt(keys::REGION, &validate::check_region);
    cfg.failover_region = opt(keys::FAILOVER_REGION, &validate::check_region);
    cfg.role_arn = opt(keys::ROLE_ARN, &validate::check_role_arn);
    if cfg.failover_region.is_some() && cfg.failover_region == cfg.region {
        p.push(keys::FAILOVER_REGION, "is the same as the primary region");
    }
    cfg.file_permission = get(keys::FILE_PERMISSION).and_then(|v| {
        validate::parse_mode(v)
            .map_err(|e| p.push(keys::FILE_PERMISSION, e))
            .ok()
    });
    cfg.on_change = get(keys::ON_CHANGE).and_then(|v| {
        OnChange::parse(v)
            .map_err(|e| p.push(keys::ON_CHANGE, e))
            .ok()
    });
    if cfg.on_change.is_some() && cfg.mode == Mode::Init {
        p.push(
            keys::ON_CHANGE,
            "only takes effect with secrets-injector.io/mode: sidecar",
        );
    }
    cfg.allow_node_role = match get(keys::ALLOW_NODE_ROLE) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            p.push(
                keys::ALLOW_NODE_ROLE,
                format!("{other:?} is not true or false"),
            );
            false
        }
    };
    cfg
}

/// Allowed range of a duration annotation and its default.
struct Bounds {
    default: u64,
    /// Smallest allowed value and the words for it.
    min: (u64, &'static str),
    /// Largest allowed value and the words for it.
    max: (u64, &'static str),
}

const REFRESH_BOUNDS: Bounds = Bounds {
    default: DEFAULT_REFRESH_SECS,
    min: (MIN_REFRESH_SECS, "is below the minimum of 30s"),
    max: (MAX_REFRESH_SECS, "is above the maximum of 24h"),
};

const STARTUP_BOUNDS: Bounds = Bounds {
    default: DEFAULT_STARTUP_TIMEOUT_SECS,
    min: (1, "must be greater than zero"),
    max: (MAX_STARTUP_TIMEOUT_SECS, "is above the maximum of 1h"),
};

fn duration(values: &Values<'_>, p: &mut Problems, key: &str, bounds: Bounds) -> u64 {
    let Some(v) = values.get(key) else {
        return bounds.default;
    };
    let problem = match validate::parse_duration_secs(v) {
        Ok(s) if s < bounds.min.0 && bounds.min.0 == 1 => bounds.min.1.to_string(),
        Ok(s) if s < bounds.min.0 => format!("{v:?} {}", bounds.min.1),
        Ok(s) if s > bounds.max.0 => format!("{v:?} {}", bounds.max.1),
        Ok(s) => return s,
        Err(e) => e,
    };
    p.push(key, problem);
    bounds.default
}

/// The `containers` list; names are checked as Kubernetes container names.
fn container_names(v: &str, p: &mut Problems) -> Vec<String> {
    let names: Vec<String> = v
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    if names.is_empty() {
        p.push(keys::CONTAINERS, "lists no container names");
    }
    for n in &names {
        if let Err(e) = validate::check_container_name(n) {
            p.push(keys::CONTAINERS, e);
        }
    }
    names
}

/// Every output path (main file and JMESPath aliases) must be safe and distinct,
/// and no path may sit inside another (`a` and `a/b`). Sorted-map lookups keep
/// this O(n log n): a pod cannot buy quadratic work with many annotations.
fn check_output_paths(sources: &Sources<'_>, p: &mut Problems) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let template_keys: Vec<String> = sources
        .templates
        .iter()
        .map(|t| format!("{}{}", keys::TEMPLATE_PREFIX, t.path))
        .collect();
    let secrets = sources
        .secrets
        .iter()
        .zip(&sources.origin)
        .map(|(spec, from)| {
            let outputs = std::iter::once(spec.path.as_str())
                .chain(spec.jmes_path.iter().map(|j| j.alias.as_str()));
            (outputs.collect::<Vec<_>>(), from.as_str())
        });
    let templates = sources
        .templates
        .iter()
        .zip(&template_keys)
        .map(|(t, k)| (vec![t.path.as_str()], k.as_str()));
    let selections = sources
        .selections
        .iter()
        .map(|(s, k)| (vec![s.path.as_str()], k.as_str()));
    for (outputs, from) in secrets.chain(templates).chain(selections) {
        for path in outputs {
            if let Err(e) = paths::check_relative(path, true) {
                p.push(annotation_of(from), format!("output path {path:?} {e}"));
                continue;
            }
            if let Some(other) = collision(&seen, path) {
                p.push(
                    annotation_of(from),
                    format!("output path {path:?} collides with the one from {other}"),
                );
                continue;
            }
            seen.insert(path, from);
        }
    }
}

/// The origin of a seen path equal to `path`, above it, or below it.
fn collision<'a>(seen: &BTreeMap<&str, &'a str>, path: &str) -> Option<&'a str> {
    let ancestors = path
        .match_indices('/')
        .map(|(i, _)| &path[..i])
        .chain(std::iter::once(path));
    for a in ancestors {
        if let Some(from) = seen.get(a) {
            return Some(from);
        }
    }
    let below = format!("{path}/");
    seen.range(below.as_str()..)
        .next()
        .filter(|(q, _)| paths::overlaps(q, path))
        .map(|(_, from)| *from)
}

fn annotation_of(origin: &str) -> &str {
    origin.split('[').next().unwrap_or(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse_ok(pairs: &[(&str, &str)]) -> InjectionRequest {
        parse_annotations(&ann(pairs))
            .into_result()
            .unwrap()
            .unwrap()
    }

    fn problems(pairs: &[(&str, &str)]) -> String {
        parse_annotations(&ann(pairs))
            .into_result()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn no_secrets_means_no_injection() {
        assert_eq!(parse_annotations(&ann(&[])).into_result().unwrap(), None);
        assert_eq!(
            parse_annotations(&ann(&[(keys::MODE, "sidecar"), ("other.io/x", "y")]))
                .into_result()
                .unwrap(),
            None
        );
    }

    #[test]
    fn durations_have_an_upper_bound() {
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            (keys::REFRESH_INTERVAL, "5000000000000000h"),
            (keys::STARTUP_TIMEOUT, "2h"),
        ]);
        assert!(
            msg.contains("refresh-interval: \"5000000000000000h\" is above the maximum of 24h"),
            "{msg}"
        );
        assert!(
            msg.contains("startup-timeout: \"2h\" is above the maximum of 1h"),
            "{msg}"
        );
        let r = parse_ok(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            (keys::REFRESH_INTERVAL, "24h"),
            (keys::STARTUP_TIMEOUT, "1h"),
        ]);
        assert_eq!(
            (
                r.config.refresh_interval_secs,
                r.config.startup_timeout_secs
            ),
            (86400, 3600)
        );
    }

    #[test]
    fn a_misspelt_secret_key_alone_is_denied_not_ignored() {
        let msg = problems(&[("secrets-injector.io/secrets-db", "prod/db")]);
        assert!(
            msg.contains("secrets-injector.io/secrets-db: unknown annotation"),
            "{msg}"
        );
        let msg = problems(&[(keys::INJECT, "sometimes")]);
        assert!(msg.contains("is not true or false"), "{msg}");
    }

    #[test]
    fn opt_out_wins() {
        let a = ann(&[
            (keys::INJECT, "false"),
            ("secrets-injector.io/secret-db", "bad ref"),
        ]);
        assert_eq!(parse_annotations(&a).into_result().unwrap(), None);
    }

    #[test]
    fn defaults() {
        let r = parse_ok(&[("secrets-injector.io/secret-db", "prod/db")]);
        assert_eq!(r.config.mode, Mode::Init);
        assert_eq!(r.config.mount_path, "/mnt/secrets");
        assert_eq!(r.config.refresh_interval_secs, 300);
        assert_eq!(r.config.startup_timeout_secs, 60);
        assert_eq!(
            r.config.secrets,
            vec![SecretSpec::new(SecretRef::parse("prod/db").unwrap(), "db")]
        );
        assert_eq!(r.containers, None);
        assert!(!r.config.allow_node_role);
    }

    #[test]
    fn every_annotation_is_read() {
        let r = parse_ok(&[
            ("secrets-injector.io/secret-db.json", "prod/db"),
            ("secrets-injector.io/format-db.json", "files"),
            ("secrets-injector.io/secret-key", "ssm:/app/key"),
            ("secrets-injector.io/format-key", "dotenv"),
            (
                keys::OBJECTS,
                "- {objectName: other, objectType: secretsmanager, objectAlias: o/x}",
            ),
            (keys::INJECT, "true"),
            (keys::MODE, "sidecar"),
            (keys::REFRESH_INTERVAL, "1h30m"),
            (keys::MOUNT_PATH, "/var/run/secrets/app/"),
            (keys::CONTAINERS, "app, worker"),
            (keys::REGION, "eu-west-1"),
            (keys::FAILOVER_REGION, "eu-central-1"),
            (keys::ROLE_ARN, "arn:aws:iam::123456789012:role/reader"),
            (keys::FILE_PERMISSION, "0400"),
            (keys::ON_CHANGE, "signal:SIGHUP:nginx"),
            (keys::STARTUP_TIMEOUT, "2m"),
            (keys::AGENT_CPU, "50m"),
            (keys::AGENT_MEMORY, "32Mi"),
            (keys::ALLOW_NODE_ROLE, "true"),
        ]);
        let c = &r.config;
        assert_eq!(c.mode, Mode::Sidecar);
        assert_eq!(c.refresh_interval_secs, 5400);
        assert_eq!(c.mount_path, "/var/run/secrets/app");
        assert_eq!(r.containers, Some(vec!["app".into(), "worker".into()]));
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.failover_region.as_deref(), Some("eu-central-1"));
        assert_eq!(
            c.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/reader")
        );
        assert_eq!(c.file_permission, Some(0o400));
        assert_eq!(
            c.on_change,
            Some(OnChange::Signal {
                signal: "SIGHUP".into(),
                process: "nginx".into()
            })
        );
        assert_eq!(c.startup_timeout_secs, 120);
        assert_eq!(r.agent_cpu.as_ref().map(Quantity::as_str), Some("50m"));
        assert_eq!(r.agent_memory.as_ref().map(Quantity::as_str), Some("32Mi"));
        assert!(c.allow_node_role);
        let by_path = |p: &str| c.secrets.iter().find(|s| s.path == p).unwrap();
        assert_eq!(by_path("db.json").format, Format::Files);
        assert_eq!(by_path("key").format, Format::Dotenv);
        assert_eq!(by_path("o/x").source.id(), "other");
    }

    #[test]
    fn reports_every_problem_naming_its_annotation() {
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "has space"),
            ("secrets-injector.io/secret-..data", "prod/db"),
            ("secrets-injector.io/format-db", "toml"),
            ("secrets-injector.io/format-nothing", "raw"),
            (keys::OBJECTS, "- objectName: ["),
            (keys::MODE, "daemon"),
            (keys::REFRESH_INTERVAL, "10s"),
            (keys::STARTUP_TIMEOUT, "soon"),
            (keys::MOUNT_PATH, "relative/path"),
            (keys::CONTAINERS, "App"),
            (keys::REGION, "moon-1"),
            (keys::FAILOVER_REGION, "x"),
            (keys::ROLE_ARN, "reader"),
            (keys::FILE_PERMISSION, "999"),
            (keys::ON_CHANGE, "exec:/bin/true"),
            (keys::AGENT_CPU, "lots"),
            (keys::AGENT_MEMORY, "-1"),
            (keys::ALLOW_NODE_ROLE, "maybe"),
            (keys::INJECT, "sometimes"),
            ("secrets-injector.io/refresh-intreval", "5m"),
        ]);
        for want in [
            "secrets-injector.io/secret-db: \"has space\" is not a valid Secrets Manager name",
            "secrets-injector.io/secret-..data: file name \"..data\"",
            "secrets-injector.io/format-db: \"toml\" is not raw",
            "secrets-injector.io/format-nothing: no matching secrets-injector.io/secret-nothing annotation",
            "secrets-injector.io/objects: is not a valid ASCP objects list",
            "secrets-injector.io/mode: \"daemon\" is not init or sidecar",
            "secrets-injector.io/refresh-interval: \"10s\" is below the minimum of 30s",
            "secrets-injector.io/startup-timeout: \"soon\" is not a duration",
            "secrets-injector.io/mount-path: \"relative/path\" must be an absolute path",
            "secrets-injector.io/containers: \"App\" is not a valid container name",
            "secrets-injector.io/region: \"moon-1\" is not an AWS region",
            "secrets-injector.io/failover-region: \"x\" is not an AWS region",
            "secrets-injector.io/role-arn: \"reader\" is not an IAM role ARN",
            "secrets-injector.io/file-permission: \"999\" is not an octal file mode",
            "secrets-injector.io/on-change: \"exec:/bin/true\": expected signal",
            "secrets-injector.io/agent-cpu: \"lots\" is not a Kubernetes quantity",
            "secrets-injector.io/agent-memory: \"-1\" is not a Kubernetes quantity",
            "secrets-injector.io/allow-node-role: \"maybe\" is not true or false",
            "secrets-injector.io/inject: \"sometimes\" is not true or false",
            "secrets-injector.io/refresh-intreval: unknown annotation",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
        assert!(
            msg.starts_with("secrets-injector: 20 invalid annotations: [1] "),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_and_nested_output_paths_are_rejected() {
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            (
                keys::OBJECTS,
                "- {objectName: a, objectType: secretsmanager, objectAlias: db}\n- {objectName: b, objectType: secretsmanager, objectAlias: x, jmesPath: [{path: u, objectAlias: x/u}]}",
            ),
        ]);
        assert!(msg.contains("secrets-injector.io/secret-db: output path \"db\" collides with the one from secrets-injector.io/objects[0]"), "{msg}");
        assert!(
            msg.contains(
                "output path \"x/u\" collides with the one from secrets-injector.io/objects[1]"
            ),
            "{msg}"
        );
    }

    #[test]
    fn unsafe_object_aliases_are_rejected() {
        for (alias, want) in [
            ("../etc/x", "\"..\" segments"),
            ("/abs", "must be relative"),
            ("", "is empty"),
        ] {
            let yaml =
                format!("- {{objectName: a, objectType: secretsmanager, objectAlias: {alias:?}}}");
            let msg = problems(&[(keys::OBJECTS, &yaml)]);
            assert!(msg.contains(want), "{alias:?}: {msg}");
        }
        let msg = problems(&[(
            keys::OBJECTS,
            "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: u, objectAlias: \"a\\u0000b\"}]}",
        )]);
        assert!(msg.contains("NUL"), "{msg}");
    }

    #[test]
    fn on_change_requires_sidecar() {
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            (keys::ON_CHANGE, "signal:HUP:app"),
        ]);
        assert!(
            msg.contains("only takes effect with secrets-injector.io/mode: sidecar"),
            "{msg}"
        );
    }

    #[test]
    fn failover_region_must_differ() {
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            (keys::REGION, "us-east-1"),
            (keys::FAILOVER_REGION, "us-east-1"),
        ]);
        assert!(msg.contains("same as the primary region"), "{msg}");
    }

    #[test]
    fn other_domains_are_ignored() {
        let r = parse_ok(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            ("vault.hashicorp.com/agent-inject", "true"),
            ("secrets-injector.iox/y", "z"),
        ]);
        assert_eq!(r.config.secrets.len(), 1);
    }

    #[test]
    fn status_annotations_are_known() {
        let r = parse_ok(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            (keys::STATUS, "injected"),
            (keys::CONFIG_HASH, "abc"),
        ]);
        assert_eq!(r.config.secrets.len(), 1);
    }

    #[test]
    fn templates_are_compiled_into_the_config() {
        let r = parse_ok(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            ("secrets-injector.io/format-db", "none"),
            (
                "secrets-injector.io/template-dsn",
                "postgres://{{ secrets.db.user }}@h",
            ),
            ("secrets-injector.io/env-DSN", "dsn"),
        ]);
        assert_eq!(r.config.secrets[0].format, Format::NoFile);
        assert_eq!(
            r.config.templates,
            vec![TemplateSpec {
                path: "dsn".into(),
                template: "postgres://{{ secrets.db.user }}@h".into()
            }]
        );
    }

    #[test]
    fn template_problems_name_the_annotation_and_line() {
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            ("secrets-injector.io/template-a", "ok\n{{ secrets.db "),
            ("secrets-injector.io/template-b", "{% include 'x' %}"),
            ("secrets-injector.io/template-..x", "y"),
            ("secrets-injector.io/template-db", "collides"),
            ("secrets-injector.io/env-X", "db"),
        ]);
        for want in [
            "secrets-injector.io/template-a: syntax error on line 2",
            "secrets-injector.io/template-b: syntax error on line 1",
            "not available in secrets-injector templates",
            "secrets-injector.io/template-..x: file name",
            "secrets-injector.io/template-db: output path \"db\" collides with the one from secrets-injector.io/secret-db",
        ] {
            assert!(msg.contains(want), "missing {want:?} in:\n{msg}");
        }
    }

    #[test]
    fn templates_need_secrets_and_format_none_needs_a_template() {
        let msg = problems(&[("secrets-injector.io/template-a", "x")]);
        assert!(msg.contains("templates render from secrets"), "{msg}");
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            ("secrets-injector.io/format-db", "none"),
        ]);
        assert!(
            msg.contains("secrets-injector.io/secret-db: format none writes no file"),
            "{msg}"
        );
        let msg = problems(&[
            ("secrets-injector.io/secret-db", "prod/db"),
            ("secrets-injector.io/format-db", "none"),
            ("secrets-injector.io/template-t", "{{ secrets.db }}"),
            ("secrets-injector.io/env-X", "db"),
        ]);
        assert!(msg.contains("env-X: \"db\" is not a file"), "{msg}");
    }

    #[test]
    fn selectors_per_pod_are_capped() {
        let many: Vec<(String, String)> = (0..=select::MAX_SELECTORS)
            .map(|i| {
                (
                    format!("secrets-injector.io/secret-s{i}"),
                    format!("p{i}/*"),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let msg = problems(&refs);
        assert!(msg.contains("the pod has 21 selectors"), "{msg}");
        // Exactly at the limit: accepted.
        let r = parse_ok(&refs[..select::MAX_SELECTORS]);
        assert_eq!(r.config.selections.len(), select::MAX_SELECTORS);
    }

    #[test]
    fn selectors_become_selections_with_their_format() {
        let r = parse_ok(&[
            ("secrets-injector.io/secret-orders", "prod/orders/*"),
            ("secrets-injector.io/format-orders", "json"),
            ("secrets-injector.io/secret-params", "ssm:/prod/orders/*"),
            (
                "secrets-injector.io/secret-tagged",
                "tag:team=orders,env=prod",
            ),
            (
                "secrets-injector.io/template-cfg",
                "{{ secrets[\"orders\"][\"api-key\"] }}",
            ),
        ]);
        assert!(r.config.secrets.is_empty());
        let s = &r.config.selections;
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].path.as_str(), s[0].format), ("orders", Format::Json));
        assert_eq!(s[1].select.to_string(), "ssm:/prod/orders/*");
        assert_eq!(s[2].select.to_string(), "tag:team=orders,env=prod");
    }

    #[test]
    fn bad_selectors_and_colliding_directories_are_denied() {
        let msg = problems(&[
            ("secrets-injector.io/secret-all", "*"),
            ("secrets-injector.io/secret-orders", "prod/orders/*"),
            (
                keys::OBJECTS,
                "- {objectName: a, objectType: secretsmanager, objectAlias: orders/x}",
            ),
        ]);
        assert!(
            msg.contains("secrets-injector.io/secret-all: \"*\": selects every secret"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "output path \"orders\" collides with the one from secrets-injector.io/objects[0]"
            ),
            "{msg}"
        );
    }

    /// Median wall time of `runs` calls of `parse_annotations` on `a`.
    fn median_parse(a: &BTreeMap<String, String>, runs: usize) -> std::time::Duration {
        let mut t: Vec<_> = (0..runs)
            .map(|_| {
                let start = std::time::Instant::now();
                std::hint::black_box(parse_annotations(std::hint::black_box(a)));
                start.elapsed()
            })
            .collect();
        t.sort();
        t[runs / 2]
    }

    #[test]
    fn a_flood_of_secret_annotations_costs_linear_work() {
        // A pod author's worst case before the API server's size check: 40,000
        // `secret-*` keys. Refused by count before any is parsed, and never
        // compared pairwise: compared with a valid 400-secret pod in the same
        // run (100x the keys), it must not cost more than 100x (it cost ~10,000x
        // when output paths were compared pairwise).
        let many = |n: usize| -> BTreeMap<String, String> {
            (0..n)
                .map(|i| {
                    (
                        format!("secrets-injector.io/secret-f{i}"),
                        format!("prod/s{i}"),
                    )
                })
                .collect()
        };
        let flood = many(40_000);
        let parsed = parse_annotations(&flood);
        assert_eq!(parsed.problems.0.len(), 1, "{}", parsed.problems);
        assert!(
            parsed
                .problems
                .to_string()
                .contains("40000 secret annotations; the limit is 500"),
            "{}",
            parsed.problems
        );
        let valid = many(400);
        assert!(parse_annotations(&valid).problems.is_empty());
        let (t_flood, t_valid) = (median_parse(&flood, 5), median_parse(&valid, 5));
        assert!(
            t_flood < t_valid * 100,
            "40,000 keys took {t_flood:?}, 400 keys {t_valid:?}"
        );
    }

    #[test]
    fn output_paths_are_checked_without_pairwise_work_at_the_limit() {
        // 500 secrets at the limit with one collision: the object's `d100/inner`
        // (read first: `objects` sorts before `secret-*`) sits below `secret-d100`.
        let mut a: BTreeMap<String, String> = (0..499)
            .map(|i| {
                (
                    format!("secrets-injector.io/secret-d{i:03}"),
                    format!("prod/s{i}"),
                )
            })
            .collect();
        a.insert(
            "secrets-injector.io/objects".into(),
            "- objectName: prod/x\n  objectType: secretsmanager\n  objectAlias: d100/inner\n"
                .into(),
        );
        let p = parse_annotations(&a).problems.to_string();
        assert!(
            p.contains(
                "secrets-injector.io/secret-d100: output path \"d100\" collides with the one from secrets-injector.io/objects[0]"
            ),
            "{p}"
        );
    }
}
