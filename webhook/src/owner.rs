//! Pure: who the agent runs as and who owns the files it writes, from the
//! pod's and the target containers' security contexts (docs/decisions.md,
//! "The agent runs as the app's non-root uid/gid").

use k8s_openapi::api::core::v1::{Container, PodSpec};
use secrets_injector_shared::Owner;

use crate::containers::{Slot, container};

/// The agent's `runAsUser` / `runAsGroup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub user: i64,
    pub group: i64,
}

/// Run as the first target's non-root uid/gid, else `default_uid` (never root).
pub fn run_as(spec: &PodSpec, first: &Container, default_uid: i64) -> RunAs {
    RunAs {
        user: non_root(uid_of(spec, first)).unwrap_or(default_uid),
        group: non_root(gid_of(spec, first)).unwrap_or(default_uid),
    }
}

/// Files are 0440 only for an owner every target container shares: the uid
/// (all the same), the pod's fsGroup (every container's supplementary group)
/// or a runAsGroup they all have. Root counts as unknown: the agent never runs
/// as root, so it cannot own files as root.
pub fn file_owner(spec: &PodSpec, targets: &[Slot]) -> Option<Owner> {
    let shared = |id: fn(&PodSpec, &Container) -> Option<i64>| {
        let mut ids = targets
            .iter()
            .filter_map(|slot| container(spec, *slot))
            .map(|c| non_root(id(spec, c)));
        let first = ids.next().flatten();
        ids.all(|other| other == first).then_some(first).flatten()
    };
    let fs_group = spec.security_context.as_ref().and_then(|s| s.fs_group);
    let as_u32 = |id: Option<i64>| id.and_then(|v| u32::try_from(v).ok());
    let owner = Owner {
        uid: as_u32(shared(uid_of)),
        gid: as_u32(non_root(fs_group).or_else(|| shared(gid_of))),
    };
    (owner.uid.is_some() || owner.gid.is_some()).then_some(owner)
}

/// A container's uid: its own securityContext, else the pod's.
fn uid_of(spec: &PodSpec, c: &Container) -> Option<i64> {
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or_else(|| spec.security_context.as_ref().and_then(|s| s.run_as_user))
}

/// A container's gid: its own securityContext, else the pod's.
fn gid_of(spec: &PodSpec, c: &Container) -> Option<i64> {
    c.security_context
        .as_ref()
        .and_then(|s| s.run_as_group)
        .or_else(|| spec.security_context.as_ref().and_then(|s| s.run_as_group))
}

fn non_root(id: Option<i64>) -> Option<i64> {
    id.filter(|v| *v > 0)
}
