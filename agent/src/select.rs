//! Selections (§3c) over AWS: a Secrets Manager name prefix through
//! `BatchGetSecretValue` with a name filter (20 a page), an SSM path through
//! `GetParametersByPath` (recursive, decrypted, 10 a page), exact tags through
//! `ListSecrets` (100 a page) then `BatchGetSecretValue` by ARN. AWS's filters
//! are looser than ours (name prefixes are case-insensitive, tag keys and
//! values match separately), so every answer is verified here.

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use secrets_injector_shared::select::{MAX_SELECTED, SelectionSpec, Selector, Tag};

use crate::classify::{Classified, classify, hint};
use crate::failure::FetchFailure;
use crate::fetch::{AwsFetcher, Key, Selected, entry_value, partition};
use crate::value::SecretValue;

/// `BatchGetSecretValue` page size with filters (API maximum).
const SM_PAGE: i32 = 20;
/// `GetParametersByPath` page size (API maximum).
const SSM_PAGE: i32 = 10;
/// `ListSecrets` page size (API maximum).
const LIST_PAGE: i32 = 100;
/// Pages one selector may read: the cap at the smallest page size, with room
/// for pages AWS filled with entries our verification drops.
const MAX_PAGES: usize = 4 * MAX_SELECTED / SSM_PAGE as usize;

type Found = Result<Vec<(String, SecretValue)>, Classified>;

/// Every selection, in order; each is all or nothing.
pub(crate) async fn select_all(f: &AwsFetcher, selections: &[SelectionSpec]) -> Vec<Selected> {
    let region = f.clients().region.clone();
    let mut out = Vec::with_capacity(selections.len());
    for s in selections {
        let found = match &s.select {
            Selector::Prefix { prefix } => by_prefix(f, &region, prefix).await,
            Selector::SsmPath { path } => by_path(f, &region, path).await,
            Selector::Tags { tags } => by_tags(f, &region, tags).await,
        };
        out.push(found.map_err(|c| failure(&s.select, c, &region)));
    }
    out
}

fn failure(sel: &Selector, c: Classified, region: &str) -> FetchFailure {
    FetchFailure {
        secret: sel.to_string(),
        hint: hint(&c.code, sel.actions(), &resource(sel, region), region),
        code: c.code,
        message: c.message,
        kind: c.kind,
    }
}

/// IAM resource pattern of a selector, for hints.
fn resource(sel: &Selector, region: &str) -> String {
    let p = partition(region);
    match sel {
        Selector::Prefix { prefix } => {
            format!("arn:{p}:secretsmanager:{region}:*:secret:{prefix}*")
        }
        Selector::SsmPath { path } => {
            format!("arn:{p}:ssm:{region}:*:parameter{path} and parameter{path}/*")
        }
        Selector::Tags { .. } => {
            format!("arn:{p}:secretsmanager:{region}:*:secret:* (the tagged secrets)")
        }
    }
}

fn too_many() -> Classified {
    Classified::local(
        "SelectionTooLarge",
        format!(
            "the selector matches more than {MAX_SELECTED} secrets; narrow the prefix, path or tags"
        ),
    )
}

fn too_many_pages() -> Classified {
    Classified::local(
        "SelectionTooLarge",
        format!("still paging after {MAX_PAGES} pages; narrow the prefix, path or tags"),
    )
}

/// Add one verified secret; an error once past the cap.
fn push(
    found: &mut Vec<(String, SecretValue)>,
    name: &str,
    v: SecretValue,
) -> Result<(), Classified> {
    if found.len() >= MAX_SELECTED {
        return Err(too_many());
    }
    found.push((name.to_string(), v));
    Ok(())
}

async fn by_prefix(f: &AwsFetcher, region: &str, prefix: &str) -> Found {
    let client = f.clients().secrets_manager(region);
    let filter = Filter::builder()
        .key(FilterNameStringType::Name)
        .values(prefix)
        .build();
    let mut found = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .batch_get_secret_value()
            .filters(filter.clone())
            .max_results(SM_PAGE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        if let Some(e) = out.errors().first() {
            return Err(Classified::local(
                e.error_code().unwrap_or("UnknownError"),
                format!(
                    "{}: {}",
                    e.secret_id().unwrap_or("a selected secret"),
                    e.message().unwrap_or_default()
                ),
            ));
        }
        for e in out.secret_values() {
            // AWS matches name prefixes case-insensitively; ours is exact.
            let Some(rel) = e.name().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            push(
                &mut found,
                rel,
                entry_value(e.secret_string(), e.secret_binary())?,
            )?;
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
    Err(too_many_pages())
}

async fn by_path(f: &AwsFetcher, region: &str, path: &str) -> Found {
    let client = f.clients().ssm(region);
    let under = format!("{path}/");
    let mut found = Vec::new();
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let out = client
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .max_results(SSM_PAGE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        for p in out.parameters() {
            let Some(rel) = p.name().and_then(|n| n.strip_prefix(&under)) else {
                continue;
            };
            let v = p
                .value()
                .ok_or_else(|| Classified::local("EmptyParameter", "a parameter has no value"))?;
            push(&mut found, rel, SecretValue::Text(v.to_string()))?;
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(found);
        }
    }
    Err(too_many_pages())
}

/// `ListSecrets` narrowed by the first tag, every tag verified as a pair,
/// then the values in `BatchGetSecretValue` calls of 20.
async fn by_tags(f: &AwsFetcher, region: &str, tags: &[Tag]) -> Found {
    let client = f.clients().secrets_manager(region);
    let filters = tags.first().into_iter().flat_map(|t| {
        [
            Filter::builder()
                .key(FilterNameStringType::TagKey)
                .values(&t.key)
                .build(),
            Filter::builder()
                .key(FilterNameStringType::TagValue)
                .values(&t.value)
                .build(),
        ]
    });
    let filters: Vec<Filter> = filters.collect();
    let mut matched: Vec<(String, String)> = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(too_many_pages());
        }
        let out = client
            .list_secrets()
            .set_filters(Some(filters.clone()))
            .max_results(LIST_PAGE)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        for s in out.secret_list() {
            let has = |t: &Tag| {
                s.tags()
                    .iter()
                    .any(|g| g.key() == Some(t.key.as_str()) && g.value() == Some(t.value.as_str()))
            };
            if let (Some(name), Some(arn), true) = (s.name(), s.arn(), tags.iter().all(has)) {
                if matched.len() >= MAX_SELECTED {
                    return Err(too_many());
                }
                matched.push((name.to_string(), arn.to_string()));
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    let keys: Vec<Key> = matched
        .iter()
        .map(|(_, arn)| Key::latest_secret(region, arn))
        .collect();
    let mut values = f.fetch_keys(keys.clone()).await;
    let mut found = Vec::with_capacity(matched.len());
    for ((name, _), key) in matched.iter().zip(keys) {
        match values.remove(&key) {
            Some(Ok(v)) => found.push((name.clone(), v)),
            Some(Err(c)) => {
                return Err(Classified {
                    message: format!("{name}: {}", c.message),
                    ..c
                });
            }
            None => return Err(Classified::local("NoResult", format!("{name}: no answer"))),
        }
    }
    Ok(found)
}
