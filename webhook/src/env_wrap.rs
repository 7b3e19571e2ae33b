//! Pure: env vars from secret files. Each target container's `command` is
//! rewritten to start through the exec wrapper the agent puts in the volume:
//! `[<wrapper>, --mount-path P, --env NAME=PATH…, --env-from DIR…, --, <command…>]`,
//! `args` untouched, so argv is the wrapper's, then the app's own.

use k8s_openapi::api::core::v1::PodSpec;
use secrets_injector_shared::Problems;
use secrets_injector_shared::env::{EnvRequest, WRAPPER_FILE};

use crate::containers::{Slot, container};

/// A target container's new `command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub slot: Slot,
    pub command: Vec<String>,
}

/// The wrapper's path in app containers.
pub fn wrapper_path(mount_path: &str) -> String {
    format!("{mount_path}/{WRAPPER_FILE}")
}

/// The rewrites for `targets`; a target without `command` is a problem (the
/// webhook cannot see an image's ENTRYPOINT), a secret var that shadows the
/// container's own env a warning. A command already wrapped stays as it is.
pub fn rewrites(
    spec: &PodSpec,
    targets: &[Slot],
    env: &EnvRequest,
    mount_path: &str,
    problems: &mut Problems,
    warnings: &mut Vec<String>,
) -> Vec<Rewrite> {
    if env.is_empty() {
        return Vec::new();
    }
    let wrapper = wrapper_path(mount_path);
    let mut out = Vec::new();
    for slot in targets {
        let Some(c) = container(spec, *slot) else {
            continue;
        };
        let Some(command) = c.command.as_ref().filter(|cmd| !cmd.is_empty()) else {
            problems.push(
                &format!("spec.{}[{}].command", slot.list.field(), c.name),
                format!(
                    "container {:?} has no command, and secrets-injector.io/env-* starts it \
                     through secrets-injector-env, which must know what to run: set command \
                     to the image's ENTRYPOINT (keep args as they are; the webhook does not \
                     look images up in a registry)",
                    c.name
                ),
            );
            continue;
        };
        for v in &env.vars {
            if c.env.iter().flatten().any(|e| e.name == v.name) {
                warnings.push(format!(
                    "secrets-injector: container {:?} sets env {} itself; the value from the \
                     secret file {} wins",
                    c.name, v.name, v.path
                ));
            }
        }
        if command.first() == Some(&wrapper) {
            continue;
        }
        let mut new = vec![wrapper.clone(), "--mount-path".into(), mount_path.into()];
        new.extend(env.wrapper_args());
        new.push("--".into());
        new.extend(command.iter().cloned());
        out.push(Rewrite {
            slot: *slot,
            command: new,
        });
    }
    out
}
