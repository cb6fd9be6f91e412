//! DDP, Meteor's realtime protocol, on `/websocket` (protocol.md §4), and the REST tunnels that
//! run the same methods.

mod extra;
pub(crate) mod frame;
pub(crate) mod methods;
pub(crate) mod session;
pub(crate) mod streams;
mod tunnel;

pub(crate) use session::upgrade;
pub(crate) use tunnel::{method_call, method_call_anon};
