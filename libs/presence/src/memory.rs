//! The embedded implementation: plain maps under one std mutex (held for map updates only, never
//! across an await), with TTLs as deadlines. Tokio's `Instant` so paused-time tests can move it.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::{Hit, PresenceError, PresenceOptions, PresenceStore, UserStatus, check_ids};

/// Past this many rate-limit windows or cached tokens, expired ones are dropped on the next write,
/// so a flood of distinct keys cannot grow memory without bound.
const PRUNE_ABOVE: usize = 100_000;

/// Presence for one process.
pub struct MemoryPresence {
    gateway_ttl: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    gateways: HashMap<String, Gateway>,
    /// Per user: live registrations per gateway.
    users: HashMap<String, HashMap<String, u64>>,
    status: HashMap<String, UserStatus>,
    /// Rate-limit windows: when the window ends, and the count in it.
    windows: HashMap<String, (Instant, u64)>,
    tokens: HashMap<String, CachedToken>,
    user_tokens: HashMap<String, HashSet<String>>,
}

#[derive(Default)]
struct Gateway {
    /// `None` until the first heartbeat.
    alive_until: Option<Instant>,
    /// (user id, connection id).
    conns: HashSet<(String, String)>,
}

struct CachedToken {
    principal: Vec<u8>,
    expires: Instant,
}

impl Inner {
    fn alive(&self, gateway: &str, now: Instant) -> bool {
        self.gateways.get(gateway).and_then(|g| g.alive_until).is_some_and(|until| until > now)
    }

    fn live(&self, uid: &str, now: Instant) -> u64 {
        self.users
            .get(uid)
            .map(|per| per.iter().filter(|(gw, _)| self.alive(gw, now)).map(|(_, n)| n).sum())
            .unwrap_or(0)
    }
}

impl MemoryPresence {
    /// An empty store. The key prefix is irrelevant here: nothing is shared.
    pub fn new(options: PresenceOptions) -> Self {
        Self { gateway_ttl: options.gateway_ttl, inner: Mutex::default() }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, PresenceError> {
        self.inner.lock().map_err(|_| PresenceError::Backend("presence state poisoned".into()))
    }
}

#[async_trait]
impl PresenceStore for MemoryPresence {
    fn gateway_ttl(&self) -> Duration {
        self.gateway_ttl
    }

    async fn heartbeat(&self, gateway: &str) -> Result<bool, PresenceError> {
        check_ids(&[gateway])?;
        let now = Instant::now();
        let mut inner = self.lock()?;
        let was_alive = inner.alive(gateway, now);
        inner.gateways.entry(gateway.to_owned()).or_default().alive_until = Some(now + self.gateway_ttl);
        Ok(was_alive)
    }

    async fn connect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError> {
        check_ids(&[gateway, uid, conn])?;
        let now = Instant::now();
        let mut inner = self.lock()?;
        let added = inner
            .gateways
            .entry(gateway.to_owned())
            .or_default()
            .conns
            .insert((uid.to_owned(), conn.to_owned()));
        if !added {
            return Ok(false);
        }
        let before = inner.live(uid, now);
        *inner.users.entry(uid.to_owned()).or_default().entry(gateway.to_owned()).or_default() += 1;
        Ok(before == 0)
    }

    async fn disconnect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError> {
        check_ids(&[gateway, uid, conn])?;
        let now = Instant::now();
        let mut inner = self.lock()?;
        let removed = inner
            .gateways
            .get_mut(gateway)
            .is_some_and(|g| g.conns.remove(&(uid.to_owned(), conn.to_owned())));
        if !removed {
            return Ok(false);
        }
        if let Some(per) = inner.users.get_mut(uid) {
            if let Some(n) = per.get_mut(gateway) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per.remove(gateway);
                }
            }
            if per.is_empty() {
                inner.users.remove(uid);
            }
        }
        Ok(inner.live(uid, now) == 0)
    }

    async fn connections(&self, uid: &str) -> Result<u64, PresenceError> {
        let now = Instant::now();
        Ok(self.lock()?.live(uid, now))
    }

    async fn sweep(&self) -> Result<Vec<String>, PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock()?;
        let dead: Vec<String> = inner.gateways.keys().filter(|gw| !inner.alive(gw, now)).cloned().collect();
        let mut candidates = HashSet::new();
        for gw in dead {
            let Some(gateway) = inner.gateways.remove(&gw) else { continue };
            for (uid, _) in gateway.conns {
                if let Some(per) = inner.users.get_mut(&uid) {
                    per.remove(&gw);
                    if per.is_empty() {
                        inner.users.remove(&uid);
                    }
                }
                candidates.insert(uid);
            }
        }
        let mut offline: Vec<String> =
            candidates.into_iter().filter(|uid| inner.live(uid, now) == 0).collect();
        offline.sort();
        Ok(offline)
    }

    async fn set_status(&self, uid: &str, status: &UserStatus) -> Result<(), PresenceError> {
        self.lock()?.status.insert(uid.to_owned(), status.clone());
        Ok(())
    }

    async fn status(&self, uid: &str) -> Result<Option<UserStatus>, PresenceError> {
        Ok(self.lock()?.status.get(uid).cloned())
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock()?;
        if inner.windows.len() > PRUNE_ABOVE {
            inner.windows.retain(|_, (end, _)| *end > now);
        }
        let entry = inner.windows.entry(key.to_owned()).or_insert((now + window, 0));
        if entry.0 <= now {
            *entry = (now + window, 0);
        }
        entry.1 += 1;
        Ok(Hit { count: entry.1, resets_in: entry.0 - now })
    }

    async fn put_token(
        &self,
        token_hash: &str,
        uid: &str,
        principal: &[u8],
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        let now = Instant::now();
        let mut inner = self.lock()?;
        if inner.tokens.len() > PRUNE_ABOVE {
            inner.tokens.retain(|_, t| t.expires > now);
            let Inner { tokens, user_tokens, .. } = &mut *inner;
            user_tokens.retain(|_, hashes| {
                hashes.retain(|h| tokens.contains_key(h));
                !hashes.is_empty()
            });
        }
        inner
            .tokens
            .insert(token_hash.to_owned(), CachedToken { principal: principal.to_vec(), expires: now + ttl });
        inner.user_tokens.entry(uid.to_owned()).or_default().insert(token_hash.to_owned());
        Ok(())
    }

    async fn token(&self, token_hash: &str) -> Result<Option<Vec<u8>>, PresenceError> {
        let now = Instant::now();
        let inner = self.lock()?;
        Ok(inner.tokens.get(token_hash).filter(|t| t.expires > now).map(|t| t.principal.clone()))
    }

    async fn evict_token(&self, token_hash: &str) -> Result<(), PresenceError> {
        self.lock()?.tokens.remove(token_hash);
        Ok(())
    }

    async fn evict_user_tokens(&self, uid: &str) -> Result<(), PresenceError> {
        let mut inner = self.lock()?;
        for hash in inner.user_tokens.remove(uid).unwrap_or_default() {
            inner.tokens.remove(&hash);
        }
        Ok(())
    }
}
