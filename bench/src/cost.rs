//! API cost from measured call counts (Secrets Manager list price: $0.05 per
//! 10,000 API calls; STS and standard SSM GetParameters are not charged).

/// Price of one Secrets Manager API call in USD.
pub const USD_PER_CALL: f64 = 0.05 / 10_000.0;

/// Refreshes in a 30-day month at `refresh_secs`.
pub fn refreshes_per_month(refresh_secs: u64) -> f64 {
    (30.0 * 24.0 * 3600.0) / refresh_secs.max(1) as f64
}

/// Monthly USD for one pod that makes `calls_per_refresh` billed calls every `refresh_secs`.
pub fn monthly_usd(calls_per_refresh: u64, refresh_secs: u64) -> f64 {
    calls_per_refresh as f64 * refreshes_per_month(refresh_secs) * USD_PER_CALL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_batch_call_every_five_minutes() {
        assert_eq!(refreshes_per_month(300), 8640.0);
        assert!((monthly_usd(1, 300) - 0.0432).abs() < 1e-9);
        assert!((monthly_usd(10, 300) - 0.432).abs() < 1e-9);
    }
}
