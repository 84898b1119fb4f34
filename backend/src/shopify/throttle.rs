//! The GraphQL Admin API's cost throttle, client side: one leaky bucket per shop, fed by every
//! answer's `extensions.cost.throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}`
//! (shopify.dev "GraphQL Admin API rate limits"). A call reserves its requested cost before it is
//! sent and waits while the bucket, refilled at the restore rate since the last answer, holds less;
//! so a sync never spends its time collecting `THROTTLED` answers. Plus the retry backoff for 5xx
//! answers and network errors: exponential, capped, with full jitter.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::shop::ShopDomain;

/// What Shopify said about a shop's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleStatus {
    /// Bucket size in points.
    pub maximum_available: f64,
    /// Points in the bucket when the answer was made.
    pub currently_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

impl ThrottleStatus {
    /// Reads `extensions.cost.throttleStatus` from a GraphQL answer, when present and sane.
    pub fn from_response(body: &Value) -> Option<Self> {
        let status = body.pointer("/extensions/cost/throttleStatus")?;
        let number = |name: &str| status.get(name).and_then(Value::as_f64);
        let parsed = Self {
            maximum_available: number("maximumAvailable")?,
            currently_available: number("currentlyAvailable")?,
            restore_rate: number("restoreRate")?,
        };
        (parsed.maximum_available > 0.0 && parsed.restore_rate > 0.0).then_some(parsed)
    }
}

/// One shop's bucket as last reported, minus what was reserved since.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    maximum: f64,
    available: f64,
    restore_rate: f64,
    at: Instant,
}

impl Bucket {
    fn level(&self, now: Instant) -> f64 {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() * self.restore_rate;
        (self.available + refilled).min(self.maximum)
    }
}

/// Longest single wait for the bucket (a cost above the bucket size would wait forever).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Buckets of every shop this process calls.
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<ShopDomain, Bucket>>,
}

impl Throttle {
    /// How long to wait before `cost` points are available for `shop`; when none, reserves them.
    pub fn reserve(&self, shop: &ShopDomain, cost: f64, now: Instant) -> Option<Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A shop not heard from yet: send, and learn its bucket from the answer.
        let bucket = buckets.get_mut(shop)?;
        let level = bucket.level(now);
        // A cost larger than the bucket can only wait for a full bucket.
        let needed = cost.min(bucket.maximum);
        if level >= needed {
            bucket.available = level - cost;
            bucket.at = now;
            return None;
        }
        let seconds = (needed - level) / bucket.restore_rate;
        Some(Duration::from_secs_f64(seconds).min(MAX_WAIT))
    }

    /// Records the bucket an answer reported.
    pub fn observe(&self, shop: &ShopDomain, status: ThrottleStatus, now: Instant) {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.insert(
            shop.clone(),
            Bucket {
                maximum: status.maximum_available,
                available: status.currently_available,
                restore_rate: status.restore_rate,
                at: now,
            },
        );
    }

    /// Waits until `cost` points are available for `shop` and reserves them.
    pub async fn acquire(&self, shop: &ShopDomain, cost: f64) {
        while let Some(wait) = self.reserve(shop, cost, Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// After a `THROTTLED` answer: how long until the bucket holds `requested` points.
pub fn throttled_wait(requested: f64, status: Option<ThrottleStatus>) -> Duration {
    let (available, rate) = status.map_or((0.0, 50.0), |status| {
        (status.currently_available, status.restore_rate)
    });
    Duration::from_secs_f64(
        ((requested - available).max(0.0) / rate).clamp(0.05, MAX_WAIT.as_secs_f64()),
    )
}

/// Backoff before retry `attempt` (1-based) after a 5xx or a network error: full jitter over an
/// exponential ceiling from `base`, capped at `cap`. `unit` is a random number in [0, 1).
pub fn backoff(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let ceiling = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shop() -> ShopDomain {
        ShopDomain::parse("acme.myshopify.com").unwrap()
    }

    fn status(available: f64) -> ThrottleStatus {
        ThrottleStatus {
            maximum_available: 2000.0,
            currently_available: available,
            restore_rate: 100.0,
        }
    }

    #[test]
    fn an_unknown_shop_sends_at_once_and_a_known_one_waits_for_its_cost() {
        let throttle = Throttle::default();
        let start = Instant::now();
        assert_eq!(throttle.reserve(&shop(), 773.0, start), None);
        throttle.observe(&shop(), status(300.0), start);
        // 300 available, 773 wanted at 100/s: 4.73 s.
        let wait = throttle.reserve(&shop(), 773.0, start).unwrap();
        assert!((wait.as_secs_f64() - 4.73).abs() < 1e-6, "{wait:?}");
        // After the wait the cost is reserved, and the next call waits for its own.
        let later = start + wait;
        assert_eq!(throttle.reserve(&shop(), 773.0, later), None);
        let next = throttle.reserve(&shop(), 773.0, later).unwrap();
        assert!((next.as_secs_f64() - 7.73).abs() < 1e-6, "{next:?}");
    }

    #[test]
    fn the_bucket_never_refills_past_its_size() {
        let throttle = Throttle::default();
        let start = Instant::now();
        throttle.observe(&shop(), status(0.0), start);
        let much_later = start + Duration::from_secs(3600);
        assert_eq!(throttle.reserve(&shop(), 2000.0, much_later), None);
        assert!(throttle.reserve(&shop(), 1.0, much_later).is_some());
    }

    #[test]
    fn throttle_status_is_read_from_the_cost_extension() {
        let body = json!({"data": {}, "extensions": {"cost": {"requestedQueryCost": 10,
            "actualQueryCost": 10, "throttleStatus": {"maximumAvailable": 2000.0,
            "currentlyAvailable": 1990, "restoreRate": 100.0}}}});
        assert_eq!(ThrottleStatus::from_response(&body), Some(status(1990.0)));
        assert_eq!(ThrottleStatus::from_response(&json!({"data": {}})), None);
        assert_eq!(
            throttled_wait(152.0, Some(status(52.0))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn backoff_grows_exponentially_under_a_cap_with_jitter() {
        let base = Duration::from_millis(250);
        let cap = Duration::from_secs(8);
        assert_eq!(backoff(1, base, cap, 1.0), base);
        assert_eq!(backoff(3, base, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(10, base, cap, 1.0), cap);
        assert_eq!(backoff(3, base, cap, 0.5), Duration::from_millis(500));
        assert_eq!(backoff(40, base, cap, 0.0), Duration::ZERO);
    }
}
