//! The distributed implementation over Redis. Every change that must be atomic is one Lua script
//! (`EVALSHA`, loaded on first use), so two gateways racing cannot leave a user wrongly online or
//! offline.
//!
//! Keys, all under the configured prefix `p`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `p gw:<gid>` | string, TTL | the gateway's heartbeat; its registrations count while it exists |
//! | `p gws` | set | gateway ids that have registrations (what `sweep` walks) |
//! | `p gwc:<gid>` | set | the gateway's registrations, `<uid>\x1f<conn>` |
//! | `p uc:<uid>` | hash | per gateway id, the user's registrations there |
//! | `p st:<uid>` | hash | `status`, `text` |
//! | `p rl:<key>` | string, TTL | a rate-limit window's count |
//! | `p tk:<hash>` | string, TTL | a cached principal |
//! | `p ut:<uid>` | set, TTL | the user's cached token hashes (for eviction of all of them) |
//!
//! So a user's live count reads one small hash and checks one key per gateway the user is on, and
//! a sweep touches only the gateway list and the registrations of dead gateways. Scripts build
//! key names from the prefix, so this targets one Redis (or a primary with replicas), not Cluster.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Hit, PresenceError, PresenceOptions, PresenceStore, UserStatus, check_ids};

/// Counts a user's registrations on gateways whose heartbeat exists. Prepended to the scripts
/// that need it.
const LIVE: &str = r"
local function live(p, uid)
  local per = redis.call('HGETALL', p .. 'uc:' .. uid)
  local n = 0
  for i = 1, #per, 2 do
    if redis.call('EXISTS', p .. 'gw:' .. per[i]) == 1 then n = n + tonumber(per[i + 1]) end
  end
  return n
end
";

/// ARGV: prefix, gateway, ttl ms. Returns whether the heartbeat still existed.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, gw = ARGV[1], ARGV[2]
local existed = redis.call('EXISTS', p .. 'gw:' .. gw)
redis.call('SET', p .. 'gw:' .. gw, '1', 'PX', ARGV[3])
redis.call('SADD', p .. 'gws', gw)
return existed
",
    )
});

/// ARGV: prefix, gateway, uid, conn. Returns 1 when it is the user's first live connection.
static CONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
local p, gw, uid, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
-- Listed even before its first heartbeat, so a sweep can clean up after a gateway that never beat.
redis.call('SADD', p .. 'gws', gw)
if redis.call('SADD', p .. 'gwc:' .. gw, uid .. '\31' .. conn) == 0 then return 0 end
local before = live(p, uid)
redis.call('HINCRBY', p .. 'uc:' .. uid, gw, 1)
if before == 0 then return 1 end
return 0
"
    ))
});

/// ARGV: prefix, gateway, uid, conn. Returns 1 when the user has no live connection left.
static DISCONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
local p, gw, uid, conn = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('SREM', p .. 'gwc:' .. gw, uid .. '\31' .. conn) == 0 then return 0 end
if redis.call('HINCRBY', p .. 'uc:' .. uid, gw, -1) <= 0 then redis.call('HDEL', p .. 'uc:' .. uid, gw) end
if live(p, uid) == 0 then return 1 end
return 0
"
    ))
});

/// ARGV: prefix, uid.
static CONNECTIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
return live(ARGV[1], ARGV[2])
"
    ))
});

/// ARGV: prefix. Removes dead gateways' registrations; returns their users left without any.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{LIVE}
local p = ARGV[1]
local candidates = {{}}
for _, gw in ipairs(redis.call('SMEMBERS', p .. 'gws')) do
  if redis.call('EXISTS', p .. 'gw:' .. gw) == 0 then
    for _, entry in ipairs(redis.call('SMEMBERS', p .. 'gwc:' .. gw)) do
      local uid = string.match(entry, '^(.-)\31')
      if uid then
        redis.call('HDEL', p .. 'uc:' .. uid, gw)
        candidates[uid] = true
      end
    end
    redis.call('DEL', p .. 'gwc:' .. gw)
    redis.call('SREM', p .. 'gws', gw)
  end
end
local offline = {{}}
for uid, _ in pairs(candidates) do
  if live(p, uid) == 0 then table.insert(offline, uid) end
end
return offline
"
    ))
});

/// KEYS: counter. ARGV: window ms. Returns {count, ms until the window resets}.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
-- A counter left without expiry (by anything) would block forever: give it one.
if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); left = tonumber(ARGV[1]) end
return {n, left}
",
    )
});

/// KEYS: token, user's token set. ARGV: principal, token hash, ttl ms.
static PUT_TOKEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
-- The set lives as long as its longest-lived token.
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
",
    )
});

/// KEYS: user's token set. ARGV: prefix.
static EVICT_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('DEL', ARGV[1] .. 'tk:' .. hash)
end
redis.call('DEL', KEYS[1])
return 1
",
    )
});

/// Presence shared through Redis.
pub struct RedisPresence {
    /// Clones share one multiplexed connection that reconnects by itself.
    conn: ConnectionManager,
    prefix: String,
    gateway_ttl: Duration,
}

/// Redis wants whole milliseconds, at least one.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisPresence {
    /// Connects to `url`; fails if Redis cannot be reached now. Later outages make calls fail
    /// (after the response timeout) until the connection comes back by itself.
    pub async fn connect(url: &str, options: PresenceOptions) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url)?;
        // Few retries per reconnect: a call fails fast while Redis is down, and the next call
        // tries again.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { conn, prefix: options.prefix, gateway_ttl: options.gateway_ttl })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }
}

#[async_trait]
impl PresenceStore for RedisPresence {
    fn gateway_ttl(&self) -> Duration {
        self.gateway_ttl
    }

    async fn heartbeat(&self, gateway: &str) -> Result<bool, PresenceError> {
        check_ids(&[gateway])?;
        let existed: i64 = HEARTBEAT
            .arg(&self.prefix)
            .arg(gateway)
            .arg(millis(self.gateway_ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(existed == 1)
    }

    async fn connect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError> {
        check_ids(&[gateway, uid, conn])?;
        let first: i64 = CONNECT
            .arg(&self.prefix)
            .arg(gateway)
            .arg(uid)
            .arg(conn)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(first == 1)
    }

    async fn disconnect(&self, gateway: &str, uid: &str, conn: &str) -> Result<bool, PresenceError> {
        check_ids(&[gateway, uid, conn])?;
        let last: i64 = DISCONNECT
            .arg(&self.prefix)
            .arg(gateway)
            .arg(uid)
            .arg(conn)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(last == 1)
    }

    async fn connections(&self, uid: &str) -> Result<u64, PresenceError> {
        Ok(CONNECTIONS.arg(&self.prefix).arg(uid).invoke_async(&mut self.conn.clone()).await?)
    }

    async fn sweep(&self) -> Result<Vec<String>, PresenceError> {
        let mut offline: Vec<String> = SWEEP.arg(&self.prefix).invoke_async(&mut self.conn.clone()).await?;
        offline.sort();
        Ok(offline)
    }

    async fn set_status(&self, uid: &str, status: &UserStatus) -> Result<(), PresenceError> {
        let _: i64 = redis::cmd("HSET")
            .arg(self.key("st", uid))
            .arg("status")
            .arg(&status.status)
            .arg("text")
            .arg(&status.text)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn status(&self, uid: &str) -> Result<Option<UserStatus>, PresenceError> {
        let (status, text): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key("st", uid))
            .arg("status")
            .arg("text")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(status.map(|status| UserStatus { status, text: text.unwrap_or_default() }))
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<Hit, PresenceError> {
        let (count, left): (u64, u64) =
            HIT.key(self.key("rl", key)).arg(millis(window)).invoke_async(&mut self.conn.clone()).await?;
        Ok(Hit { count, resets_in: Duration::from_millis(left) })
    }

    async fn put_token(
        &self,
        token_hash: &str,
        uid: &str,
        principal: &[u8],
        ttl: Duration,
    ) -> Result<(), PresenceError> {
        let _: i64 = PUT_TOKEN
            .key(self.key("tk", token_hash))
            .key(self.key("ut", uid))
            .arg(principal)
            .arg(token_hash)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn token(&self, token_hash: &str) -> Result<Option<Vec<u8>>, PresenceError> {
        Ok(redis::cmd("GET").arg(self.key("tk", token_hash)).query_async(&mut self.conn.clone()).await?)
    }

    async fn evict_token(&self, token_hash: &str) -> Result<(), PresenceError> {
        let _: i64 =
            redis::cmd("DEL").arg(self.key("tk", token_hash)).query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn evict_user_tokens(&self, uid: &str) -> Result<(), PresenceError> {
        let _: i64 = EVICT_USER
            .key(self.key("ut", uid))
            .arg(&self.prefix)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
