//! Prometheus metrics of the webhook (served on the health port at `/metrics`).

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How one admission request ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum AdmissionOutcome {
    /// The pod was patched.
    Injected,
    /// Allowed unchanged (no secrets, opted out, already injected, not a pod CREATE).
    Skipped,
    /// Denied because of invalid annotations.
    Denied,
    /// The request was not a valid AdmissionReview (HTTP 4xx).
    Error,
}

impl AdmissionOutcome {
    /// Lower-case name, as in the label and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injected => "injected",
            Self::Skipped => "skipped",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// Result of one certificate reload attempt.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReloadResult {
    Success,
    Failure,
}

impl EncodeLabelValue for AdmissionOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

impl EncodeLabelValue for ReloadResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Success => "success",
            Self::Failure => "failure",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: AdmissionOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: ReloadResult,
}

/// Why the webhook closed a connection itself.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing moved for `--idle-timeout`.
    Idle,
    /// The connection table was full; this one was the least recently active.
    Evicted,
}

impl EncodeLabelValue for CloseReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Self::Idle => "idle",
            Self::Evicted => "evicted",
        })
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    reason: CloseReason,
}

/// All metrics plus their registry; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    reloads: Family<ResultLabels, Counter>,
    cert_expiry: Gauge,
    closed: Family<CloseLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Register every metric; every label value starts at zero so dashboards see the series.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "secrets_injector_admission_requests",
            "Admission requests by outcome",
            requests.clone(),
        );
        let duration = Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        registry.register(
            "secrets_injector_admission_duration_seconds",
            "Time to answer one admission request",
            duration.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "secrets_injector_tls_reloads",
            "TLS certificate reloads after the files changed, by result",
            reloads.clone(),
        );
        let cert_expiry = Gauge::default();
        registry.register(
            "secrets_injector_tls_cert_expiry_timestamp_seconds",
            "notAfter of the served TLS certificate, as a Unix timestamp",
            cert_expiry.clone(),
        );
        let closed = Family::<CloseLabels, Counter>::default();
        registry.register(
            "secrets_injector_connections_closed",
            "Connections the webhook closed itself (idle, or evicted when full), either port",
            closed.clone(),
        );
        for reason in [CloseReason::Idle, CloseReason::Evicted] {
            let _ = closed.get_or_create(&CloseLabels { reason });
        }
        use AdmissionOutcome::*;
        for outcome in [Injected, Skipped, Denied, Error] {
            let _ = requests.get_or_create(&OutcomeLabels { outcome });
        }
        for result in [ReloadResult::Success, ReloadResult::Failure] {
            let _ = reloads.get_or_create(&ResultLabels { result });
        }
        Metrics {
            registry,
            requests,
            duration,
            reloads,
            cert_expiry,
            closed,
        }
    }

    /// Count a connection the webhook closed itself.
    pub fn connection_closed(&self, reason: CloseReason) {
        self.closed.get_or_create(&CloseLabels { reason }).inc();
    }

    /// Count one admission request and its duration.
    pub fn admission(&self, outcome: AdmissionOutcome, seconds: f64) {
        self.requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        self.duration.observe(seconds);
    }

    /// Count one certificate reload attempt.
    pub fn tls_reload(&self, result: ReloadResult) {
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }

    /// Record the served certificate's expiry (Unix seconds).
    pub fn cert_expiry(&self, unix_seconds: i64) {
        self.cert_expiry.set(unix_seconds);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_documented_names_and_counts() {
        let m = Metrics::new();
        m.admission(AdmissionOutcome::Denied, 0.002);
        m.tls_reload(ReloadResult::Failure);
        m.cert_expiry(1_900_000_000);
        let text = m.encode();
        assert!(text.contains("secrets_injector_admission_requests_total{outcome=\"denied\"} 1"));
        assert!(text.contains("secrets_injector_admission_requests_total{outcome=\"injected\"} 0"));
        assert!(text.contains("secrets_injector_admission_duration_seconds_count 1"));
        assert!(text.contains("secrets_injector_tls_reloads_total{result=\"failure\"} 1"));
        assert!(text.contains("secrets_injector_tls_cert_expiry_timestamp_seconds 1900000000"));
    }
}
