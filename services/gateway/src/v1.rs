//! REST API v1 handlers, grouped as Rocket.Chat groups its route files.

pub(crate) mod auth;
pub(crate) mod chat;
pub(crate) mod commands;
pub(crate) mod directory;
pub(crate) mod discussions;
pub(crate) mod files;
pub(crate) mod integrations;
pub(crate) mod marks;
pub(crate) mod misc;
pub(crate) mod presence;
pub(crate) mod roles;
pub(crate) mod room_reads;
pub(crate) mod room_roles;
pub(crate) mod room_settings;
pub(crate) mod rooms;
pub(crate) mod rooms_extra;
pub(crate) mod subscriptions;
pub(crate) mod teams;
pub(crate) mod threads;
pub(crate) mod tokens;
pub(crate) mod users;
pub(crate) mod users_admin;
