//! The agent container as the operator configured it, validated once at start-up
//! (`AgentFlags::template`): what `decide` and `patch` read on every request.

use k8s_openapi::api::core::v1::EnvVar;
use secrets_injector_shared::Quantity;

use crate::settings::{AgentFlags, SidecarStyle};

/// The agent's `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn parse(s: &str) -> Option<PullPolicy> {
        [Self::Always, Self::IfNotPresent, Self::Never]
            .into_iter()
            .find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A request and a limit of one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub request: Quantity,
    pub limit: Quantity,
}

impl Resources {
    pub fn new(request: Quantity, limit: Quantity) -> Resources {
        Resources { request, limit }
    }

    /// A pod's annotation replaces the request; the limit is raised to at least
    /// the request, so a pod can ask for more without producing an invalid spec.
    pub fn with_request(&self, request: Option<&Quantity>) -> Resources {
        let request = request.unwrap_or(&self.request).clone();
        let limit = if self.limit.value() >= request.value() {
            self.limit.clone()
        } else {
            request.clone()
        };
        Resources { request, limit }
    }
}

/// Everything about the injected agent that comes from the operator, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentTemplate {
    pub image: String,
    pub pull_policy: PullPolicy,
    pub cpu: Resources,
    pub memory: Resources,
    /// `--agent-env`, then `--agent-ca-bundle`: wins over identity env copied from the pod.
    pub env: Vec<EnvVar>,
    /// uid and gid when the app's are unknown or root.
    pub uid: i64,
    pub volume_size_limit: Quantity,
    pub sidecar_style: SidecarStyle,
}

impl Default for AgentTemplate {
    /// The template of the default flags (a unit test proves they are valid).
    fn default() -> Self {
        AgentFlags::default()
            .template()
            .expect("the default agent flags are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn pull_policies_round_trip_and_others_are_refused() {
        for p in [
            PullPolicy::Always,
            PullPolicy::IfNotPresent,
            PullPolicy::Never,
        ] {
            assert_eq!(PullPolicy::parse(p.as_str()), Some(p));
        }
        assert_eq!(PullPolicy::parse("always"), None);
        assert_eq!(PullPolicy::parse(""), None);
    }

    #[test]
    fn a_request_replaces_the_default_and_raises_the_limit() {
        let r = Resources::new(q("10m"), q("100m"));
        let s = |r: &Resources| (r.request.to_string(), r.limit.to_string());
        assert_eq!(s(&r.with_request(None)), ("10m".into(), "100m".into()));
        assert_eq!(
            s(&r.with_request(Some(&q("250m")))),
            ("250m".into(), "250m".into())
        );
        assert_eq!(
            s(&r.with_request(Some(&q("100m")))),
            ("100m".into(), "100m".into()),
            "equal: the configured limit stays"
        );
        assert_eq!(
            s(&r.with_request(Some(&q("0.05")))),
            ("0.05".into(), "100m".into())
        );
        let mem = Resources::new(q("16Mi"), q("1G"));
        assert_eq!(
            s(&mem.with_request(Some(&q("1Gi")))),
            ("1Gi".into(), "1Gi".into()),
            "suffixes compare by value"
        );
        assert_eq!(
            s(&mem.with_request(Some(&q("1000000000")))),
            ("1000000000".into(), "1G".into()),
            "a request equal in value to the limit keeps the limit as configured"
        );
    }
}
