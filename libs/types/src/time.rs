use serde::{Deserialize, Serialize};

/// A point in time as milliseconds since the Unix epoch, the resolution Rocket.Chat uses on the
/// wire (`{"$date": ms}` over DDP, ISO strings with milliseconds over REST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// Returns the current wall-clock time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }
}
