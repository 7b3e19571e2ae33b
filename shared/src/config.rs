//! `AgentConfig` v1: the only thing the webhook hands the agent (env
//! `SECRETS_INJECTOR_CONFIG`). Versioned; unknown versions are rejected.

use serde::{Deserialize, Serialize};

use crate::Error;
pub use crate::on_change::OnChange;
use crate::refs::SecretRef;

/// The config schema version this build writes and reads.
pub const CONFIG_VERSION: u32 = 1;

/// Default mount path in app containers.
pub const DEFAULT_MOUNT_PATH: &str = "/mnt/secrets";
/// Default sidecar poll period.
pub const DEFAULT_REFRESH_SECS: u64 = 300;
/// Smallest allowed sidecar poll period.
pub const MIN_REFRESH_SECS: u64 = 30;
/// Longest sidecar refresh interval (a day): longer would hide rotations.
pub const MAX_REFRESH_SECS: u64 = 24 * 3600;
/// Longest init startup timeout (an hour): a pod should fail, not wait for days.
pub const MAX_STARTUP_TIMEOUT_SECS: u64 = 3600;
/// Default time an init agent retries transient errors.
pub const DEFAULT_STARTUP_TIMEOUT_SECS: u64 = 60;
/// Default file mode when the owner (fsGroup / app uid) is known.
pub const DEFAULT_MODE_OWNED: u32 = 0o440;
/// Default file mode when the owner is unknown.
pub const DEFAULT_MODE_UNOWNED: u32 = 0o444;

/// `init` fetches once; `sidecar` fetches, then refreshes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Init,
    Sidecar,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Init => "init",
            Mode::Sidecar => "sidecar",
        }
    }
}

/// How a secret value is rendered into files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Bytes as stored.
    #[default]
    Raw,
    /// `KEY=value` lines from a JSON object, safely quoted.
    Dotenv,
    /// Pretty JSON (value must be JSON).
    Json,
    /// YAML from a JSON value.
    Yaml,
    /// Java `.properties` from a JSON object.
    Properties,
    /// `<path>/` becomes a directory with one file per top-level JSON key.
    Files,
    /// No file: the secret is fetched only for templates (`secrets[<path>]`).
    #[serde(rename = "none")]
    NoFile,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::Raw,
        Format::Dotenv,
        Format::Json,
        Format::Yaml,
        Format::Properties,
        Format::Files,
        Format::NoFile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Dotenv => "dotenv",
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Properties => "properties",
            Format::Files => "files",
            Format::NoFile => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One extra file cut out of a JSON secret with a JMESPath expression (ASCP `jmesPath`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JmesPathEntry {
    pub path: String,
    /// Relative output path of the extracted value.
    pub alias: String,
}

/// Owner the agent gives written files (from the pod's securityContext).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Owner {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// One secret to fetch and the files it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretSpec {
    /// Where the value comes from.
    pub source: SecretRef,
    /// Relative output path (a directory for [`Format::Files`]).
    pub path: String,
    #[serde(default)]
    pub format: Format,
    /// Pinned Secrets Manager `VersionId` (ASCP `objectVersion`) or SSM version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Pinned Secrets Manager `VersionStage` (ASCP `objectVersionLabel`) or SSM label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jmes_path: Vec<JmesPathEntry>,
    /// Octal file mode for this secret's files; `None` = config default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_permission: Option<u32>,
    /// A missing optional secret is skipped instead of failing the pod.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// Object read in the failover region instead of `source` (ASCP `failoverObject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<SecretRef>,
}

impl SecretSpec {
    /// A spec with defaults for everything but source and path.
    pub fn new(source: SecretRef, path: impl Into<String>) -> Self {
        SecretSpec {
            source,
            path: path.into(),
            format: Format::Raw,
            version_id: None,
            version_stage: None,
            jmes_path: Vec::new(),
            file_permission: None,
            optional: false,
            failover: None,
        }
    }

    /// True when a version or label is pinned (fetched with `GetSecretValue`).
    pub fn is_pinned(&self) -> bool {
        self.version_id.is_some() || self.version_stage.is_some()
    }
}

/// One file rendered from the fetched secrets (`template-<path>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TemplateSpec {
    /// Relative output path.
    pub path: String,
    /// minijinja source; `secrets[<name>]` is the value written under `<name>`.
    pub template: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Everything the agent needs, rendered by the webhook from the pod's annotations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Schema version, always [`CONFIG_VERSION`] when written by this build.
    pub version: u32,
    #[serde(default)]
    pub mode: Mode,
    /// Absolute directory the agent writes into (the shared in-memory volume).
    pub mount_path: String,
    /// Primary region; `None` = the pod's `AWS_REGION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Region used on 5xx/connect errors in the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_region: Option<String>,
    /// Role assumed on top of the pod identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Sidecar poll period in seconds (±10% jitter applied by the agent).
    pub refresh_interval_secs: u64,
    /// Init: how long transient errors are retried, in seconds.
    pub startup_timeout_secs: u64,
    /// Default octal mode for written files; `None` = 0440 with a known owner, else 0444.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_permission: Option<u32>,
    /// Owner of written files, when the webhook knows the app's uid/fsGroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_change: Option<OnChange>,
    /// Allow falling back to the node's instance role (IMDS). Off by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_node_role: bool,
    /// Some container reads env from the files: install the exec wrapper
    /// (`secrets-injector-env`) in the volume before the first write.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exec_wrapper: bool,
    pub secrets: Vec<SecretSpec>,
    /// Directories of many secrets, by prefix, SSM path or tags (§3c).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selections: Vec<crate::select::SelectionSpec>,
    /// Files rendered from the secrets after each fetch, in the same atomic write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateSpec>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            version: CONFIG_VERSION,
            mode: Mode::Init,
            mount_path: DEFAULT_MOUNT_PATH.to_string(),
            region: None,
            failover_region: None,
            role_arn: None,
            refresh_interval_secs: DEFAULT_REFRESH_SECS,
            startup_timeout_secs: DEFAULT_STARTUP_TIMEOUT_SECS,
            file_permission: None,
            owner: None,
            on_change: None,
            allow_node_role: false,
            exec_wrapper: false,
            secrets: Vec::new(),
            selections: Vec::new(),
            templates: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
struct VersionProbe {
    version: Option<serde_json::Value>,
}

impl AgentConfig {
    /// Compact JSON, as put in `SECRETS_INJECTOR_CONFIG`. Field order is fixed,
    /// so equal configs give equal strings (the webhook hashes it).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse and check the version first, so an agent older than the webhook
    /// says so instead of failing on a field it does not know.
    pub fn from_json(s: &str) -> Result<AgentConfig, Error> {
        let probe: VersionProbe =
            serde_json::from_str(s).map_err(|e| Error::ConfigJson(e.to_string()))?;
        match probe.version {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(CONFIG_VERSION as u64) => {}
            Some(v) => {
                return Err(Error::ConfigVersion {
                    found: v.to_string(),
                    expected: CONFIG_VERSION,
                });
            }
            None => {
                return Err(Error::ConfigVersion {
                    found: "missing".to_string(),
                    expected: CONFIG_VERSION,
                });
            }
        }
        let cfg: AgentConfig =
            serde_json::from_str(s).map_err(|e| Error::ConfigJson(e.to_string()))?;
        cfg.check()?;
        Ok(cfg)
    }

    /// File mode for `spec`: its own, else the config default, else 0440/0444.
    pub fn mode_for(&self, spec: &SecretSpec) -> u32 {
        spec.file_permission.unwrap_or_else(|| self.default_mode())
    }

    /// Mode of files with no mode of their own (templates): the config default, else 0440/0444.
    pub fn default_mode(&self) -> u32 {
        self.file_permission.unwrap_or(if self.owner.is_some() {
            DEFAULT_MODE_OWNED
        } else {
            DEFAULT_MODE_UNOWNED
        })
    }

    /// Invariants a hand-written `--config` file could break.
    fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if !self.mount_path.starts_with('/') {
            problems.push(format!("mount_path {:?} must be absolute", self.mount_path));
        }
        if self.refresh_interval_secs < MIN_REFRESH_SECS {
            problems.push(format!(
                "refresh_interval_secs {} is below the minimum {MIN_REFRESH_SECS}",
                self.refresh_interval_secs
            ));
        }
        if self.refresh_interval_secs > MAX_REFRESH_SECS {
            problems.push(format!(
                "refresh_interval_secs {} is above the maximum {MAX_REFRESH_SECS}",
                self.refresh_interval_secs
            ));
        }
        if self.startup_timeout_secs == 0 || self.startup_timeout_secs > MAX_STARTUP_TIMEOUT_SECS {
            problems.push(format!(
                "startup_timeout_secs {} must be between 1 and {MAX_STARTUP_TIMEOUT_SECS}",
                self.startup_timeout_secs
            ));
        }
        for mode in std::iter::once(self.file_permission)
            .chain(self.secrets.iter().map(|s| s.file_permission))
            .flatten()
        {
            // The webhook allows at most 0777; setuid/setgid/sticky never.
            if mode > 0o777 {
                problems.push(format!(
                    "file mode {mode:#o} has bits above 0777 (setuid, setgid or sticky)"
                ));
            }
        }
        for s in &self.secrets {
            for j in &s.jmes_path {
                if let Err(e) = crate::validate::check_jmes_path(&j.path) {
                    problems.push(format!("secret {}: jmesPath {e}", s.source));
                }
            }
            let paths = std::iter::once(&s.path).chain(s.jmes_path.iter().map(|j| &j.alias));
            for p in paths {
                if let Err(e) = crate::paths::check_relative(p, true) {
                    problems.push(format!("secret {}: path {p:?} {e}", s.source));
                }
            }
        }
        for sel in &self.selections {
            if let Err(e) = sel.select.check() {
                problems.push(format!("selection {}: {e}", sel.select));
            }
            if let Err(e) = crate::paths::check_relative(&sel.path, true) {
                problems.push(format!("selection {}: path {:?} {e}", sel.select, sel.path));
            }
        }
        for t in &self.templates {
            if let Err(e) = crate::paths::check_relative(&t.path, false) {
                problems.push(format!("template {:?}: path {e}", t.path));
            }
            if let Err(e) = crate::template::check(&t.template) {
                problems.push(format!("template {:?}: {e}", t.path));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::ConfigInvalid(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AgentConfig {
        let mut s = SecretSpec::new(SecretRef::parse("prod/db").unwrap(), "db.json");
        s.jmes_path.push(JmesPathEntry {
            path: "username".into(),
            alias: "db/user".into(),
        });
        s.format = Format::Files;
        let mut p = SecretSpec::new(SecretRef::parse("ssm:/app/key").unwrap(), "key");
        p.version_stage = Some("AWSPREVIOUS".into());
        p.optional = true;
        p.file_permission = Some(0o400);
        AgentConfig {
            mode: Mode::Sidecar,
            region: Some("eu-west-1".into()),
            failover_region: Some("eu-central-1".into()),
            role_arn: Some("arn:aws:iam::123456789012:role/reader".into()),
            owner: Some(Owner {
                uid: Some(1000),
                gid: Some(2000),
            }),
            on_change: Some(OnChange::Signal {
                signal: "SIGHUP".into(),
                process: "nginx".into(),
            }),
            secrets: vec![s, p],
            ..AgentConfig::default()
        }
    }

    #[test]
    fn round_trips_through_json() {
        let cfg = sample();
        let json = cfg.to_json();
        assert_eq!(AgentConfig::from_json(&json).unwrap(), cfg);
    }

    #[test]
    fn equal_configs_serialize_identically() {
        assert_eq!(sample().to_json(), sample().to_json());
    }

    #[test]
    fn rejects_unknown_version_with_clear_message() {
        let json = sample().to_json().replace("\"version\":1", "\"version\":2");
        let err = AgentConfig::from_json(&json).unwrap_err().to_string();
        assert!(err.contains("unsupported AgentConfig version 2"), "{err}");
        assert!(err.contains("agent image"), "{err}");
    }

    #[test]
    fn rejects_missing_version() {
        let err = AgentConfig::from_json(r#"{"mount_path":"/x","secrets":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("version missing"), "{err}");
    }

    #[test]
    fn rejects_non_json() {
        let err = AgentConfig::from_json("not json").unwrap_err().to_string();
        assert!(
            err.starts_with("SECRETS_INJECTOR_CONFIG is not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn rejects_unsafe_paths_in_hand_written_config() {
        let mut cfg = sample();
        cfg.secrets[0].path = "../etc/passwd".into();
        let err = AgentConfig::from_json(&cfg.to_json())
            .unwrap_err()
            .to_string();
        assert!(err.contains("../etc/passwd"), "{err}");
    }

    #[test]
    fn default_modes_follow_owner() {
        let mut cfg = sample();
        assert_eq!(cfg.mode_for(&cfg.secrets[0]), 0o440);
        assert_eq!(cfg.mode_for(&cfg.secrets[1]), 0o400);
        cfg.owner = None;
        assert_eq!(cfg.mode_for(&cfg.secrets[0]), 0o444);
        cfg.file_permission = Some(0o600);
        assert_eq!(cfg.mode_for(&cfg.secrets[0]), 0o600);
    }

    #[test]
    fn formats_parse_by_name() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("toml"), None);
    }

    #[test]
    fn hand_written_templates_and_selections_are_checked() {
        let mut cfg = sample();
        cfg.templates.push(TemplateSpec {
            path: "../t".into(),
            template: "{% include 'x' %}".into(),
        });
        cfg.selections.push(crate::select::SelectionSpec {
            select: crate::select::Selector::Prefix {
                prefix: String::new(),
            },
            path: "/abs".into(),
            format: Format::Raw,
        });
        let err = AgentConfig::from_json(&cfg.to_json())
            .unwrap_err()
            .to_string();
        for want in [
            "template \"../t\": path must be a plain file name",
            "template \"../t\": syntax error on line 1: unknown statement include",
            "selection *: selects every secret",
            "selection *: path \"/abs\" must be relative",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
        let mut ok = sample();
        ok.templates.push(TemplateSpec {
            path: "t".into(),
            template: "{{ secrets.x }}".into(),
        });
        let back = AgentConfig::from_json(&ok.to_json()).unwrap();
        assert_eq!(back, ok);
        assert!(
            !sample().to_json().contains("templates"),
            "empty lists are not written"
        );
    }

    #[test]
    fn hand_written_configs_with_unsafe_modes_or_deep_jmes_paths_are_refused() {
        let mut cfg = sample();
        cfg.file_permission = Some(0o4755);
        cfg.secrets[0].jmes_path[0].path = "[".repeat(100);
        let err = AgentConfig::from_json(&cfg.to_json())
            .unwrap_err()
            .to_string();
        assert!(err.contains("0o4755 has bits above 0777"), "{err}");
        assert!(err.contains("jmesPath is nested 100 levels deep"), "{err}");
        let mut cfg = sample();
        cfg.secrets[1].file_permission = Some(0o1444);
        let err = AgentConfig::from_json(&cfg.to_json())
            .unwrap_err()
            .to_string();
        assert!(err.contains("0o1444"), "{err}");
        let mut ok = sample();
        ok.file_permission = Some(0o777);
        AgentConfig::from_json(&ok.to_json()).unwrap();
    }
}
