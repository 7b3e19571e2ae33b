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

/// Longest deny message: the API server shows it to `kubectl` users and
/// stores it in events, so a pod cannot make us echo megabytes back.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest single annotation key or problem text before the middle is elided.
const MAX_PART_BYTES: usize = 300;

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let mut out = format!(
            "secrets-injector: {n} invalid annotation{}: ",
            if n == 1 { "" } else { "s" }
        );
        for (i, p) in self.0.iter().enumerate() {
            let item = format!(
                "{}[{}] {}: {}",
                if i > 0 { "; " } else { "" },
                i + 1,
                elide(&p.annotation),
                elide(&p.message)
            );
            // Room for the largest possible "; … and N more" tail.
            if out.len() + item.len() > MAX_MESSAGE_BYTES - 40 {
                out.push_str(&format!("; … and {} more", n - i));
                break;
            }
            out.push_str(&item);
        }
        f.write_str(&out)
    }
}

/// `s` whole when short, else its start and end around the number of bytes left out.
fn elide(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_PART_BYTES {
        return s.into();
    }
    let head = floor_char_boundary(s, 200);
    let tail = ceil_char_boundary(s, s.len() - 60);
    format!(
        "{}…({} bytes elided)…{}",
        &s[..head],
        tail - head,
        &s[tail..]
    )
    .into()
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(items: &[(&str, &str)]) -> Problems {
        let mut p = Problems::default();
        for (a, m) in items {
            p.push(a, *m);
        }
        p
    }

    #[test]
    fn short_messages_are_whole() {
        let p = problems(&[("a", "one"), ("b", "two")]);
        assert_eq!(
            p.to_string(),
            "secrets-injector: 2 invalid annotations: [1] a: one; [2] b: two"
        );
        assert_eq!(
            problems(&[("a", "x")]).to_string(),
            "secrets-injector: 1 invalid annotation: [1] a: x"
        );
    }

    #[test]
    fn long_values_are_elided_at_char_boundaries() {
        let long = format!("{}{}", "é".repeat(400), "END");
        let msg = problems(&[("k", &long)]).to_string();
        assert!(msg.len() < 400, "{}", msg.len());
        assert!(
            msg.contains("bytes elided") && msg.ends_with("END"),
            "{msg}"
        );
        let exact = "x".repeat(MAX_PART_BYTES);
        assert!(problems(&[("k", &exact)]).to_string().ends_with(&exact));
        let over = "x".repeat(MAX_PART_BYTES + 1);
        assert!(problems(&[("k", &over)]).to_string().contains("elided"));
    }

    #[test]
    fn many_problems_stay_under_the_limit_and_are_counted() {
        let many: Vec<(String, String)> = (0..500)
            .map(|i| (format!("secrets-injector.io/secret-{i}"), "x".repeat(250)))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(a, m)| (a.as_str(), m.as_str())).collect();
        let msg = problems(&refs).to_string();
        assert!(msg.len() <= MAX_MESSAGE_BYTES, "{}", msg.len());
        assert!(msg.starts_with("secrets-injector: 500 invalid annotations: [1] "));
        let shown = msg.matches("; [").count() + 1;
        assert!(
            msg.ends_with(&format!("; … and {} more", 500 - shown)),
            "{}",
            &msg[msg.len() - 40..]
        );
    }
}
