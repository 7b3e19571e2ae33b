//! The agent's run loops over any [`Fetch`]: init (fetch, retry only the
//! transient failures until the startup timeout, write all or nothing) and
//! sidecar (the same first write, then poll, rewrite on change, run
//! `on-change`).
//! Logs one line per round with counts, never a value.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrets_injector_shared::template::{self, Secrets};
use secrets_injector_shared::{AgentConfig, Mode, keys};
use tokio_util::sync::CancellationToken;

use crate::failure::{FailureKind, FetchFailure};
use crate::fetch::{Fetch, FetchOutcome, Selected};
use crate::split::{OutFile, render};
use crate::{notify, selected, termination, write};

/// First retry delay for transient errors; doubles up to [`BACKOFF_CAP`].
const BACKOFF_INITIAL: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Local failure codes (not AWS's): a value that does not fit its format or jmesPath.
const CODE_RENDER: &str = "InvalidSecretValue";
/// A template that does not render (undefined key, fuel, size).
const CODE_TEMPLATE: &str = "TemplateError";
/// No answer from the fetcher before the startup timeout.
const CODE_TIMEOUT: &str = "Timeout";
/// The fetcher returned neither a value nor a failure for a secret.
const CODE_NO_VALUE: &str = "NoValue";

/// Everything the loops need besides the config and the fetcher.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The mount path on this machine (root prefix applied).
    pub mount_dir: PathBuf,
    pub termination_log: PathBuf,
    /// Fetch once even in sidecar mode.
    pub once: bool,
    /// Sidecar poll period before jitter.
    pub refresh: Duration,
    /// How long transient errors are retried before the first write fails.
    pub startup_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_cap: Duration,
}

impl RunSettings {
    /// Settings from the config, with the pod's paths as given.
    pub fn new(cfg: &AgentConfig, mount_dir: PathBuf, termination_log: PathBuf) -> RunSettings {
        RunSettings {
            mount_dir,
            termination_log,
            once: false,
            refresh: Duration::from_secs(cfg.refresh_interval_secs),
            startup_timeout: Duration::from_secs(cfg.startup_timeout_secs),
            backoff_initial: BACKOFF_INITIAL,
            backoff_cap: BACKOFF_CAP,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Init wrote the files, or a sidecar was stopped after its first write.
    Done,
    /// The first write failed; the termination log says why.
    Failed,
    /// Stopped by a signal before the first write.
    Interrupted,
}

impl Exit {
    /// Process exit code: 0, 1, or 143 (128 + SIGTERM).
    pub fn code(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Interrupted => 143,
        }
    }
}

/// The files of one successful round.
#[derive(Debug)]
struct Rendered {
    files: Vec<OutFile>,
    fetched: usize,
    /// Optional secrets skipped: not found, or still unavailable at the startup timeout (logged).
    skipped: Vec<String>,
    /// Selected names skipped as unsafe paths (logged by name).
    unsafe_names: usize,
}

/// One round's answers: the named secrets, then the selections (§3c).
struct Answers {
    outcome: FetchOutcome,
    selected: Vec<Selected>,
}

/// Fetch the named secrets and evaluate the selections, concurrently.
async fn fetch_round<F: Fetch>(cfg: &AgentConfig, fetcher: &F) -> Answers {
    let (outcome, selected) =
        tokio::join!(fetcher.fetch(&cfg.secrets), fetcher.select(&cfg.selections));
    Answers { outcome, selected }
}

/// A startup retry: ask again only for what failed transiently in `previous`,
/// keep every other answer (docs/decisions.md "Startup retries ask only for
/// what failed"). Without a usable previous round, a whole round. Takes the
/// previous answers by value: nothing copies the secret values kept.
async fn fetch_again<F: Fetch>(
    cfg: &AgentConfig,
    fetcher: &F,
    previous: Option<Answers>,
) -> Answers {
    let Some(mut answers) = previous.filter(|p| {
        p.outcome.len() == cfg.secrets.len() && p.selected.len() == cfg.selections.len()
    }) else {
        return fetch_round(cfg, fetcher).await;
    };
    let (secrets, selections) = (retried(&answers.outcome), retried(&answers.selected));
    let specs: Vec<_> = secrets.iter().map(|&i| cfg.secrets[i].clone()).collect();
    let sels: Vec<_> = selections
        .iter()
        .map(|&i| cfg.selections[i].clone())
        .collect();
    let (outcome, selected) = tokio::join!(
        async {
            if specs.is_empty() {
                Vec::new()
            } else {
                fetcher.fetch(&specs).await
            }
        },
        async {
            if sels.is_empty() {
                Vec::new()
            } else {
                fetcher.select(&sels).await
            }
        },
    );
    splice(&mut answers.outcome, &secrets, outcome, |i| {
        no_value(cfg.secrets[i].source.to_string())
    });
    splice(&mut answers.selected, &selections, selected, |i| {
        no_value(cfg.selections[i].select.to_string())
    });
    answers
}

/// Positions of the answers that failed transiently (worth asking again).
fn retried<T>(answers: &[Result<T, FetchFailure>]) -> Vec<usize> {
    answers
        .iter()
        .enumerate()
        .filter(|(_, a)| matches!(a, Err(f) if f.is_transient()))
        .map(|(i, _)| i)
        .collect()
}

/// Put the fresh answers for positions `at` in place; a position the fetcher
/// left unanswered gets `missing(position)`.
fn splice<T>(
    into: &mut [Result<T, FetchFailure>],
    at: &[usize],
    fresh: Vec<Result<T, FetchFailure>>,
    missing: impl Fn(usize) -> FetchFailure,
) {
    let mut fresh = fresh.into_iter();
    for &i in at {
        into[i] = fresh.next().unwrap_or_else(|| Err(missing(i)));
    }
}

/// Turn one round's answers (one result per spec and per selection, in
/// order) into the full file set, or every failure of the round in config
/// order. Optional secrets that are not found are skipped — and, on the
/// `last_chance` (the startup timeout has passed), those still failing
/// transiently too; render errors are permanent. Templates render last, from
/// a complete round only.
fn collect(
    cfg: &AgentConfig,
    answers: &Answers,
    last_chance: bool,
) -> Result<Rendered, Vec<FetchFailure>> {
    let mut round = Round::default();
    round.secrets(cfg, &answers.outcome, last_chance);
    round.selections(cfg, &answers.selected);
    if round.failures.is_empty() {
        let context = Arc::new(std::mem::take(&mut round.context));
        render_templates(cfg, &context, &mut round.files, &mut round.failures);
    }
    if round.failures.is_empty() {
        Ok(Rendered {
            files: round.files,
            fetched: round.fetched,
            skipped: round.skipped,
            unsafe_names: round.unsafe_names,
        })
    } else {
        Err(round.failures)
    }
}

/// What a round has produced so far.
#[derive(Default)]
struct Round {
    files: Vec<OutFile>,
    failures: Vec<FetchFailure>,
    skipped: Vec<String>,
    fetched: usize,
    unsafe_names: usize,
    /// `secrets[...]` for the templates (filled only when there are templates).
    context: Secrets,
}

impl Round {
    fn secrets(&mut self, cfg: &AgentConfig, outcome: &FetchOutcome, last_chance: bool) {
        let mut results = outcome.iter();
        for spec in &cfg.secrets {
            let secret = spec.source.to_string();
            let value = match results.next() {
                Some(Ok(value)) => value,
                Some(Err(f)) => {
                    let skippable =
                        f.kind == FailureKind::NotFound || (last_chance && f.is_transient());
                    if spec.optional && skippable {
                        self.skipped.push(secret);
                    } else {
                        self.failures.push(f.clone());
                    }
                    continue;
                }
                None => {
                    self.failures.push(no_value(secret));
                    continue;
                }
            };
            if !cfg.templates.is_empty() {
                self.context.insert(&spec.path, value.bytes());
            }
            match render(spec, value, cfg.mode_for(spec)) {
                Ok(mut f) => {
                    self.fetched += 1;
                    self.files.append(&mut f);
                }
                Err(e) => self.failures.push(render_failure(secret, e)),
            }
        }
    }

    fn selections(&mut self, cfg: &AgentConfig, selected: &[Selected]) {
        let mut selected = selected.iter();
        for sel in &cfg.selections {
            let found = match selected.next() {
                Some(Ok(found)) => found,
                Some(Err(f)) => {
                    self.failures.push(f.clone());
                    continue;
                }
                None => {
                    self.failures.push(no_value(sel.select.to_string()));
                    continue;
                }
            };
            match selected::spread(sel, found, cfg.default_mode()) {
                Ok(mut s) => {
                    self.fetched += s.accepted.len();
                    self.unsafe_names += s.skipped;
                    self.files.append(&mut s.files);
                    if !cfg.templates.is_empty() {
                        let entries = s
                            .accepted
                            .iter()
                            .map(|&i| (found[i].0.as_str(), found[i].1.bytes()));
                        self.context.insert_dir(&sel.path, entries);
                    }
                }
                Err(e) => self
                    .failures
                    .push(render_failure(sel.select.to_string(), e)),
            }
        }
    }
}

fn no_value(secret: String) -> FetchFailure {
    FetchFailure {
        secret,
        code: CODE_NO_VALUE.into(),
        message: "the fetcher returned no value for this secret".into(),
        hint: None,
        kind: FailureKind::Transient,
    }
}

fn render_failure(secret: String, e: crate::Error) -> FetchFailure {
    FetchFailure {
        secret,
        code: CODE_RENDER.into(),
        message: match e {
            crate::Error::Render { message, .. } => message,
            other => other.to_string(),
        },
        hint: Some(
            "check the secret's format and jmesPath settings against the structure of its value"
                .into(),
        ),
        kind: FailureKind::Permanent,
    }
}

/// Render every template over this round's values, into the same file set;
/// a render error is permanent and names the template, never a value.
fn render_templates(
    cfg: &AgentConfig,
    context: &Arc<Secrets>,
    files: &mut Vec<OutFile>,
    failures: &mut Vec<FetchFailure>,
) {
    for t in &cfg.templates {
        match template::render_within(&t.template, context, template::RENDER_BUDGET) {
            Ok(contents) => files.push(OutFile {
                path: t.path.clone(),
                contents,
                mode: cfg.default_mode(),
            }),
            Err(message) => failures.push(FetchFailure {
                secret: format!("{}{}", keys::TEMPLATE_PREFIX, t.path),
                code: CODE_TEMPLATE.into(),
                message,
                hint: Some(
                    "check the template against the secrets' names and keys; use | default(...) for optional ones"
                        .into(),
                ),
                kind: FailureKind::Permanent,
            }),
        }
    }
}

/// Full jitter: a uniform delay in `[0, d]`.
fn full_jitter(d: Duration) -> Duration {
    let ms = d.as_millis().min(u64::MAX as u128) as u64;
    Duration::from_millis(rand::random_range(0..=ms))
}

/// `d` ±10%.
fn refresh_jitter(d: Duration) -> Duration {
    d.mul_f64(rand::random_range(0.9..=1.1))
}

/// The wait before refresh `round`: the first is spread uniformly over a
/// whole interval (0.5–1.5×), so sidecars a rollout started in the same
/// second poll at independent phases from then on instead of drifting apart
/// slowly at ±10% a round (docs/scale.md: the refresh storm); later rounds
/// keep their phase with ±10%.
fn refresh_wait(d: Duration, round: u64) -> Duration {
    if round == 1 {
        d.mul_f64(rand::random_range(0.5..1.5))
    } else {
        refresh_jitter(d)
    }
}

enum First {
    Written {
        changed: bool,
    },
    Failed(Vec<FetchFailure>),
    /// Every secret was ready, but the file set could not be written.
    WriteFailed(crate::Error),
    Interrupted,
}

/// Fetch, retrying transient failures with backoff until the startup timeout,
/// then write everything. Nothing is written unless every secret is ready.
async fn first_write<F: Fetch>(
    cfg: &AgentConfig,
    fetcher: &F,
    s: &RunSettings,
    shutdown: &CancellationToken,
) -> First {
    let deadline = Instant::now() + s.startup_timeout;
    let mut backoff = s.backoff_initial;
    let mut kept: Option<Answers> = None;
    for attempt in 1u32.. {
        let started = Instant::now();
        // At least one real attempt, even with a zero startup timeout.
        let remaining = deadline
            .saturating_duration_since(started)
            .max(Duration::from_secs(1));
        let outcome = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return First::Interrupted,
            // A round cut short by the timeout loses what was kept, but the
            // timeout only fires at or past the deadline, which ends the loop.
            o = tokio::time::timeout(remaining, fetch_again(cfg, fetcher, kept.take())) => o,
        };
        // Past the startup timeout, optional secrets no longer hold the pod back.
        let last_chance = Instant::now() >= deadline;
        let result = match outcome {
            Ok(answers) => {
                let result = collect(cfg, &answers, last_chance);
                kept = Some(answers);
                result
            }
            Err(_) => timed_out(cfg, s.startup_timeout),
        };
        let failures = match result {
            Ok(r) => return write_first(cfg, s, &r, attempt, started),
            Err(f) => f,
        };
        let permanent = failures.iter().any(|f| !f.is_transient());
        let now = Instant::now();
        if permanent || now >= deadline {
            return First::Failed(failures);
        }
        for f in &failures {
            tracing::warn!(attempt, error = %termination::line(f), "transient failure, retrying");
        }
        let pause = full_jitter(backoff).min(deadline - now);
        backoff = (backoff * 2).min(s.backoff_cap);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return First::Interrupted,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    First::Interrupted
}

/// Every secret fetched in time: write the set once.
fn write_first(
    cfg: &AgentConfig,
    s: &RunSettings,
    r: &Rendered,
    attempt: u32,
    started: Instant,
) -> First {
    for name in &r.skipped {
        tracing::warn!(secret = %name, "optional secret unavailable, skipped");
    }
    // No app container runs beside an init container: nobody can be
    // mid-read in a replaced set, so it goes at once.
    let grace = match cfg.mode {
        Mode::Init => Duration::ZERO,
        Mode::Sidecar => write::REPLACED_GRACE,
    };
    match write::write_atomic_with_grace(&s.mount_dir, &r.files, cfg.owner, grace) {
        Ok(changed) => {
            tracing::info!(
                round = 0,
                attempt,
                fetched = r.fetched,
                skipped = r.skipped.len(),
                unsafe_names = r.unsafe_names,
                files = r.files.len(),
                changed,
                duration_ms = started.elapsed().as_millis() as u64,
                "first write done"
            );
            First::Written { changed }
        }
        Err(e) => First::WriteFailed(e),
    }
}

/// The startup timeout cut a round short: only optional secrets may be missing.
fn timed_out(cfg: &AgentConfig, timeout: Duration) -> Result<Rendered, Vec<FetchFailure>> {
    match timeout_failures(cfg, timeout) {
        f if f.is_empty() => Ok(Rendered {
            files: Vec::new(),
            fetched: 0,
            skipped: cfg.secrets.iter().map(|s| s.source.to_string()).collect(),
            unsafe_names: 0,
        }),
        f => Err(f),
    }
}

fn timeout_failures(cfg: &AgentConfig, timeout: Duration) -> Vec<FetchFailure> {
    let required = cfg
        .secrets
        .iter()
        .filter(|s| !s.optional)
        .map(|s| s.source.to_string());
    // A selection is never optional.
    let selections = cfg.selections.iter().map(|s| s.select.to_string());
    required
        .chain(selections)
        .map(|secret| FetchFailure {
            secret,
            code: CODE_TIMEOUT.into(),
            message: format!("no answer from AWS within the startup timeout of {timeout:?}"),
            hint: Some(
                "check network access to the Secrets Manager/SSM endpoints, or raise secrets-injector.io/startup-timeout"
                    .into(),
            ),
            kind: FailureKind::Transient,
        })
        .collect()
}

/// Run the agent until done (init, `--once`) or until `shutdown` (sidecar).
pub async fn run<F: Fetch>(
    cfg: &AgentConfig,
    fetcher: &F,
    s: &RunSettings,
    shutdown: CancellationToken,
) -> Exit {
    let had_data = s.mount_dir.join(write::DATA_DIR).exists();
    // A predecessor killed mid-write leaves a half-filled set behind.
    match write::remove_interrupted(&s.mount_dir) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed leftovers of an interrupted write"),
        Err(e) => tracing::warn!(error = %e, "cannot remove leftovers of an interrupted write"),
    }
    match first_write(cfg, fetcher, s, &shutdown).await {
        First::Interrupted => {
            tracing::warn!("stopped by a signal before the secrets were written");
            return Exit::Interrupted;
        }
        First::Failed(failures) => {
            for f in &failures {
                tracing::error!(error = %termination::line(f), "secret not available");
            }
            write_termination_log(s, &termination::message(&failures));
            return Exit::Failed;
        }
        First::WriteFailed(e) => {
            let line = termination::write_failure_line(&e);
            tracing::error!(error = %line, "cannot write the secrets");
            write_termination_log(s, &format!("{line}\n"));
            return Exit::Failed;
        }
        First::Written { changed } => {
            // A restarted sidecar that found older files behind the app: tell the app.
            if had_data && changed && cfg.mode == Mode::Sidecar && !s.once {
                on_change(cfg).await;
            }
        }
    }
    if cfg.mode == Mode::Init || s.once {
        return Exit::Done;
    }
    sidecar(cfg, fetcher, s, shutdown).await;
    Exit::Done
}

fn write_termination_log(s: &RunSettings, message: &str) {
    if let Err(e) = termination::write(&s.termination_log, message) {
        tracing::warn!(path = %s.termination_log.display(), error = %e, "cannot write the termination log");
    }
}

async fn on_change(cfg: &AgentConfig) {
    let Some(action) = &cfg.on_change else { return };
    match notify::run(action).await {
        Ok(n) => tracing::info!(result = ?n, "on-change done"),
        Err(e) => tracing::warn!(error = %e, "on-change failed"),
    }
}

/// Poll every interval (±10%) until `shutdown`; keep the last good files on errors.
async fn sidecar<F: Fetch>(
    cfg: &AgentConfig,
    fetcher: &F,
    s: &RunSettings,
    shutdown: CancellationToken,
) {
    let mut errors_total: u64 = 0;
    // The first write may have replaced a restarted sidecar's older set.
    let mut prune_pending = true;
    for round in 1u64.. {
        let mut wait = refresh_wait(s.refresh, round);
        if std::mem::take(&mut prune_pending) {
            // Old values must not outlive a rotation on the volume: drop the
            // replaced set once readers that resolved `..data` before the swap are done.
            let grace = write::REPLACED_GRACE.min(wait);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(grace) => {}
            }
            if let Err(e) = write::prune_replaced(&s.mount_dir, grace) {
                tracing::warn!(error = %e, "cannot remove the replaced file set");
            }
            wait = wait.saturating_sub(grace);
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        let changed = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            c = refresh_round(cfg, fetcher, s, round, &mut errors_total) => c,
        };
        if changed {
            prune_pending = true;
            // A slow on-change target must not delay shutdown.
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = on_change(cfg) => {}
            }
        }
    }
    tracing::info!(errors_total, "stopping");
}

/// One refresh: fetch, then write if every secret came. True when the files
/// changed; on any failure the last good files stay.
async fn refresh_round<F: Fetch>(
    cfg: &AgentConfig,
    fetcher: &F,
    s: &RunSettings,
    round: u64,
    errors_total: &mut u64,
) -> bool {
    let started = Instant::now();
    let outcome = fetch_round(cfg, fetcher).await;
    let duration_ms = || started.elapsed().as_millis() as u64;
    let rendered = match collect(cfg, &outcome, false) {
        Ok(r) => r,
        Err(failures) => {
            *errors_total += 1;
            for f in &failures {
                tracing::warn!(round, error = %termination::line(f), "refresh failed, keeping the last good files");
            }
            tracing::info!(
                round,
                failed = failures.len(),
                changed = false,
                errors_total = *errors_total,
                duration_ms = duration_ms(),
                "round"
            );
            return false;
        }
    };
    match write::write_atomic(&s.mount_dir, &rendered.files, cfg.owner) {
        Ok(changed) => {
            tracing::info!(
                round,
                fetched = rendered.fetched,
                skipped = rendered.skipped.len(),
                unsafe_names = rendered.unsafe_names,
                files = rendered.files.len(),
                changed,
                errors_total = *errors_total,
                duration_ms = duration_ms(),
                "round"
            );
            changed
        }
        Err(e) => {
            *errors_total += 1;
            tracing::warn!(round, error = %e, errors_total = *errors_total, "write failed, keeping the last good files");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(100);

    fn ratios(f: impl Fn() -> Duration) -> (f64, f64) {
        let r: Vec<f64> = (0..2000).map(|_| f().as_secs_f64() / 100.0).collect();
        let min = r.iter().copied().fold(f64::MAX, f64::min);
        let max = r.iter().copied().fold(f64::MIN, f64::max);
        (min, max)
    }

    #[test]
    fn the_first_refresh_is_spread_over_a_whole_interval() {
        let (min, max) = ratios(|| refresh_wait(D, 1));
        assert!((0.5..0.6).contains(&min), "min {min}");
        assert!(max > 1.4 && max < 1.5, "max {max}");
    }

    #[test]
    fn later_refreshes_keep_their_phase_within_ten_percent() {
        for round in [2, 3, 1000] {
            let (min, max) = ratios(|| refresh_wait(D, round));
            assert!((0.9..0.92).contains(&min), "round {round}: min {min}");
            assert!(max <= 1.1 && max > 1.08, "round {round}: max {max}");
        }
    }

    #[test]
    fn full_jitter_waits_anywhere_from_zero_to_the_backoff() {
        let (min, max) = ratios(|| full_jitter(D));
        assert!(min < 0.02, "min {min}");
        assert!(max <= 1.0 && max > 0.98, "max {max}");
    }
}
