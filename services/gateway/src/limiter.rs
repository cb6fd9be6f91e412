//! A fixed-window rate limiter keyed by caller (user id, or address before login).
//!
//! With a shared store (Redis in distributed mode) the count is the same on every gateway, so a
//! client cannot multiply its budget by spreading calls over gateways; if the store cannot
//! answer, this gateway's own count decides, so an outage neither blocks logins nor lifts limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use apogee_presence::PresenceHandle;
use tokio::time::Instant;

/// Counts calls per key in windows of `window`; at most `limit` per window.
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    /// Prefix of this limiter's keys in the shared store.
    name: &'static str,
    shared: Option<PresenceHandle>,
    /// Held only to update a counter; never across an await.
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// A limiter of this gateway alone.
    #[cfg(test)]
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, name: "local", shared: None, windows: Mutex::default() }
    }

    /// A limiter counting in `shared`, under keys starting with `name`.
    pub(crate) fn shared(limit: u32, window: Duration, name: &'static str, shared: PresenceHandle) -> Self {
        Self { limit, window, name, shared: Some(shared), windows: Mutex::default() }
    }

    /// Counts a call; `Err(seconds to wait)` when over the limit.
    pub(crate) async fn check(&self, key: &str) -> Result<(), u64> {
        self.count(key, self.limit, self.window)
            .await
            .map(|_| ())
            .map_err(|over| over.resets_in.as_secs().max(1))
    }

    /// Counts a call under limits read per call (from settings that may change);
    /// `Err` when over the limit. Both sides say what is left and when the window ends.
    pub(crate) async fn count(&self, key: &str, limit: u32, window: Duration) -> Result<Count, Count> {
        if let Some(shared) = &self.shared {
            match shared.hit(&format!("limit:{}:{key}", self.name), window).await {
                Ok(hit) => {
                    let count = Count {
                        limit,
                        remaining: u32::try_from(u64::from(limit).saturating_sub(hit.count)).unwrap_or(0),
                        resets_in: hit.resets_in,
                    };
                    return if hit.count > u64::from(limit) { Err(count) } else { Ok(count) };
                }
                Err(e) => tracing::warn!(error = %e, "shared rate limit unavailable, counting locally"),
            }
        }
        self.count_local(key, limit, window)
    }

    fn count_local(&self, key: &str, limit: u32, window: Duration) -> Result<Count, Count> {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return Ok(Count { limit, remaining: limit, resets_in: window });
        };
        if windows.len() > 100_000 {
            // Bound memory under a flood of distinct keys: forget expired windows.
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        let resets_in = window.saturating_sub(now.duration_since(entry.0));
        if entry.1 >= limit {
            return Err(Count { limit, remaining: 0, resets_in });
        }
        entry.1 += 1;
        Ok(Count { limit, remaining: limit - entry.1, resets_in })
    }
}

/// One counted call: the limit, the calls left in the window, and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    pub limit: u32,
    pub remaining: u32,
    pub resets_in: Duration,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn window_resets() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.check("a").await.is_ok());
        assert!(limiter.check("a").await.is_ok());
        assert_eq!(limiter.check("a").await, Err(60));
        assert!(limiter.check("b").await.is_ok(), "keys are independent");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(limiter.check("a").await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn counts_say_what_is_left() {
        let limiter = RateLimiter::new(1, Duration::from_secs(1));
        let window = Duration::from_secs(60);
        let first = limiter.count("k", 2, window).await.unwrap();
        assert_eq!((first.limit, first.remaining, first.resets_in), (2, 1, window));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(limiter.count("k", 2, window).await.unwrap().remaining, 0);
        let over = limiter.count("k", 2, window).await.unwrap_err();
        assert_eq!((over.remaining, over.resets_in), (0, Duration::from_secs(50)));
    }

    #[tokio::test(start_paused = true)]
    async fn gateways_sharing_a_store_share_the_budget() {
        let store = PresenceHandle::memory();
        let a = RateLimiter::shared(3, Duration::from_secs(60), "login", store.clone());
        let b = RateLimiter::shared(3, Duration::from_secs(60), "login", store);
        assert!(a.check("1.2.3.4").await.is_ok());
        assert!(b.check("1.2.3.4").await.is_ok());
        assert!(a.check("1.2.3.4").await.is_ok());
        assert!(b.check("1.2.3.4").await.is_err(), "the fourth call over two gateways is refused");
        assert!(b.check("5.6.7.8").await.is_ok());
    }
}
