//! One pod's cold start against its floor (issue 16): the agent (`--once`,
//! 10 secrets) next to `curl` making the same calls to the same emulator,
//! alternated run by run in one session. With static keys that is one
//! SigV4-signed `BatchGetSecretValue`; with IRSA the floor adds a `curl` of
//! `AssumeRoleWithWebIdentity` (the two execs' times summed). Wall time from
//! exec to exit (files written) and user + system CPU, both from the
//! `measure` subcommand.

use std::path::Path;
use std::time::Duration;

use secrets_injector_tests::Moto;

use crate::agentbench::{self, CANARY, PodEnv};
use crate::measure::{self, Measured};
use crate::report::Row;
use crate::stats::{Summary, fmt_dur};
use crate::{Error, suite::Paths};

/// Secrets fetched per start (one batch call).
const SECRETS: usize = 10;
/// Unmeasured runs of each first (page cache, moto's first answers).
const WARM_UP: usize = 3;
/// The target: start → files within this factor of the floor.
const TARGET: f64 = 1.25;

/// The pod environment with static keys instead of IRSA: one call, no STS.
fn static_keys(pod: &mut PodEnv) {
    pod.env
        .retain(|(k, _)| k != "AWS_ROLE_ARN" && k != "AWS_WEB_IDENTITY_TOKEN_FILE");
    pod.env.push(("AWS_ACCESS_KEY_ID".into(), "bench".into()));
    pod.env
        .push(("AWS_SECRET_ACCESS_KEY".into(), "bench".into()));
}

/// One `curl` POST to the emulator, and what its answer must hold.
struct CurlCall {
    /// Output directory under the pod's, and the file written in it.
    out: (&'static str, &'static str),
    /// Flags between `-sS --fail-with-body` and `--data-binary`.
    flags: &'static [&'static str],
    body: String,
    /// The answer holds this exactly `times` times (the call really answered).
    expect: &'static str,
    times: usize,
}

impl CurlCall {
    /// The agent's call with static keys: one signed `BatchGetSecretValue`
    /// of the first `n` secrets.
    fn batch(n: usize) -> CurlCall {
        let ids: Vec<String> = (0..n).map(agentbench::sm_id).collect();
        CurlCall {
            out: ("curl-out", "batch.json"),
            flags: &[
                "--aws-sigv4",
                "aws:amz:us-east-1:secretsmanager",
                "--user",
                "bench:bench",
                "-H",
                "Content-Type: application/x-amz-json-1.1",
                "-H",
                "X-Amz-Target: secretsmanager.BatchGetSecretValue",
            ],
            body: serde_json::json!({ "SecretIdList": ids }).to_string(),
            expect: CANARY,
            times: n,
        }
    }

    /// IRSA's first call: `AssumeRoleWithWebIdentity`, unsigned, as the SDK sends it.
    fn sts() -> CurlCall {
        CurlCall {
            out: ("sts-out", "sts.xml"),
            flags: &["-H", "Content-Type: application/x-www-form-urlencoded"],
            body: format!(
                "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}\
                 &RoleSessionName=bench&WebIdentityToken=bench-web-identity-token",
                agentbench::ROLE_ARN
            ),
            expect: "<SessionToken>",
            times: 1,
        }
    }

    fn args(&self, endpoint: &str, out: &Path) -> Vec<String> {
        ["-sS", "--fail-with-body"]
            .iter()
            .chain(self.flags)
            .map(|s| s.to_string())
            .chain(["--data-binary".into(), self.body.clone()])
            .chain(["-o".into(), out.to_string_lossy().into_owned()])
            .chain([format!("{endpoint}/")])
            .collect()
    }

    fn run(
        &self,
        self_exe: &Path,
        curl: &Path,
        pod: &PodEnv,
        endpoint: &str,
    ) -> Result<Measured, Error> {
        let out = pod.out_dir(self.out.0)?.join(self.out.1);
        let m = measure::run(self_exe, curl, &self.args(endpoint, &out), &pod.env)?;
        expect_in(&out, self.expect, self.times)?;
        Ok(m)
    }
}

/// `file` holds `what` exactly `n` times (the call really answered).
fn expect_in(file: &Path, what: &str, n: usize) -> Result<(), Error> {
    let body = std::fs::read_to_string(file).map_err(|e| Error::io("curl output", e))?;
    let found = body.matches(what).count();
    if found != n {
        return Err(Error::Measure(format!(
            "curl's answer in {} holds {found} of {n} expected",
            file.display()
        )));
    }
    Ok(())
}

/// The two calls' runs added up, run by run.
fn summed(a: &[Measured], b: &[Measured]) -> Vec<Measured> {
    a.iter()
        .zip(b)
        .map(|(x, y)| Measured {
            wall_ns: x.wall_ns + y.wall_ns,
            max_rss_kib: x.max_rss_kib.max(y.max_rss_kib),
            cpu_ns: x.cpu_ns + y.cpu_ns,
            success: x.success && y.success,
        })
        .collect()
}

fn summary(runs: &[Measured], what: fn(&Measured) -> Duration) -> Result<Summary, Error> {
    Summary::of(runs.iter().map(what).collect()).ok_or_else(|| Error::Measure("no runs".into()))
}

/// One side-by-side comparison: the agent's runs against the floor's.
struct Pair {
    what: &'static str,
    agent: Vec<Measured>,
    floor: Vec<Measured>,
}

impl Pair {
    fn rows(&self, reps: usize) -> Result<Vec<Row>, Error> {
        let (aw, fw) = (
            summary(&self.agent, Measured::wall)?,
            summary(&self.floor, Measured::wall)?,
        );
        let (ac, fc) = (
            summary(&self.agent, Measured::cpu)?,
            summary(&self.floor, Measured::cpu)?,
        );
        let ratio = aw.p50.as_secs_f64() / fw.p50.as_secs_f64().max(1e-9);
        let show = |s: &Summary| format!("p50 {} / p90 {}", fmt_dur(s.p50), fmt_dur(s.p90));
        let what = self.what;
        println!(
            "{what}: agent, exec → {SECRETS} files ({reps} runs): wall {}, CPU {}",
            show(&aw),
            show(&ac)
        );
        println!(
            "{what}: curl, the same calls ({reps} runs): wall {}, CPU {}",
            show(&fw),
            show(&fc)
        );
        println!("{what}: agent ÷ curl, p50 wall: {ratio:.2}×");
        Ok(vec![
            Row::info(
                format!("cold start, {what}: agent / curl, wall p50"),
                format!("{} / {}", fmt_dur(aw.p50), fmt_dur(fw.p50)),
            ),
            Row::info(
                format!("cold start, {what}: agent / curl, CPU p50"),
                format!("{} / {}", fmt_dur(ac.p50), fmt_dur(fc.p50)),
            ),
            Row::target(
                format!("cold start, {what}: agent ÷ curl, p50 wall (same run)"),
                format!("{ratio:.2}×"),
                format!("≤ {TARGET}×"),
                ratio <= TARGET,
            ),
        ])
    }
}

/// Run the suite: `reps` measured rounds, each running all four once.
pub fn suite(paths: &Paths, reps: usize) -> Result<Vec<Row>, Error> {
    println!("\n## cold start: the agent vs curl making the same calls");
    let curl = which("curl").ok_or_else(|| {
        Error::Missing(
            "curl".into(),
            "install curl (7.75 or later, for --aws-sigv4)".into(),
        )
    })?;
    let moto = Moto::start();
    agentbench::seed(&moto, SECRETS, 0);
    let endpoint = moto.endpoint();
    let irsa = PodEnv::new(&endpoint)?;
    let mut keys = PodEnv::new(&endpoint)?;
    static_keys(&mut keys);
    let agent =
        |pod: &PodEnv| agentbench::run_agent(&paths.self_exe, &paths.agent_bin, pod, SECRETS, 0);
    let (batch_call, sts_call) = (CurlCall::batch(SECRETS), CurlCall::sts());
    let batch = || batch_call.run(&paths.self_exe, &curl, &keys, &endpoint);
    let sts = || sts_call.run(&paths.self_exe, &curl, &irsa, &endpoint);
    let mut runs: [Vec<Measured>; 4] = Default::default();
    for round in 0..WARM_UP + reps.max(1) {
        let got = [agent(&keys)?, batch()?, agent(&irsa)?, sts()?];
        if round >= WARM_UP {
            for (series, m) in runs.iter_mut().zip(got) {
                series.push(m);
            }
        }
    }
    let [agent_keys, batch, agent_irsa, sts] = runs;
    let pairs = [
        Pair {
            what: "static keys (one BatchGetSecretValue)",
            agent: agent_keys,
            floor: batch.clone(),
        },
        Pair {
            what: "IRSA (AssumeRoleWithWebIdentity + BatchGetSecretValue)",
            agent: agent_irsa,
            floor: summed(&sts, &batch),
        },
    ];
    let mut rows = Vec::new();
    for p in &pairs {
        rows.extend(p.rows(reps)?);
    }
    Ok(rows)
}

/// `name` on `PATH`.
fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_makes_one_signed_batch_call_for_every_secret() {
        let args = CurlCall::batch(3).args("http://127.0.0.1:5000", Path::new("/tmp/o.json"));
        let joined = args.join(" ");
        assert!(joined.contains("--aws-sigv4 aws:amz:us-east-1:secretsmanager"));
        assert!(joined.contains("X-Amz-Target: secretsmanager.BatchGetSecretValue"));
        let body: serde_json::Value = serde_json::from_str(
            &args[args.iter().position(|a| a == "--data-binary").unwrap() + 1],
        )
        .unwrap();
        assert_eq!(body["SecretIdList"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            args.last().map(String::as_str),
            Some("http://127.0.0.1:5000/")
        );
    }

    #[test]
    fn the_sts_floor_asks_for_the_role_the_agent_assumes() {
        let args = CurlCall::sts().args("http://127.0.0.1:5000", Path::new("/tmp/s.xml"));
        let form = &args[args.iter().position(|a| a == "--data-binary").unwrap() + 1];
        assert!(
            form.starts_with("Action=AssumeRoleWithWebIdentity&"),
            "{form}"
        );
        assert!(
            form.contains(&format!("RoleArn={}&", agentbench::ROLE_ARN)),
            "{form}"
        );
        assert!(
            !args.iter().any(|a| a == "--aws-sigv4"),
            "unsigned, as the SDK sends it"
        );
    }

    #[test]
    fn summed_runs_add_wall_and_cpu() {
        let m = |w, c| Measured {
            wall_ns: w,
            max_rss_kib: 1,
            cpu_ns: c,
            success: true,
        };
        let s = summed(&[m(10, 3), m(20, 4)], &[m(1, 1), m(2, 2)]);
        assert_eq!(
            s.iter().map(|x| (x.wall_ns, x.cpu_ns)).collect::<Vec<_>>(),
            [(11, 4), (22, 6)]
        );
    }

    #[test]
    fn static_keys_replace_the_web_identity() {
        let mut pod = PodEnv::new("http://127.0.0.1:1").unwrap();
        static_keys(&mut pod);
        let has = |k: &str| pod.env.iter().any(|(key, _)| key == k);
        assert!(has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY"));
        assert!(!has("AWS_ROLE_ARN") && !has("AWS_WEB_IDENTITY_TOKEN_FILE"));
    }
}
