//! Client quotas: produce and fetch byte rates and request-time percentages per user and
//! client id, enforced as Kafka does (KIP-13, KIP-124, KIP-219).
//!
//! Quotas are set with AlterClientQuotas and stored in the metadata log. For each request the
//! connection records what the client used — the request size for Produce, the response
//! size for Fetch, and the handler time for every request — in a rate over
//! [`WINDOWS`] one-second windows. When a rate exceeds its quota the response carries
//! `throttle_time_ms = (rate - quota) / quota * window` and the connection stops reading that
//! client's requests for that long, so well-behaved clients (which honour the field) and
//! others alike are slowed to the quota.
//!
//! Without authentication every client's user principal is `ANONYMOUS`; quotas for users
//! therefore apply through that name and the `<default>` user entity.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Number of samples in a rate.
pub const WINDOWS: usize = 11;
/// Length of one sample.
pub const WINDOW_MS: i64 = 1000;

/// The principal of unauthenticated clients.
pub const ANONYMOUS: &str = "ANONYMOUS";

/// Quota keys Fjord enforces.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Fetch bytes per second.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percentage of one handler thread's time.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// Every quota key accepted by AlterClientQuotas.
pub const KEYS: &[&str] = &[PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE];

/// A quota entity: sorted (entity type, name) pairs, `None` meaning the default entity.
pub type Entity = Vec<(String, Option<String>)>;

/// Returns the quota of `key` that applies to (`user`, `client_id`), in Kafka's order of
/// precedence: user+client, user+default client, user, default user+client, default user +
/// default client, default user, client, default client.
pub fn resolve(
    quotas: &BTreeMap<Entity, BTreeMap<String, f64>>,
    key: &str,
    user: &str,
    client_id: &str,
) -> Option<f64> {
    let u = |n: Option<&str>| ("user".to_string(), n.map(str::to_string));
    let c = |n: Option<&str>| ("client-id".to_string(), n.map(str::to_string));
    let candidates: [Entity; 8] = [
        vec![c(Some(client_id)), u(Some(user))],
        vec![c(None), u(Some(user))],
        vec![u(Some(user))],
        vec![c(Some(client_id)), u(None)],
        vec![c(None), u(None)],
        vec![u(None)],
        vec![c(Some(client_id))],
        vec![c(None)],
    ];
    candidates
        .iter()
        .find_map(|e| quotas.get(e).and_then(|v| v.get(key)).copied())
}

/// Normalizes an entity: sorted by type, so lookups do not depend on request order.
pub fn normalize(mut entity: Entity) -> Entity {
    entity.sort();
    entity
}

#[derive(Debug, Default)]
struct Rate {
    /// (window start, amount) per window slot.
    samples: [(i64, f64); WINDOWS],
}

impl Rate {
    fn record(&mut self, now: i64, amount: f64) {
        let start = now - now.rem_euclid(WINDOW_MS);
        let slot = (start / WINDOW_MS).rem_euclid(WINDOWS as i64) as usize;
        if self.samples[slot].0 != start {
            self.samples[slot] = (start, 0.0);
        }
        self.samples[slot].1 += amount;
    }

    /// Amount per second over the live windows (at least `WINDOWS - 1` windows long, as Kafka
    /// measures, so one burst right after a quiet period is not a huge rate).
    fn per_second(&self, now: i64) -> f64 {
        let horizon = now - WINDOWS as i64 * WINDOW_MS;
        let live = self.samples.iter().filter(|(s, _)| *s > horizon);
        let total: f64 = live.clone().map(|(_, v)| v).sum();
        let oldest = live.map(|(s, _)| *s).min().unwrap_or(now);
        let elapsed = (now - oldest).max((WINDOWS as i64 - 1) * WINDOW_MS);
        total * 1000.0 / elapsed as f64
    }
}

/// Tracks rates per (quota key, user, client id).
#[derive(Debug, Default)]
pub struct QuotaManager {
    rates: Mutex<HashMap<(&'static str, String, String), Rate>>,
}

impl QuotaManager {
    /// Records `amount` of `key` for a client and returns the throttle time in ms (0 when
    /// within quota or no quota applies).
    pub fn record(
        &self,
        key: &'static str,
        quota: Option<f64>,
        user: &str,
        client_id: &str,
        amount: f64,
        now: i64,
    ) -> i32 {
        let Some(quota) = quota.filter(|q| *q > 0.0) else {
            return 0;
        };
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let rate = rates
            .entry((key, user.to_string(), client_id.to_string()))
            .or_default();
        rate.record(now, amount);
        let observed = rate.per_second(now);
        if observed <= quota {
            return 0;
        }
        let window = (WINDOWS as i64 * WINDOW_MS) as f64;
        ((observed - quota) / quota * window).min(window).round() as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let mut q = BTreeMap::new();
        q.insert(
            normalize(vec![("client-id".into(), None)]),
            BTreeMap::from([("producer_byte_rate".to_string(), 1.0)]),
        );
        assert_eq!(resolve(&q, PRODUCER_BYTE_RATE, ANONYMOUS, "a"), Some(1.0));
        q.insert(
            normalize(vec![("client-id".into(), Some("a".into()))]),
            BTreeMap::from([("producer_byte_rate".to_string(), 2.0)]),
        );
        assert_eq!(resolve(&q, PRODUCER_BYTE_RATE, ANONYMOUS, "a"), Some(2.0));
        assert_eq!(resolve(&q, PRODUCER_BYTE_RATE, ANONYMOUS, "b"), Some(1.0));
        q.insert(
            normalize(vec![
                ("user".into(), Some(ANONYMOUS.into())),
                ("client-id".into(), Some("a".into())),
            ]),
            BTreeMap::from([("producer_byte_rate".to_string(), 3.0)]),
        );
        assert_eq!(resolve(&q, PRODUCER_BYTE_RATE, ANONYMOUS, "a"), Some(3.0));
        assert_eq!(resolve(&q, CONSUMER_BYTE_RATE, ANONYMOUS, "a"), None);
    }

    #[test]
    fn throttle_grows_with_excess() {
        let m = QuotaManager::default();
        assert_eq!(m.record(PRODUCER_BYTE_RATE, None, "u", "c", 1e9, 0), 0);
        // 10 kB/s quota; 10 s-equivalent windows: 100 kB is within, 300 kB is 3x over.
        assert_eq!(
            m.record(
                PRODUCER_BYTE_RATE,
                Some(10_000.0),
                "u",
                "c",
                100_000.0,
                10_000
            ),
            0
        );
        let t = m.record(
            PRODUCER_BYTE_RATE,
            Some(10_000.0),
            "u",
            "c",
            200_000.0,
            10_500,
        );
        assert!(t > 10_000, "{t}");
        assert_eq!(
            m.record(
                PRODUCER_BYTE_RATE,
                Some(10_000.0),
                "u",
                "other",
                1.0,
                10_500
            ),
            0
        );
    }
}
