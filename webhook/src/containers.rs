//! Pure: containers of a pod spec by position — the agent's, and the targets
//! that get the secrets mount. `decide` and `patch` address containers only
//! through [`Slot`]s found here, so an index always means the same container.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use secrets_injector_shared::{Problems, keys};

/// Name of the injected agent (init container, native sidecar, or classic sidecar).
pub const AGENT_CONTAINER: &str = "secrets-injector-agent";
/// Name of the classic style's first-fetch init container (names are unique per pod).
pub const AGENT_INIT_CONTAINER: &str = "secrets-injector-agent-init";

/// Which container list of the pod spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Init,
    App,
}

impl List {
    /// Field name in the pod spec, for JSON pointers.
    pub fn field(self) -> &'static str {
        match self {
            List::Init => "initContainers",
            List::App => "containers",
        }
    }
}

/// A container by position, as found in the reviewed pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub list: List,
    pub index: usize,
}

/// The container at `slot`; `None` only for a slot from another spec.
pub fn container(spec: &PodSpec, slot: Slot) -> Option<&Container> {
    match slot.list {
        List::Init => spec.init_containers.as_deref()?.get(slot.index),
        List::App => spec.containers.get(slot.index),
    }
}

/// Every container with its slot: init containers first, then app containers.
fn slots(spec: &PodSpec) -> impl Iterator<Item = (Slot, &Container)> {
    let at = |list| move |(index, c)| (Slot { list, index }, c);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .enumerate()
        .map(at(List::Init));
    init.chain(spec.containers.iter().enumerate().map(at(List::App)))
}

fn is_agent(name: &str) -> bool {
    name == AGENT_CONTAINER || name == AGENT_INIT_CONTAINER
}

/// Slots of agents the webhook injected earlier (their presence marks the pod as injected).
pub fn agent_slots(spec: &PodSpec) -> Vec<Slot> {
    slots(spec)
        .filter(|(_, c)| is_agent(&c.name))
        .map(|(s, _)| s)
        .collect()
}

/// Named containers (app list first, then init) in annotation order; default:
/// all app containers. Unknown names and a pod without app containers go to `p`.
pub fn resolve_targets(spec: &PodSpec, names: Option<&[String]>, p: &mut Problems) -> Vec<Slot> {
    let Some(names) = names else {
        let all: Vec<Slot> = slots(spec)
            .filter(|(s, c)| s.list == List::App && !is_agent(&c.name))
            .map(|(s, _)| s)
            .collect();
        if all.is_empty() {
            p.push(
                keys::CONTAINERS,
                "the pod has no app containers to mount the secrets into",
            );
        }
        return all;
    };
    let mut found = Vec::new();
    for name in names {
        let hit = slots(spec)
            .filter(|(_, c)| &c.name == name)
            .min_by_key(|(s, _)| s.list == List::Init)
            .map(|(s, _)| s);
        match hit {
            Some(s) if !found.contains(&s) => found.push(s),
            Some(_) => {}
            None => p.push(
                keys::CONTAINERS,
                format!(
                    "container {name:?} does not exist in the pod (containers: {}; init containers: {})",
                    list_names(&spec.containers),
                    list_names(spec.init_containers.as_deref().unwrap_or_default()),
                ),
            ),
        }
    }
    found
}

fn list_names(cs: &[Container]) -> String {
    if cs.is_empty() {
        return "none".to_string();
    }
    cs.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> Container {
        Container {
            name: name.into(),
            ..Container::default()
        }
    }

    #[test]
    fn a_named_target_is_looked_up_in_the_app_list_first() {
        // Names are unique per pod once the API server validates it; admission
        // runs before that, so the documented order must hold for any input.
        let spec = PodSpec {
            init_containers: Some(vec![c("x"), c("init")]),
            containers: vec![c("app"), c("x")],
            ..PodSpec::default()
        };
        let mut p = Problems::default();
        let names = ["x".to_string(), "init".to_string(), "x".to_string()];
        let found = resolve_targets(&spec, Some(&names), &mut p);
        assert!(p.is_empty(), "{p:?}");
        let slot = |list, index| Slot { list, index };
        assert_eq!(found, [slot(List::App, 1), slot(List::Init, 1)]);
    }
}
