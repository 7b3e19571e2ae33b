//! Seed the emulator with a value for every secret a pod names, and compute
//! the files an app container must then see. Values carry a canary marker so
//! tests can assert no value leaks into logs or termination messages.

use std::path::Path;

use secrets_injector_shared::{AgentConfig, Format, SecretRef, SecretSpec};
use serde_json::{Map, Value, json};

use crate::Moto;

/// Marker inside every seeded secret value; must never appear in any output.
pub const CANARY: &str = "CANARY-7f3a9c";

/// What one output path must contain.
#[derive(Debug, Clone)]
pub enum Expect {
    /// Exactly these bytes.
    Exact(String),
    /// A JSON document equal to this value.
    Json(Value),
    /// A directory with one file per key (strings raw, others JSON).
    Dir(Map<String, Value>),
    /// A file mentioning each of these strings: every key and value (dotenv, yaml, properties).
    Mentions(Vec<String>),
}

/// A seeded secret and the files it must produce.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub spec_index: usize,
    pub source: SecretRef,
    pub region: String,
    pub files: Vec<(String, Expect)>,
}

fn value_for(i: usize, spec: &SecretSpec) -> Value {
    let mut obj = json!({
        "username": format!("user{i}"),
        "password": format!("pw{i}-{CANARY}"),
        "host": format!("db{i}.internal"),
    });
    for entry in &spec.jmes_path {
        let segs: Vec<&str> = entry.path.split('.').collect();
        assert!(
            segs.iter()
                .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
            "the end-to-end seeding understands dotted JMESPath only, not {:?}",
            entry.path
        );
        let mut cur = &mut obj;
        for (n, seg) in segs.iter().enumerate() {
            if n + 1 == segs.len() {
                if cur.get(*seg).is_none() {
                    cur[*seg] = json!(format!("{}-{i}-{CANARY}", entry.path));
                }
            } else {
                if !cur.get(*seg).is_some_and(Value::is_object) {
                    cur[*seg] = json!({});
                }
                cur = &mut cur[*seg];
            }
        }
    }
    obj
}

fn lookup<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |cur, seg| &cur[seg])
}

fn render_expect(text: &str, value: Option<&Value>, format: Format) -> Expect {
    match (format, value) {
        (Format::Raw, _) => Expect::Exact(text.to_string()),
        (Format::Files, Some(Value::Object(m))) => Expect::Dir(m.clone()),
        (Format::Json, Some(v)) => Expect::Json(v.clone()),
        // dotenv, yaml, properties: every key and every (plain) value appears;
        // the seeded values need no quoting or escaping in any of them.
        (_, Some(Value::Object(m))) => Expect::Mentions(
            m.iter()
                .flat_map(|(k, v)| {
                    [
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    ]
                })
                .collect(),
        ),
        (_, _) => Expect::Mentions(vec![text.to_string()]),
    }
}

/// Python that redefines `client()` to act in the account of `role_arn` (moto
/// keeps one store per account, and an IRSA pod reads in its role's account).
pub fn as_role(moto: &Moto, role_arn: Option<&str>) -> String {
    let Some(role) = role_arn else {
        return String::new();
    };
    format!(
        "_c = client('sts').assume_role_with_web_identity(RoleArn={role:?}, RoleSessionName='seed', \
         WebIdentityToken='seed-token')['Credentials']\n\
         def client(s, region='us-east-1'):\n    \
         return boto3.client(s, region_name=region, endpoint_url='{}', aws_access_key_id=_c['AccessKeyId'], \
         aws_secret_access_key=_c['SecretAccessKey'], aws_session_token=_c['SessionToken'])\n",
        moto.endpoint()
    )
}

/// Seed every secret of `cfg` (Secrets Manager names as JSON, SSM parameters as
/// SecureString) in its effective region — in the account of `role_arn` when
/// the pod uses IRSA — and return what the files must hold.
pub fn seed(
    moto: &Moto,
    cfg: &AgentConfig,
    pod_region: &str,
    role_arn: Option<&str>,
) -> Vec<Seeded> {
    let mut code = as_role(moto, role_arn);
    let mut out = Vec::new();
    for (i, spec) in cfg.secrets.iter().enumerate() {
        let region = spec
            .source
            .region()
            .map(str::to_string)
            .or_else(|| cfg.region.clone())
            .unwrap_or_else(|| pod_region.to_string());
        let mut files = Vec::new();
        match &spec.source {
            SecretRef::SecretsManager { id, .. } => {
                assert!(
                    !id.starts_with("arn:"),
                    "moto names ARNs itself; examples use names: {id}"
                );
                let value = value_for(i, spec);
                let text = serde_json::to_string(&value).unwrap();
                code += &format!(
                    "client('secretsmanager', {region:?}).create_secret(Name={id:?}, SecretString={text:?})\n"
                );
                files.push((
                    spec.path.clone(),
                    render_expect(&text, Some(&value), spec.format),
                ));
                for e in &spec.jmes_path {
                    let v = lookup(&value, &e.path);
                    let exp = match v {
                        Value::String(s) => Expect::Exact(s.clone()),
                        other => Expect::Json(other.clone()),
                    };
                    files.push((e.alias.clone(), exp));
                }
            }
            SecretRef::SsmParameter { name, .. } => {
                assert!(
                    !name.starts_with("arn:"),
                    "seed SSM parameters by name: {name}"
                );
                let text = format!("ssm{i}-{CANARY}");
                code += &format!(
                    "client('ssm', {region:?}).put_parameter(Name={name:?}, Value={text:?}, Type='SecureString')\n"
                );
                files.push((spec.path.clone(), render_expect(&text, None, spec.format)));
            }
        }
        out.push(Seeded {
            spec_index: i,
            source: spec.source.clone(),
            region,
            files,
        });
    }
    moto.boto3(&code);
    out
}

/// Permission bits of every file an app sees under `mount_dir` (through the
/// visible symlinks, as the app opens them), by relative path.
pub fn file_modes(mount_dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, u32)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("..") {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let meta = std::fs::metadata(e.path()).unwrap();
            if meta.is_dir() {
                walk(&e.path(), &format!("{rel}/"), out);
            } else {
                out.push((rel, meta.permissions().mode() & 0o7777));
            }
        }
    }
    let mut out = Vec::new();
    walk(mount_dir, "", &mut out);
    out
}

/// Check every expected file under `mount_dir`; returns the list of mismatches.
pub fn check_files(mount_dir: &Path, seeded: &[Seeded]) -> Vec<String> {
    let mut bad = Vec::new();
    for s in seeded {
        for (path, expect) in &s.files {
            let p = mount_dir.join(path);
            let read = || std::fs::read_to_string(&p);
            let ok = match expect {
                Expect::Exact(want) => read().is_ok_and(|got| &got == want),
                Expect::Json(want) => read()
                    .ok()
                    .and_then(|got| serde_json::from_str::<Value>(&got).ok())
                    .is_some_and(|got| &got == want),
                Expect::Mentions(words) => {
                    read().is_ok_and(|got| words.iter().all(|w| got.contains(w.as_str())))
                }
                Expect::Dir(map) => map.iter().all(|(k, v)| {
                    let got = std::fs::read_to_string(p.join(k));
                    match v {
                        Value::String(want) => got.is_ok_and(|g| &g == want),
                        other => got
                            .ok()
                            .and_then(|g| serde_json::from_str::<Value>(&g).ok())
                            .is_some_and(|g| &g == other),
                    }
                }),
            };
            if !ok {
                bad.push(format!(
                    "{} ({}): expected {}",
                    path,
                    s.source,
                    describe(expect)
                ));
            }
        }
    }
    bad
}

fn describe(e: &Expect) -> &'static str {
    match e {
        Expect::Exact(_) => "the exact value",
        Expect::Json(_) => "a JSON value",
        Expect::Dir(_) => "a directory with one file per key",
        Expect::Mentions(_) => "a rendering naming every key and value",
    }
}
