//! The storage seam. Each aggregate has its own trait ([`UserStore`], [`RoomStore`],
//! [`MessageStore`], [`ConfigStore`], …); [`Store`] is all of them, and [`StoreRef`] the cheap
//! handle everybody holds. [`SqliteStore`] is the embedded implementation; `MongoStore` (feature
//! `mongodb`) keeps Rocket.Chat's collections and runs the same contract suite (`testsuite`).
//! [`open`] picks one from a location: a `mongodb://` URL or a SQLite file path.
//!
//! Rules every implementation keeps:
//! - a write returns only after it is durable (committed);
//! - the writes of one [`RoomWrite`] are atomic: a message, the room's new sequence number and
//!   the subscription changes land together or not at all;
//! - reads never wait behind writes.
//!
//! Only this crate talks to a database.

mod error;
mod integrations;
#[cfg(feature = "mongodb")]
pub mod mongo;
mod open;
mod rename;
mod rooms;
pub mod sqlite;
mod teams;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod uploads;
mod users;

use std::sync::Arc;

pub use error::{StoreError, StoreResult};
pub use integrations::*;
#[cfg(feature = "mongodb")]
pub use mongo::MongoStore;
pub use open::{is_mongo_url, open};
pub use rename::*;
pub use rooms::*;
pub use sqlite::SqliteStore;
pub use teams::*;
pub use uploads::*;
pub use users::*;

/// Every aggregate's store: what a backend implements.
pub trait Store:
    UserStore + RoomStore + MessageStore + ConfigStore + UploadStore + TeamStore + IntegrationStore
{
}

impl<T> Store for T where
    T: UserStore + RoomStore + MessageStore + ConfigStore + UploadStore + TeamStore + IntegrationStore
{
}

/// The handle services hold.
pub type StoreRef = Arc<dyn Store>;
