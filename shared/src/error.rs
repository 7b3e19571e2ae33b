//! The shared crate's one error type, and the list of annotation problems.

use std::fmt;

/// One problem with one annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Full annotation key, e.g. `secrets-injector.io/secret-db`.
    pub annotation: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.annotation, self.message)
    }
}

/// Every problem found in a pod's annotations, reported together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, annotation: &str, message: impl Into<String>) {
        self.0.push(Problem {
            annotation: annotation.to_string(),
            message: message.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "secrets-injector: {n} invalid annotation{}: ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {p}", i + 1)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(Problems),
    #[error("SECRETS_INJECTOR_CONFIG is not valid JSON: {0}")]
    ConfigJson(String),
    #[error(
        "unsupported AgentConfig version {found}: this agent reads version {expected}; \
         run an agent image that matches the webhook"
    )]
    ConfigVersion { found: String, expected: u32 },
    #[error("invalid AgentConfig: {0}")]
    ConfigInvalid(String),
}
