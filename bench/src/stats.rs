//! Percentiles over measured samples (nearest-rank), the only statistics we report.

use std::time::Duration;

/// Summary of one series of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

/// Nearest-rank percentile `q` (0..=100) of sorted samples; `None` when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Summary {
    /// Summarize `samples` (any order); `None` when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Summary> {
        samples.sort_unstable();
        let n = samples.len();
        let total: Duration = samples.iter().sum();
        Some(Summary {
            n,
            p50: percentile(&samples, 50.0)?,
            p90: percentile(&samples, 90.0)?,
            p99: percentile(&samples, 99.0)?,
            max: *samples.last()?,
            mean: total / u32::try_from(n).unwrap_or(u32::MAX),
        })
    }
}

/// Median of plain numbers (e.g. KiB); `None` when empty.
pub fn median_u64(values: &[u64]) -> Option<u64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len().checked_sub(1)? / 2).copied()
}

/// Human duration with a unit that keeps 3 significant digits.
pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// KiB as MiB with one decimal.
pub fn fmt_kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let s = Summary::of((1..=100).rev().map(ms).collect()).unwrap();
        assert_eq!(s.n, 100);
        assert_eq!(s.p50, ms(50));
        assert_eq!(s.p90, ms(90));
        assert_eq!(s.p99, ms(99));
        assert_eq!(s.max, ms(100));
        assert_eq!(s.mean, Duration::from_micros(50_500));
    }

    #[test]
    fn single_sample_is_every_percentile() {
        let s = Summary::of(vec![ms(7)]).unwrap();
        assert_eq!((s.p50, s.p99, s.max), (ms(7), ms(7), ms(7)));
    }

    #[test]
    fn empty_series_has_no_summary() {
        assert_eq!(Summary::of(Vec::new()), None);
        assert_eq!(median_u64(&[]), None);
    }

    #[test]
    fn median_picks_lower_middle() {
        assert_eq!(median_u64(&[5, 1, 3]), Some(3));
        assert_eq!(median_u64(&[4, 1, 3, 2]), Some(2));
    }

    #[test]
    fn durations_format_with_units() {
        assert_eq!(fmt_dur(Duration::from_nanos(900)), "900 ns");
        assert_eq!(fmt_dur(Duration::from_micros(42)), "42.0 µs");
        assert_eq!(fmt_dur(ms(3)), "3.00 ms");
        assert_eq!(fmt_dur(ms(4500)), "4.50 s");
        assert_eq!(fmt_kib(2048), "2.0 MiB");
    }
}
