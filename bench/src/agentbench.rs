//! The agent against the AWS emulator, and what users run today against the
//! same emulator with the same secrets: an AWS CLI loop, a boto3 batch script
//! and (when given) the AWS Secrets Manager Agent. Every client uses IRSA
//! (web identity → STS) and goes through the counting proxy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrets_injector_shared::{AgentConfig, SecretRef, SecretSpec};
use secrets_injector_tests::Moto;

use crate::measure::{self, Measured};
use crate::{Error, rss};

/// Marker in every seeded value; checked in written files, never printed.
pub const CANARY: &str = "BENCH-CANARY-5e1d";
/// Role the web identity token is exchanged for.
pub const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/bench-app";

pub fn sm_id(i: usize) -> String {
    format!("bench/secret-{i:03}")
}

pub fn ssm_name(i: usize) -> String {
    format!("/bench/param-{i:03}")
}

/// Seed `n_sm` secrets and `n_ssm` SecureString parameters (~200-byte JSON values).
pub fn seed(moto: &Moto, n_sm: usize, n_ssm: usize) {
    moto.boto3(&format!(
        "sm = client('secretsmanager')\n\
         ssm = client('ssm')\n\
         for i in range({n_sm}):\n    \
           v = json.dumps({{'username': 'user%d' % i, 'password': 'pw%d-{CANARY}' % i, \
           'host': 'db%d.internal.example' % i, 'port': 5432, 'options': 'x' * 100}})\n    \
           sm.create_secret(Name='bench/secret-%03d' % i, SecretString=v)\n\
         for i in range({n_ssm}):\n    \
           ssm.put_parameter(Name='/bench/param-%03d' % i, Value='p%d-{CANARY}' % i, Type='SecureString')\n"
    ));
}

/// Agent config for the first `n_sm` secrets and `n_ssm` parameters.
pub fn agent_config(n_sm: usize, n_ssm: usize) -> Result<AgentConfig, Error> {
    let mut secrets = Vec::new();
    for i in 0..n_sm {
        let r = SecretRef::parse(&sm_id(i)).map_err(|e| Error::Measure(e.to_string()))?;
        secrets.push(SecretSpec::new(r, format!("secret-{i:03}")));
    }
    for i in 0..n_ssm {
        let r = SecretRef::parse(&format!("ssm:{}", ssm_name(i)))
            .map_err(|e| Error::Measure(e.to_string()))?;
        secrets.push(SecretSpec::new(r, format!("param-{i:03}")));
    }
    Ok(AgentConfig {
        secrets,
        ..AgentConfig::default()
    })
}

/// A pod's identity and AWS environment, pointed at the counting proxy.
#[derive(Debug)]
pub struct PodEnv {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl PodEnv {
    pub fn new(endpoint: &str) -> Result<PodEnv, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
        let token = dir.path().join("token");
        std::fs::write(&token, "bench-web-identity-token")
            .map_err(|e| Error::io("token file", e))?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).map_err(|e| Error::io("home dir", e))?;
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let env = vec![
            ("AWS_ENDPOINT_URL".into(), endpoint.to_string()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
            ("AWS_ROLE_ARN".into(), ROLE_ARN.into()),
            ("AWS_WEB_IDENTITY_TOKEN_FILE".into(), s(&token)),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
            ("HOME".into(), s(&home)),
            (
                "PATH".into(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
        ];
        Ok(PodEnv { dir, env })
    }

    /// A fresh, empty output directory.
    pub fn out_dir(&self, name: &str) -> Result<PathBuf, Error> {
        let d = self.dir.path().join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(|e| Error::io("output dir", e))?;
        Ok(d)
    }
}

/// Count files under `dir` (following the `..data` symlink layout) holding the canary.
pub fn files_with_canary(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(CANARY)))
        .count()
}

/// One pod's agent root: `dev/` (termination log) and the config's mount
/// path created under a fresh directory `name`.
#[derive(Debug)]
pub struct AgentRoot {
    pub root: PathBuf,
    /// Where the agent writes: the mount path under the root.
    pub mount: PathBuf,
}

impl AgentRoot {
    pub fn new(pod: &PodEnv, name: &str, cfg: &AgentConfig) -> Result<AgentRoot, Error> {
        let root = pod.out_dir(name)?;
        let mount = root.join(cfg.mount_path.trim_start_matches('/'));
        for d in [root.join("dev"), mount.clone()] {
            std::fs::create_dir_all(d).map_err(|e| Error::io("agent root", e))?;
        }
        Ok(AgentRoot { root, mount })
    }

    /// The agent's environment: the pod's, its config, this root, `log_format`.
    pub fn env(&self, pod: &PodEnv, cfg: &AgentConfig, log_format: &str) -> Vec<(String, String)> {
        let mut env = pod.env.clone();
        env.push((
            secrets_injector_shared::keys::CONFIG_ENV.into(),
            cfg.to_json(),
        ));
        env.push((
            "SECRETS_INJECTOR_ROOT_PREFIX".into(),
            self.root.to_string_lossy().into_owned(),
        ));
        env.push(("SECRETS_INJECTOR_LOG_FORMAT".into(), log_format.into()));
        env
    }
}

/// One run of our agent (`--once`) writing `n_sm + n_ssm` files under a temp root.
pub fn run_agent(
    self_exe: &Path,
    agent: &Path,
    pod: &PodEnv,
    n_sm: usize,
    n_ssm: usize,
) -> Result<Measured, Error> {
    let cfg = agent_config(n_sm, n_ssm)?;
    let root = AgentRoot::new(pod, "agent-root", &cfg)?;
    let env = root.env(pod, &cfg, "text");
    let m = measure::run(self_exe, agent, &["--once".into()], &env)?;
    let written = files_with_canary(&root.mount);
    if written != n_sm + n_ssm {
        return Err(Error::Measure(format!(
            "agent wrote {written} of {} files",
            n_sm + n_ssm
        )));
    }
    Ok(m)
}

/// A baseline script (CLI loop or boto3) fetching the first `n` secrets.
pub fn run_baseline(
    self_exe: &Path,
    program: &Path,
    script: &Path,
    pod: &PodEnv,
    n: usize,
    extra_env: &[(String, String)],
) -> Result<Measured, Error> {
    let out = pod.out_dir("baseline-out")?;
    let mut args = vec![
        script.to_string_lossy().into_owned(),
        out.to_string_lossy().into_owned(),
    ];
    args.extend((0..n).map(sm_id));
    let mut env = pod.env.clone();
    env.extend(extra_env.iter().cloned());
    let m = measure::run(self_exe, program, &args, &env)?;
    let written = files_with_canary(&out);
    if written != n {
        return Err(Error::Measure(format!(
            "{} wrote {written} of {n} files",
            script.display()
        )));
    }
    Ok(m)
}

/// One cold start of the AWS Secrets Manager Agent until `n` GETs answered.
#[derive(Debug, Clone, Copy)]
pub struct AsmRun {
    pub to_served: Duration,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// A child process killed (and reaped) on drop.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const ASM_TOKEN: &str = "bench-ssrf-token";

async fn asm_get(port: u16, id: &str) -> Result<bool, Error> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<axum::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::get(format!(
        "http://127.0.0.1:{port}/secretsmanager/get?secretId={}",
        id.replace('/', "%2F")
    ))
    .header("X-Aws-Parameters-Secrets-Token", ASM_TOKEN)
    .body(Empty::new())
    .map_err(|e| Error::Http(e.to_string()))?;
    let Ok(resp) = client.request(req).await else {
        return Ok(false);
    };
    let ok = resp.status() == hyper::StatusCode::OK;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .to_bytes();
    Ok(ok && String::from_utf8_lossy(&body).contains(CANARY))
}

pub async fn run_asm_agent(bin: &Path, pod: &PodEnv, n: usize) -> Result<AsmRun, Error> {
    let port = secrets_injector_tests::free_port();
    let cfg = pod.dir.path().join("asm-agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "log_level = \"error\"\nlog_to_file = false\nhttp_port = \"{port}\"\nregion = \"us-east-1\"\n"
        ),
    )
    .map_err(|e| Error::io("ASM agent config", e))?;
    let start = Instant::now();
    let child = Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .current_dir(pod.dir.path())
        .env_clear()
        .envs(pod.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_TOKEN", ASM_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io(&format!("start {}", bin.display()), e))?;
    let child = Killed(child);
    let deadline = start + Duration::from_secs(30);
    // The first GET is retried until the server listens; the rest must answer at once.
    while !asm_get(port, &sm_id(0)).await? {
        if Instant::now() > deadline {
            return Err(Error::Measure("ASM agent did not serve within 30 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for i in 1..n {
        if !asm_get(port, &sm_id(i)).await? {
            return Err(Error::Measure(format!(
                "ASM agent did not serve {}",
                sm_id(i)
            )));
        }
    }
    let to_served = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mem = rss::of_pid(child.0.id())?;
    Ok(AsmRun {
        to_served,
        rss_kib: mem.rss_kib,
        hwm_kib: mem.hwm_kib,
    })
}

/// Calls by service label for one run, from the proxy's counts.
pub fn call_summary(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(op, n)| format!("{op}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
