//! A selection's secrets (§3c) into files under its directory. Names that are
//! unsafe as paths, or that collide (`a` and `a/b`), are skipped, logged by
//! name (never a value) and counted: nothing is ever written outside the directory.

use std::collections::BTreeSet;

use secrets_injector_shared::select::{self, SelectionSpec};
use secrets_injector_shared::{SecretRef, SecretSpec};

use crate::Error;
use crate::split::{OutFile, render};
use crate::value::SecretValue;

/// The files of one selection and the names it skipped.
#[derive(Debug, Default)]
pub struct Spread {
    pub files: Vec<OutFile>,
    /// Names written, in order (for templates).
    pub accepted: Vec<usize>,
    /// Names skipped as unsafe or colliding.
    pub skipped: usize,
}

/// Render every safe secret of `found` under `sel.path` in `sel.format`.
pub fn spread(
    sel: &SelectionSpec,
    found: &[(String, SecretValue)],
    mode: u32,
) -> Result<Spread, Error> {
    let mut out = Spread::default();
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by(|a, b| found[*a].0.cmp(&found[*b].0));
    for i in order {
        let (name, value) = &found[i];
        let reason = match select::check_name(name) {
            Err(e) => Some(e),
            Ok(()) if collides(&taken, name) => Some("collides with another selected name".into()),
            Ok(()) => None,
        };
        if let Some(reason) = reason {
            tracing::warn!(selection = %sel.select, name = ?name, reason = %reason, "selected name skipped: not a safe file name");
            out.skipped += 1;
            continue;
        }
        taken.insert(name);
        let mut spec = SecretSpec::new(
            SecretRef::SecretsManager {
                id: format!("{} ({name})", sel.select),
                region: None,
            },
            format!("{}/{name}", sel.path),
        );
        spec.format = sel.format;
        out.files.append(&mut render(&spec, value, mode)?);
        out.accepted.push(i);
    }
    Ok(out)
}

/// `name` equals, sits under, or is above a name already taken.
fn collides(taken: &BTreeSet<&str>, name: &str) -> bool {
    let above = name.match_indices('/').map(|(i, _)| &name[..i]);
    if above
        .chain(std::iter::once(name))
        .any(|a| taken.contains(a))
    {
        return true;
    }
    let below = format!("{name}/");
    taken
        .range(below.as_str()..)
        .next()
        .is_some_and(|t| t.starts_with(&below))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_shared::Format;
    use secrets_injector_shared::select::Selector;

    fn sel(format: Format) -> SelectionSpec {
        SelectionSpec {
            select: Selector::parse("prod/orders/*").unwrap(),
            path: "orders".into(),
            format,
        }
    }

    fn found(names: &[&str]) -> Vec<(String, SecretValue)> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    SecretValue::Text(format!("{{\"k\":\"{n}\"}}")),
                )
            })
            .collect()
    }

    #[test]
    fn hostile_names_are_skipped_and_counted() {
        let f = found(&[
            "ok",
            "a/../../etc/x",
            "a//b",
            "",
            "..data",
            "nul\0x",
            &"x".repeat(256),
            "sub/key",
        ]);
        let s = spread(&sel(Format::Raw), &f, 0o440).unwrap();
        let paths: Vec<&str> = s.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["orders/ok", "orders/sub/key"]);
        assert_eq!(s.skipped, 6);
    }

    #[test]
    fn colliding_names_keep_the_first_in_order() {
        let s = spread(
            &sel(Format::Raw),
            &found(&["a/b", "a", "a-b", "c", "c/d/e"]),
            0o440,
        )
        .unwrap();
        let paths: Vec<&str> = s.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["orders/a", "orders/a-b", "orders/c"]);
        assert_eq!(s.skipped, 2);
    }

    #[test]
    fn the_format_applies_to_each_secret() {
        let s = spread(&sel(Format::Files), &found(&["x"]), 0o440).unwrap();
        assert_eq!(s.files[0].path, "orders/x/k");
        let s = spread(&sel(Format::NoFile), &found(&["x"]), 0o440).unwrap();
        assert!(s.files.is_empty());
        assert_eq!(s.accepted, [0]);
    }
}
