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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::List;
    use k8s_openapi::api::core::v1::{PodSecurityContext, SecurityContext};

    /// A pod with the given pod-level (uid, gid, fsGroup) and one container per
    /// (uid, gid) pair in `containers`.
    fn pod(
        uid: Option<i64>,
        gid: Option<i64>,
        fs_group: Option<i64>,
        containers: &[(Option<i64>, Option<i64>)],
    ) -> PodSpec {
        PodSpec {
            security_context: Some(PodSecurityContext {
                run_as_user: uid,
                run_as_group: gid,
                fs_group,
                ..PodSecurityContext::default()
            }),
            containers: containers
                .iter()
                .enumerate()
                .map(|(i, (u, g))| Container {
                    name: format!("c{i}"),
                    security_context: Some(SecurityContext {
                        run_as_user: *u,
                        run_as_group: *g,
                        ..SecurityContext::default()
                    }),
                    ..Container::default()
                })
                .collect(),
            ..PodSpec::default()
        }
    }

    fn all(spec: &PodSpec) -> Vec<Slot> {
        (0..spec.containers.len())
            .map(|index| Slot {
                list: List::App,
                index,
            })
            .collect()
    }

    #[test]
    fn the_agent_runs_as_a_non_root_app_id_or_the_default() {
        for (case, spec, want) in [
            (
                "container ids",
                pod(None, None, None, &[(Some(1), Some(2))]),
                (1, 2),
            ),
            (
                "pod ids",
                pod(Some(7), Some(8), None, &[(None, None)]),
                (7, 8),
            ),
            (
                "container over pod",
                pod(Some(7), Some(8), None, &[(Some(9), None)]),
                (9, 8),
            ),
            (
                "root is never used",
                pod(None, None, None, &[(Some(0), Some(0))]),
                (100, 100),
            ),
            (
                "negative ids neither",
                pod(None, None, None, &[(Some(-1), Some(-2))]),
                (100, 100),
            ),
            (
                "unknown",
                pod(None, None, None, &[(None, None)]),
                (100, 100),
            ),
        ] {
            let got = run_as(&spec, &spec.containers[0], 100);
            assert_eq!((got.user, got.group), want, "{case}");
        }
    }

    #[test]
    fn files_are_owned_by_what_every_target_shares() {
        let owner = |uid, gid| Some(Owner { uid, gid });
        for (case, spec, want) in [
            (
                "one target",
                pod(None, None, None, &[(Some(5), Some(6))]),
                owner(Some(5), Some(6)),
            ),
            (
                "uid only",
                pod(None, None, None, &[(Some(5), None)]),
                owner(Some(5), None),
            ),
            (
                "gid only",
                pod(None, None, None, &[(None, Some(6))]),
                owner(None, Some(6)),
            ),
            (
                "nothing known",
                pod(None, None, None, &[(None, None)]),
                None,
            ),
            (
                "root is unknown",
                pod(Some(0), Some(0), Some(0), &[(None, None)]),
                None,
            ),
            (
                "shared uid, different gids",
                pod(None, None, None, &[(Some(5), Some(6)), (Some(5), Some(7))]),
                owner(Some(5), None),
            ),
            (
                "different uids, shared gid",
                pod(None, None, None, &[(Some(5), Some(6)), (Some(4), Some(6))]),
                owner(None, Some(6)),
            ),
            (
                "fsGroup wins over a shared gid",
                pod(
                    None,
                    None,
                    Some(9),
                    &[(Some(5), Some(6)), (Some(4), Some(6))],
                ),
                owner(None, Some(9)),
            ),
            (
                "a root fsGroup falls back to the shared gid",
                pod(None, None, Some(0), &[(None, Some(6)), (None, Some(6))]),
                owner(None, Some(6)),
            ),
            (
                "a root uid in one target: no shared uid",
                pod(None, None, None, &[(Some(5), None), (Some(0), None)]),
                None,
            ),
            (
                "an id beyond u32 is no owner",
                pod(None, None, None, &[(Some(1 << 40), Some(6))]),
                owner(None, Some(6)),
            ),
        ] {
            assert_eq!(file_owner(&spec, &all(&spec)), want, "{case}");
        }
    }
}
