//! Fetching secret values from Secrets Manager and SSM with the fewest calls.
//! Knows AWS; knows nothing of files or formats. Results come back in spec
//! order (`docs/decisions.md` "Calls are batched and deduplicated").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use secrets_injector_shared::select::SelectionSpec;
use secrets_injector_shared::{SecretRef, SecretSpec};

use crate::aws::Clients;
use crate::classify::{Classified, classify, hint};
use crate::failure::{FailureKind, FetchFailure};
use crate::value::SecretValue;

/// One result per spec, in the order of the specs given.
pub type FetchOutcome = Vec<Result<SecretValue, FetchFailure>>;

/// The secrets of one selection (§3c): (name relative to the prefix, value),
/// all or nothing. Names are not yet checked as paths (the run loop does).
pub type Selected = Result<Vec<(String, SecretValue)>, FetchFailure>;

/// Fetches `specs`; implemented over the AWS SDK clients by [`AwsFetcher`].
pub trait Fetch {
    fn fetch(&self, specs: &[SecretSpec])
    -> impl std::future::Future<Output = FetchOutcome> + Send;

    /// One result per selection, in order. A fetcher that cannot select fails closed.
    fn select(
        &self,
        selections: &[SelectionSpec],
    ) -> impl std::future::Future<Output = Vec<Selected>> + Send {
        let out = selections
            .iter()
            .map(|s| {
                Err(FetchFailure {
                    secret: s.select.to_string(),
                    code: "NotSupported".into(),
                    message: "this fetcher cannot select secrets".into(),
                    hint: None,
                    kind: FailureKind::Permanent,
                })
            })
            .collect();
        std::future::ready(out)
    }
}

/// Secret ids per `BatchGetSecretValue` call (API maximum).
const SM_BATCH: usize = 20;
/// Parameter names per `GetParameters` call (API maximum).
const SSM_BATCH: usize = 10;
/// Bound on `NextToken` pages of one batch, so a misbehaving endpoint cannot loop us.
const MAX_PAGES: usize = 20;

/// One distinct thing to fetch: identical references across specs fetch once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    ssm: bool,
    region: String,
    id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

impl Key {
    /// `source` read in `region` unless its ARN names one (the ARN wins).
    fn new(source: &SecretRef, spec: &SecretSpec, region: &str) -> Key {
        Key {
            ssm: matches!(source, SecretRef::SsmParameter { .. }),
            region: source.region().unwrap_or(region).to_string(),
            id: source.id().to_string(),
            version_id: spec.version_id.clone(),
            version_stage: spec.version_stage.clone(),
        }
    }

    /// The current version of a Secrets Manager secret (a selection's ARN).
    pub(crate) fn latest_secret(region: &str, id: &str) -> Key {
        Key {
            ssm: false,
            region: region.to_string(),
            id: id.to_string(),
            version_id: None,
            version_stage: None,
        }
    }

    fn pinned(&self) -> bool {
        self.version_id.is_some() || self.version_stage.is_some()
    }

    /// SSM selector form: `name:3` or `name:label`.
    fn ssm_selector(&self) -> String {
        match self.version_id.as_ref().or(self.version_stage.as_ref()) {
            Some(pin) => format!("{}:{pin}", self.id),
            None => self.id.clone(),
        }
    }

    /// IAM action that reads this key.
    fn action(&self) -> &'static str {
        if self.ssm {
            "ssm:GetParameters"
        } else {
            "secretsmanager:GetSecretValue"
        }
    }

    /// IAM resource of this key, for hints (an ARN pattern when only a name is known).
    fn resource(&self) -> String {
        let partition = partition(&self.region);
        if self.id.starts_with("arn:") {
            self.id.clone()
        } else if self.ssm {
            let slash = if self.id.starts_with('/') { "" } else { "/" };
            format!(
                "arn:{partition}:ssm:{}:*:parameter{slash}{}",
                self.region, self.id
            )
        } else {
            format!(
                "arn:{partition}:secretsmanager:{}:*:secret:{}-*",
                self.region, self.id
            )
        }
    }
}

/// The partition of a region (`cn-*`, `us-gov-*`), as IAM ARNs need it.
pub(crate) fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

pub(crate) type Outcome = Result<SecretValue, Classified>;

/// [`Fetch`] over the AWS SDK with the fewest calls.
#[derive(Debug)]
pub struct AwsFetcher {
    clients: Clients,
    /// `BatchGetSecretValue` was denied once: use `GetSecretValue` from then on.
    batch_denied: AtomicBool,
}

impl AwsFetcher {
    pub fn new(clients: Clients) -> AwsFetcher {
        AwsFetcher {
            clients,
            batch_denied: AtomicBool::new(false),
        }
    }

    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// True once the role was found unable to call `BatchGetSecretValue`.
    pub fn batch_denied(&self) -> bool {
        self.batch_denied.load(Ordering::Relaxed)
    }

    pub(crate) async fn fetch_keys(&self, keys: Vec<Key>) -> HashMap<Key, Outcome> {
        let mut results = HashMap::new();
        let mut sm_batches: BTreeMap<String, Vec<Key>> = BTreeMap::new();
        let mut ssm_batches: BTreeMap<String, Vec<Key>> = BTreeMap::new();
        let mut singles = Vec::new();
        for k in keys {
            match (k.ssm, k.pinned()) {
                (true, _) => ssm_batches.entry(k.region.clone()).or_default().push(k),
                (false, false) => sm_batches.entry(k.region.clone()).or_default().push(k),
                (false, true) => singles.push(k),
            }
        }
        for (region, keys) in sm_batches {
            for chunk in keys.chunks(SM_BATCH) {
                if self.batch_denied() {
                    singles.extend_from_slice(chunk);
                } else {
                    singles.extend(self.batch_get(&region, chunk, &mut results).await);
                }
            }
        }
        for k in singles {
            let r = self.get_one(&k).await;
            results.insert(k, r);
        }
        for (region, keys) in ssm_batches {
            for chunk in keys.chunks(SSM_BATCH) {
                self.get_parameters(&region, chunk, &mut results).await;
            }
        }
        results
    }

    /// One `BatchGetSecretValue` (paginated); returns the keys to read one by one.
    async fn batch_get(
        &self,
        region: &str,
        chunk: &[Key],
        results: &mut HashMap<Key, Outcome>,
    ) -> Vec<Key> {
        let client = self.clients.secrets_manager(region);
        let ids: Vec<String> = chunk.iter().map(|k| k.id.clone()).collect();
        let mut found: HashMap<String, Outcome> = HashMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let out = client
                .batch_get_secret_value()
                .set_secret_id_list(Some(ids.clone()))
                .set_next_token(token.take())
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    let c = classify(&e);
                    if c.denies_batch_calls() {
                        tracing::info!(
                            region,
                            "BatchGetSecretValue denied; reading secrets one by one with GetSecretValue from now on"
                        );
                        self.batch_denied.store(true, Ordering::Relaxed);
                        return chunk.to_vec();
                    }
                    // Moto fails the whole batch for one unknown id; find which one by asking singly.
                    if c.kind == FailureKind::NotFound && chunk.len() > 1 {
                        return chunk.to_vec();
                    }
                    for k in chunk {
                        results.insert(k.clone(), Err(c.clone()));
                    }
                    return Vec::new();
                }
            };
            for e in out.secret_values() {
                let value = entry_value(e.secret_string(), e.secret_binary());
                for name in [e.arn(), e.name()].into_iter().flatten() {
                    found.insert(name.to_string(), value.clone());
                }
            }
            for e in out.errors() {
                let c = Classified::local(
                    e.error_code().unwrap_or("UnknownError"),
                    e.message().unwrap_or_default(),
                );
                if let Some(id) = e.secret_id() {
                    found.insert(id.to_string(), Err(c));
                }
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut rest = Vec::new();
        for k in chunk {
            match found.get(&k.id) {
                Some(r) => {
                    results.insert(k.clone(), r.clone());
                }
                // A partial ARN or an id AWS echoed differently: ask for it alone.
                None => rest.push(k.clone()),
            }
        }
        rest
    }

    async fn get_one(&self, k: &Key) -> Outcome {
        let out = self
            .clients
            .secrets_manager(&k.region)
            .get_secret_value()
            .secret_id(&k.id)
            .set_version_id(k.version_id.clone())
            .set_version_stage(k.version_stage.clone())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        entry_value(out.secret_string(), out.secret_binary())
    }

    async fn get_parameters(
        &self,
        region: &str,
        chunk: &[Key],
        results: &mut HashMap<Key, Outcome>,
    ) {
        let names: Vec<String> = chunk.iter().map(Key::ssm_selector).collect();
        let out = self
            .clients
            .ssm(region)
            .get_parameters()
            .set_names(Some(names))
            .with_decryption(true)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let c = classify(&e);
                // One bad version fails the whole call: split it to find which.
                if c.is_bad_parameter_version() && chunk.len() > 1 {
                    for k in chunk {
                        Box::pin(self.get_parameters(region, std::slice::from_ref(k), results))
                            .await;
                    }
                    return;
                }
                for k in chunk {
                    results.insert(k.clone(), Err(c.clone()));
                }
                return;
            }
        };
        for k in chunk {
            let sel = k.ssm_selector();
            let r = if out.invalid_parameters().contains(&sel) {
                let code = if k.pinned() {
                    "ParameterVersionNotFound"
                } else {
                    "ParameterNotFound"
                };
                Err(Classified::local(
                    code,
                    format!("parameter {sel} not found"),
                ))
            } else {
                // Moto omits the selector of pinned answers; the unpinned one is the newest.
                let found = out
                    .parameters()
                    .iter()
                    .filter(|p| parameter_matches(p, k))
                    .max_by_key(|p| if k.pinned() { 0 } else { p.version() });
                match found {
                    Some(p) => p
                        .value()
                        .map(|v| SecretValue::Text(v.to_string()))
                        .ok_or_else(|| {
                            Classified::local("EmptyParameter", "parameter has no value")
                        }),
                    None => Err(Classified::local(
                        "ParameterNotFound",
                        format!("parameter {sel} missing from the GetParameters response"),
                    )),
                }
            };
            results.insert(k.clone(), r);
        }
    }
}

/// `spec`'s `failover` ref (its ARN region wins), else the same ref in
/// `region` — for an ARN, the same ARN with `region` in it (a Secrets Manager
/// replica keeps everything but the region).
fn failover_key(spec: &SecretSpec, region: &str) -> Key {
    match &spec.failover {
        Some(f) => Key::new(f, spec, region),
        None => {
            let primary = Key::new(&spec.source, spec, region);
            let id = match primary.id.splitn(5, ':').collect::<Vec<_>>().as_slice() {
                ["arn", partition, service, _, rest] => {
                    format!("arn:{partition}:{service}:{region}:{rest}")
                }
                _ => primary.id.clone(),
            };
            Key {
                region: region.to_string(),
                id,
                ..primary
            }
        }
    }
}

fn parameter_matches(p: &aws_sdk_ssm::types::Parameter, k: &Key) -> bool {
    let name_ok = p.name() == Some(k.id.as_str()) || p.arn() == Some(k.id.as_str());
    if !name_ok {
        return false;
    }
    match (&k.version_id, &k.version_stage, p.selector()) {
        // An unpinned name and a pinned one can share a call: only the unpinned answer has no selector.
        (None, None, sel) => sel.is_none_or(str::is_empty),
        (Some(v), _, _) if v.parse::<i64>().ok() == Some(p.version()) => true,
        (v, l, Some(sel)) => {
            let sel = sel.trim_start_matches(':');
            v.as_deref() == Some(sel) || l.as_deref() == Some(sel)
        }
        (_, Some(_), None) => true,
        (Some(_), None, None) => false,
    }
}

pub(crate) fn entry_value(text: Option<&str>, binary: Option<&aws_smithy_types::Blob>) -> Outcome {
    match (text, binary) {
        (Some(s), _) => Ok(SecretValue::Text(s.to_string())),
        (None, Some(b)) => Ok(SecretValue::Binary(b.as_ref().to_vec())),
        (None, None) => Err(Classified::local(
            "EmptySecret",
            "the secret version has neither SecretString nor SecretBinary",
        )),
    }
}

impl Fetch for AwsFetcher {
    async fn select(&self, selections: &[SelectionSpec]) -> Vec<Selected> {
        crate::select::select_all(self, selections).await
    }

    async fn fetch(&self, specs: &[SecretSpec]) -> FetchOutcome {
        let keys: Vec<Key> = specs
            .iter()
            .map(|s| Key::new(&s.source, s, &self.clients.region))
            .collect();
        let primary = self.fetch_keys(distinct(&keys)).await;
        // A spec whose primary region looks down is read from the failover
        // region; all of those are read together, in as few calls as the primary.
        let failover_keys: Vec<Option<Key>> = specs
            .iter()
            .zip(&keys)
            .map(|(spec, key)| match (primary.get(key), &self.clients.failover_region) {
                (Some(Err(c)), Some(region)) if c.failover && *region != key.region => {
                    tracing::warn!(secret = %spec.source, code = %c.code, failover_region = %region, "primary region failed; trying the failover region");
                    Some(failover_key(spec, region))
                }
                _ => None,
            })
            .collect();
        let wanted: Vec<Key> = failover_keys.iter().flatten().cloned().collect();
        let failover = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.fetch_keys(distinct(&wanted)).await
        };
        specs
            .iter()
            .zip(keys)
            .zip(failover_keys)
            .map(|((spec, key), failover_key)| {
                let (key, answers) = match failover_key {
                    Some(fk) => (fk, &failover),
                    None => (key, &primary),
                };
                answers
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| {
                        Err(Classified::local("NoResult", "no answer for this secret"))
                    })
                    .map_err(|c| FetchFailure {
                        secret: spec.source.to_string(),
                        hint: hint(&c.code, key.action(), &key.resource(), &key.region),
                        code: c.code,
                        message: c.message,
                        kind: c.kind,
                    })
            })
            .collect()
    }
}

/// Each key once: identical references across specs are fetched once.
fn distinct(keys: &[Key]) -> Vec<Key> {
    keys.iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(r: &str, region: &str) -> Key {
        let spec = SecretSpec::new(SecretRef::parse(r).unwrap(), "f");
        Key::new(&spec.source, &spec, region)
    }

    #[test]
    fn hint_resources_are_arns_of_the_region_partition() {
        assert_eq!(
            key("prod/db", "eu-west-1").resource(),
            "arn:aws:secretsmanager:eu-west-1:*:secret:prod/db-*"
        );
        assert_eq!(
            key("prod/db", "cn-north-1").resource(),
            "arn:aws-cn:secretsmanager:cn-north-1:*:secret:prod/db-*"
        );
        assert_eq!(
            key("ssm:/app/key", "us-gov-west-1").resource(),
            "arn:aws-us-gov:ssm:us-gov-west-1:*:parameter/app/key"
        );
        let arn = "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db-AbCdEf";
        assert_eq!(
            key(arn, "eu-west-1").resource(),
            arn,
            "an ARN is its own resource"
        );
    }

    #[test]
    fn failover_of_an_arn_is_the_same_arn_in_the_failover_region() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
        let spec = SecretSpec::new(SecretRef::parse(arn).unwrap(), "f");
        let k = failover_key(&spec, "us-west-2");
        assert_eq!(
            (k.id.as_str(), k.region.as_str()),
            (
                "arn:aws:secretsmanager:us-west-2:123456789012:secret:prod/db-AbCdEf",
                "us-west-2"
            )
        );
        let spec = SecretSpec::new(SecretRef::parse("prod/db").unwrap(), "f");
        let k = failover_key(&spec, "us-west-2");
        assert_eq!((k.id.as_str(), k.region.as_str()), ("prod/db", "us-west-2"));
    }
}
