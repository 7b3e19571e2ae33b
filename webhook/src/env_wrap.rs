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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::List;
    use k8s_openapi::api::core::v1::{Container, EnvVar};
    use secrets_injector_shared::env::EnvFile;

    fn c(name: &str, command: Option<&[&str]>, env: &[&str]) -> Container {
        Container {
            name: name.into(),
            command: command.map(|c| c.iter().map(|s| s.to_string()).collect()),
            env: Some(
                env.iter()
                    .map(|n| EnvVar {
                        name: n.to_string(),
                        value: Some("own".into()),
                        value_from: None,
                    })
                    .collect(),
            ),
            ..Container::default()
        }
    }

    fn slot(index: usize) -> Slot {
        Slot {
            list: List::App,
            index,
        }
    }

    fn pass() -> EnvRequest {
        EnvRequest {
            vars: vec![EnvFile {
                name: "PASS".into(),
                path: "db/password".into(),
            }],
            from: vec![],
        }
    }

    /// New commands by slot index.
    type Commands = Vec<(usize, Vec<String>)>;

    /// (commands of the rewrites by slot index, problem keys, warnings).
    fn run(
        containers: Vec<Container>,
        targets: &[Slot],
        env: &EnvRequest,
    ) -> (Commands, Vec<String>, Vec<String>) {
        let spec = PodSpec {
            containers,
            ..PodSpec::default()
        };
        let (mut p, mut w) = (Problems::default(), Vec::new());
        let out = rewrites(&spec, targets, env, "/s", &mut p, &mut w);
        let cmds = out.into_iter().map(|r| (r.slot.index, r.command)).collect();
        let keys = p.0.into_iter().map(|x| x.annotation).collect();
        (cmds, keys, w)
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_wrapper_lives_in_the_mount() {
        assert_eq!(wrapper_path("/s"), "/s/..secrets-injector-env");
    }

    #[test]
    fn commands_are_wrapped_or_their_absence_reported() {
        let wrapped = strs(&[
            "/s/..secrets-injector-env",
            "--mount-path",
            "/s",
            "--env",
            "PASS=db/password",
            "--",
            "/app",
            "-v",
        ]);
        // (case, containers, new commands, keys of the problems)
        type Case<'a> = (&'a str, Vec<Container>, Commands, Vec<&'a str>);
        let cases: Vec<Case> = vec![
            (
                "wrapped",
                vec![c("a", Some(&["/app", "-v"]), &[])],
                vec![(0, wrapped.clone())],
                vec![],
            ),
            (
                "no command",
                vec![c("a", None, &[])],
                vec![],
                vec!["spec.containers[a].command"],
            ),
            (
                "an empty command",
                vec![c("a", Some(&[]), &[])],
                vec![],
                vec!["spec.containers[a].command"],
            ),
            (
                "already wrapped",
                vec![c(
                    "a",
                    Some(&wrapped.iter().map(String::as_str).collect::<Vec<_>>()),
                    &[],
                )],
                vec![],
                vec![],
            ),
            (
                "the wrapper not first is wrapped again",
                vec![c("a", Some(&["/app", "/s/..secrets-injector-env"]), &[])],
                vec![(
                    0,
                    strs(&[
                        "/s/..secrets-injector-env",
                        "--mount-path",
                        "/s",
                        "--env",
                        "PASS=db/password",
                        "--",
                        "/app",
                        "/s/..secrets-injector-env",
                    ]),
                )],
                vec![],
            ),
        ];
        for (case, containers, want_cmds, want_problems) in cases {
            let (cmds, problems, _) = run(containers, &[slot(0)], &pass());
            assert_eq!(cmds, want_cmds, "{case}");
            assert_eq!(problems, want_problems, "{case}");
        }
    }

    #[test]
    fn without_env_nothing_is_rewritten_or_required() {
        let (cmds, problems, warnings) = run(
            vec![c("a", None, &["PASS"])],
            &[slot(0)],
            &EnvRequest::default(),
        );
        assert!(cmds.is_empty() && problems.is_empty() && warnings.is_empty());
    }

    #[test]
    fn only_targets_that_exist_are_rewritten() {
        let (cmds, problems, _) = run(
            vec![c("a", Some(&["/a"]), &[]), c("b", Some(&["/b"]), &[])],
            &[slot(1), slot(7)],
            &pass(),
        );
        assert_eq!(cmds.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        assert_eq!(cmds[0].1.last().map(String::as_str), Some("/b"));
        assert!(problems.is_empty());
    }

    #[test]
    fn a_secret_var_shadowing_the_container_env_warns_once() {
        for (case, env, n) in [
            ("same name", &["PASS"][..], 1),
            ("other names", &["OTHER", "PASSWORD"][..], 0),
            ("among others", &["OTHER", "PASS"][..], 1),
        ] {
            let (_, _, warnings) = run(vec![c("a", Some(&["/a"]), env)], &[slot(0)], &pass());
            assert_eq!(warnings.len(), n, "{case}: {warnings:?}");
            if n == 1 {
                assert_eq!(
                    warnings[0],
                    "secrets-injector: container \"a\" sets env PASS itself; the value from the \
                     secret file db/password wins",
                    "{case}"
                );
            }
        }
    }
}
