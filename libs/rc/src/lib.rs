//! Rocket.Chat's wire shapes: how Apogee's domain types look to Rocket.Chat clients.
//!
//! Every renderer takes a [`Dates`] style, because the same document travels with ISO date
//! strings over REST and with EJSON `{"$date": ms}` over DDP. Used by the gateway (REST, DDP)
//! only; it has no I/O and no async.

mod dates;
mod render;

pub use dates::{Dates, iso, parse_date};
pub use render::*;
