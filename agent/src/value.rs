//! A fetched secret value, apart from where it came from: rendering and
//! writing use it without knowing AWS.

/// The value of one secret or parameter. Its `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    Text(String),
    Binary(Vec<u8>),
}

impl SecretValue {
    /// The stored bytes (UTF-8 for text).
    pub fn bytes(&self) -> &[u8] {
        match self {
            SecretValue::Text(s) => s.as_bytes(),
            SecretValue::Binary(b) => b,
        }
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::Text(s) => write!(f, "Text(<{} bytes redacted>)", s.len()),
            SecretValue::Binary(b) => write!(f, "Binary(<{} bytes redacted>)", b.len()),
        }
    }
}
