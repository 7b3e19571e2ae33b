//! Kubernetes resource quantities (`100m`, `0.5`, `64Mi`, `1e3`): one grammar,
//! checked once, comparable as numbers (agent requests vs limits).

use std::fmt;

/// A non-negative quantity: the text as written (what goes into the pod) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    text: String,
    value: f64,
}

impl Quantity {
    /// Parse `s` (surrounding whitespace ignored); the error names the input and an example.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        let bad = || format!("{s:?} is not a Kubernetes quantity (e.g. 50m, 0.1, 32Mi)");
        let t = s.trim();
        let num_end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(t.len());
        let (signed, suffix) = t.split_at(num_end);
        if signed.starts_with('-') {
            return Err(bad());
        }
        let num = signed.strip_prefix('+').unwrap_or(signed);
        let num_ok = !num.is_empty()
            && num != "."
            && num.matches('.').count() <= 1
            && num.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !num_ok {
            return Err(bad());
        }
        let scale = scale(suffix).ok_or_else(bad)?;
        let n: f64 = num.parse().map_err(|_| bad())?;
        // `0e310` is 0 × ∞ = NaN and `1e400` ∞: no request/limit comparison holds (found by fuzzing).
        let value = n * scale;
        if !value.is_finite() {
            return Err(bad());
        }
        Ok(Quantity {
            text: t.to_string(),
            value,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in base units (cores, bytes).
    pub fn value(&self) -> f64 {
        self.value
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Multiplier of a suffix: SI, binary, or a decimal exponent (`e3`, `E-2`).
fn scale(suffix: &str) -> Option<f64> {
    Some(match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e => {
            let exp = e.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix('-').unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            10f64.powi(exp.parse().ok()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> f64 {
        Quantity::parse(s).unwrap().value()
    }

    #[test]
    fn accepted_forms_and_their_values() {
        for (q, want) in [
            ("100m", 0.1),
            ("0.5", 0.5),
            ("64Mi", 64.0 * 1024.0 * 1024.0),
            ("1", 1.0),
            ("1e3", 1000.0),
            ("1E-2", 0.01),
            ("1G", 1e9),
            (".5", 0.5),
            ("+2", 2.0),
            (" 3k ", 3000.0),
        ] {
            assert!((value(q) - want).abs() < 1e-9, "{q}");
        }
        assert_eq!(Quantity::parse(" 3k ").unwrap().as_str(), "3k");
        assert!(value("1Gi") > value("1G"));
    }

    #[test]
    fn rejected_forms_name_the_input() {
        for q in [
            "", "abc", "10 Mi", "-1", "1.2.3", "5mb", ".", "+", "1e", "1e-", "1e+3", "1ex", "-",
        ] {
            let err = Quantity::parse(q).unwrap_err();
            assert_eq!(
                err,
                format!("{q:?} is not a Kubernetes quantity (e.g. 50m, 0.1, 32Mi)")
            );
        }
    }

    #[test]
    fn one_sign_then_digits_and_one_dot() {
        for q in ["++1", "+-1", "+1-", "1+", "1-2", "..5", "5.."] {
            assert_eq!(
                Quantity::parse(q).unwrap_err(),
                format!("{q:?} is not a Kubernetes quantity (e.g. 50m, 0.1, 32Mi)")
            );
        }
        for (q, want) in [
            ("5.", 5.0),
            ("+.5", 0.5),
            ("0", 0.0),
            ("1Ei", 1024f64.powi(6)),
        ] {
            assert!((value(q) - want).abs() < 1e-9, "{q}");
        }
    }

    #[test]
    fn values_that_are_not_finite_are_refused() {
        // Were accepted as NaN and infinity (found by fuzzing).
        for q in ["0e310", "1e400", "1e309", &"9".repeat(400)] {
            assert!(Quantity::parse(q).is_err(), "{q}");
        }
        assert!(value("1e308").is_finite());
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(Quantity::parse(" 1.5Gi").unwrap().to_string(), "1.5Gi");
        assert_eq!(Quantity::parse("+1e3").unwrap().to_string(), "+1e3");
    }
}
