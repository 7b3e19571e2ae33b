//! Per-API request quotas as AWS enforces them: a token bucket per operation
//! (rate per second, burst), and the throttling answer each protocol gives
//! when a call finds the bucket empty — HTTP 400 with `ThrottlingException`
//! for the JSON APIs (Secrets Manager, SSM), `Throttling` in XML for STS.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::Error;

/// One operation's quota: `rate` calls a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub rate: f64,
    pub burst: f64,
}

impl Quota {
    /// `OP=RATE` or `OP=RATE:BURST` (burst defaults to the rate, at least 1).
    pub fn parse(spec: &str) -> Result<(String, Quota), Error> {
        let bad = || {
            Error::Http(format!(
                "quota {spec:?}: expected OPERATION=RATE[:BURST], e.g. secretsmanager.BatchGetSecretValue=100"
            ))
        };
        let (op, value) = spec.split_once('=').ok_or_else(bad)?;
        let (rate, burst) = match value.split_once(':') {
            Some((r, b)) => (r, Some(b)),
            None => (value, None),
        };
        let rate: f64 = rate.parse().map_err(|_| bad())?;
        let burst: f64 = match burst {
            Some(b) => b.parse().map_err(|_| bad())?,
            None => rate.max(1.0),
        };
        let valid = rate.is_finite() && rate > 0.0 && burst.is_finite() && burst >= 1.0;
        if op.is_empty() || !valid {
            return Err(bad());
        }
        Ok((op.to_string(), Quota { rate, burst }))
    }
}

/// A token bucket: full at the start, refilled continuously at `rate`.
#[derive(Debug, Clone)]
struct Bucket {
    quota: Quota,
    tokens: f64,
    at: Duration,
}

impl Bucket {
    fn new(quota: Quota) -> Bucket {
        Bucket {
            quota,
            tokens: quota.burst,
            at: Duration::ZERO,
        }
    }

    /// Take one token at `now` (time since the front started), if there is one.
    fn take(&mut self, now: Duration) -> bool {
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.quota.rate).min(self.quota.burst);
        self.at = now.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The buckets of every limited operation; others pass freely.
#[derive(Debug, Clone, Default)]
pub struct Quotas {
    buckets: BTreeMap<String, Bucket>,
}

impl Quotas {
    pub fn new(quotas: impl IntoIterator<Item = (String, Quota)>) -> Quotas {
        Quotas {
            buckets: quotas
                .into_iter()
                .map(|(op, q)| (op, Bucket::new(q)))
                .collect(),
        }
    }

    /// Whether a call of `op` at `now` is within its quota (and count it if so).
    pub fn admit(&mut self, op: &str, now: Duration) -> bool {
        self.buckets.get_mut(op).is_none_or(|b| b.take(now))
    }
}

/// The throttling answer AWS gives for `op`: status, content type and body.
pub fn throttled(op: &str) -> (u16, &'static str, String) {
    if op.starts_with("sts.") {
        (
            400,
            "text/xml",
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
             <Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>\
             <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
                .to_string(),
        )
    } else {
        (
            400,
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string(),
        )
    }
}

/// Calls and throttles per operation per whole second since the start.
pub fn per_second(calls: &[Call]) -> BTreeMap<(String, u64), (u64, u64)> {
    let mut out: BTreeMap<(String, u64), (u64, u64)> = BTreeMap::new();
    for c in calls {
        let e = out.entry((c.op.clone(), c.at_ms / 1000)).or_default();
        e.0 += 1;
        if c.throttled {
            e.1 += 1;
        }
    }
    out
}

/// One call the front saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Call {
    /// Milliseconds since the front started.
    pub at_ms: u64,
    pub op: String,
    pub throttled: bool,
    /// The first secret or parameter the call names (tells clients apart).
    pub first_name: String,
}

/// The first `SecretId`/`SecretIdList`/`Names`/`Name`/`Path` of a JSON request body.
pub fn first_name(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    for key in ["SecretIdList", "Names"] {
        if let Some(s) = v[key][0].as_str() {
            return s.to_string();
        }
    }
    for key in ["SecretId", "Name", "Path"] {
        if let Some(s) = v[key].as_str() {
            return s.to_string();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn parses_rate_and_burst_and_refuses_nonsense() {
        assert_eq!(
            Quota::parse("secretsmanager.BatchGetSecretValue=100").unwrap(),
            (
                "secretsmanager.BatchGetSecretValue".to_string(),
                Quota {
                    rate: 100.0,
                    burst: 100.0
                }
            )
        );
        assert_eq!(
            Quota::parse("AmazonSSM.GetParameters=0.5:2").unwrap().1,
            Quota {
                rate: 0.5,
                burst: 2.0
            }
        );
        assert_eq!(Quota::parse("x=0.5").unwrap().1.burst, 1.0);
        for bad in ["x", "=1", "x=0", "x=-1", "x=1:0", "x=a", "x=1:b", "x=NaN"] {
            assert!(Quota::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut q = Quotas::new([(
            "op".to_string(),
            Quota {
                rate: 10.0,
                burst: 3.0,
            },
        )]);
        let at = |ms: u64| Duration::from_millis(ms);
        assert!(q.admit("op", at(0)) && q.admit("op", at(0)) && q.admit("op", at(0)));
        assert!(!q.admit("op", at(0)), "the burst is 3");
        assert!(!q.admit("op", at(50)), "half a token after 50 ms at 10/s");
        assert!(q.admit("op", at(100)), "one token after 100 ms");
        assert!(!q.admit("op", at(100)));
        // Never more than the burst, however long it was idle.
        let n = (0..10).filter(|_| q.admit("op", at(60_000))).count();
        assert_eq!(n, 3);
        assert!(q.admit("other", at(0)), "unlisted operations are free");
        assert!(!q.admit("op", at(60_000) - MS), "time never runs backwards");
    }

    #[test]
    fn throttling_answers_match_each_protocol() {
        let (status, ctype, body) = throttled("secretsmanager.BatchGetSecretValue");
        assert_eq!((status, ctype), (400, "application/x-amz-json-1.1"));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["__type"], "ThrottlingException");
        let (status, ctype, body) = throttled("sts.AssumeRoleWithWebIdentity");
        assert_eq!((status, ctype), (400, "text/xml"));
        assert!(body.contains("<Code>Throttling</Code>"), "{body}");
    }

    #[test]
    fn names_the_first_secret_or_parameter() {
        assert_eq!(first_name(br#"{"SecretIdList":["a","b"]}"#), "a");
        assert_eq!(first_name(br#"{"Names":["/p/1"]}"#), "/p/1");
        assert_eq!(first_name(br#"{"SecretId":"s"}"#), "s");
        assert_eq!(first_name(br#"{"Path":"/x/"}"#), "/x/");
        assert_eq!(first_name(b"Action=AssumeRole"), "");
    }

    #[test]
    fn counts_calls_and_throttles_per_second() {
        let call = |at_ms, throttled| Call {
            at_ms,
            op: "op".into(),
            throttled,
            first_name: String::new(),
        };
        let s = per_second(&[call(10, false), call(999, true), call(1000, true)]);
        assert_eq!(s[&("op".to_string(), 0)], (2, 1));
        assert_eq!(s[&("op".to_string(), 1)], (1, 1));
    }
}
