//! A fixed-window rate limiter keyed by caller (user id, or address before login).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Counts calls per key in windows of `window`; at most `limit` per window.
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    /// Held only to update a counter; never across an await.
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, windows: Mutex::default() }
    }

    /// Counts a call; `Err(seconds to wait)` when over the limit.
    pub(crate) fn check(&self, key: &str) -> Result<(), u64> {
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
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert_eq!(limiter.check("a"), Err(60));
        assert!(limiter.check("b").is_ok(), "keys are independent");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(limiter.check("a").is_ok());
    }
}
