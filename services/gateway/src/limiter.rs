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
        if let Some(shared) = &self.shared {
            match shared.hit(&format!("limit:{}:{key}", self.name), self.window).await {
                Ok(hit) if hit.count > u64::from(self.limit) => return Err(hit.resets_in.as_secs().max(1)),
                Ok(_) => return Ok(()),
                Err(e) => tracing::warn!(error = %e, "shared rate limit unavailable, counting locally"),
            }
        }
        self.check_local(key)
    }

    fn check_local(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut windows) = self.windows.lock() else {
            return Ok(());
        };
        if windows.len() > 100_000 {
            // Bound memory under a flood of distinct keys: forget expired windows.
            windows.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let wait = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
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
