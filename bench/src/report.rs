//! The summary table every suite adds rows to.

/// One measured number, its target and whether it is met.
#[derive(Debug, Clone)]
pub struct Row {
    pub bench: String,
    pub value: String,
    pub target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub met: Option<bool>,
}

impl Row {
    pub fn info(bench: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            bench: bench.into(),
            value: value.into(),
            target: String::new(),
            met: None,
        }
    }

    pub fn target(
        bench: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: bool,
    ) -> Row {
        Row {
            bench: bench.into(),
            value: value.into(),
            target: target.into(),
            met: Some(met),
        }
    }
}

/// A Markdown table of `rows`.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from("| benchmark | measured | target | met |\n|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out += &format!("| {} | {} | {} | {met} |\n", r.bench, r.value, r.target);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_marks_missed_targets() {
        let t = markdown(&[
            Row::target("a", "1", "≤ 2", true),
            Row::target("b", "3", "≤ 2", false),
            Row::info("c", "4"),
        ]);
        assert!(t.contains("| a | 1 | ≤ 2 | yes |"), "{t}");
        assert!(t.contains("| b | 3 | ≤ 2 | **no** |"), "{t}");
        assert!(t.contains("| c | 4 |  |  |"), "{t}");
    }
}
