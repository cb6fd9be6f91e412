//! The messaging service: rooms, subscriptions and messages, with Rocket.Chat's rules for who
//! may see, join, post and change what.
//!
//! Every change to a room is one [`RoomWrite`](apogee_store::RoomWrite): the message, the room's
//! new sequence number and the subscription changes commit together, and the call returns only
//! after the commit. Unread counts are derived from the room sequence and each member's
//! last-read sequence, so a message writes the room and the sender's subscription, plus one
//! subscription per mentioned user (and per thread follower a reply notifies), never one per
//! member.

mod access;
mod badwords;
mod clean;
mod content;
mod discussions;
mod edits;
mod marks;
mod messages;
mod publish;
mod reads;
mod reports;
mod room_roles;
mod rooms;
mod search;
mod service;
mod settings;
mod subscriptions;
mod teams;
mod threads;
mod users;

pub use service::Messaging;
