//! One DDP connection: the handshake, frames processed strictly in order, heartbeats, and the
//! socket's subscriptions.

use std::collections::HashMap;
use std::sync::Arc;

use apogee_telemetry::metrics::metrics;
use apogee_types::Principal;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::{Value, json};

use crate::GatewayState;
use crate::ddp::frame::{self, ClientFrame, encode, error_object, internal_error};
use crate::ddp::methods::{self, MethodCtx};
use crate::ddp::streams::{self, ActiveSub};
use crate::hub::Conn;

/// Versions we speak, in preference order (Meteor's `SUPPORTED_DDP_VERSIONS`).
const VERSIONS: [&str; 3] = ["1", "pre2", "pre1"];
/// ddp-streamer's close code for a silent client, also used for one that cannot keep up.
const CLOSE_TIMEOUT: u16 = 4000;
const CLOSE_UNSUPPORTED_DATA: u16 = 1007;
/// The server is going away; clients reconnect (to another gateway).
const CLOSE_SERVICE_RESTART: u16 = 1012;
/// Small socket buffers: most connections are idle, and tungstenite's default 128 KiB each
/// would cap a gateway at a few thousand sockets per GiB.
const READ_BUFFER: usize = 1024;
const MAX_MESSAGE: usize = 1 << 20;

pub(crate) async fn upgrade(State(state): State<GatewayState>, ws: WebSocketUpgrade) -> Response {
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_MESSAGE * 2)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| run(state, socket))
}

/// The per-connection state the frame handlers share.
pub(crate) struct Session {
    pub state: GatewayState,
    pub conn: Arc<Conn>,
    pub principal: Option<Principal>,
    pub token: Option<String>,
    connected: bool,
    /// Active subscriptions by client id.
    pub subs: HashMap<String, ActiveSub>,
    /// Frames answered by this connection, sent before anything queued by the hub.
    pub replies: Vec<Utf8Bytes>,
}

async fn run(state: GatewayState, mut socket: WebSocket) {
    let m = metrics();
    m.ddp_connections.inc();
    m.ddp_connections_opened.inc();
    let conn = state.hub.connect();
    let mut session = Session {
        state: state.clone(),
        conn: conn.clone(),
        principal: None,
        token: None,
        connected: false,
        subs: HashMap::new(),
        replies: Vec::new(),
    };
    // Meteor's welcome: no `msg` key; clients ignore it.
    let mut alive =
        socket.send(WsMessage::Text(Utf8Bytes::from_static(r#"{"server_id":"0"}"#))).await.is_ok();
    let mut pinged = false;
    // Silence after which the server pings, and after as much again closes (4000 TIMEOUT).
    let idle_after = state.cfg.ddp_idle;
    let idle = tokio::time::sleep(idle_after);
    tokio::pin!(idle);
    while alive {
        tokio::select! {
            inbound = socket.recv() => {
                idle.as_mut().reset(tokio::time::Instant::now() + idle_after);
                pinged = false;
                match inbound {
                    Some(Ok(WsMessage::Text(text))) => {
                        // Boxed: the handler's future is large (logins, method calls) and would otherwise
                        // sit inline in every idle connection's task for its whole life.
                        let subs_before = session.subs.len();
                        let close = Box::pin(session.handle(text.as_str())).await;
                        m.ddp_subscriptions.add(session.subs.len() as i64 - subs_before as i64);
                        m.ddp_frames_written.add(session.replies.len() as u64);
                        for reply in session.replies.drain(..) {
                            if socket.send(WsMessage::Text(reply)).await.is_err() {
                                alive = false;
                                break;
                            }
                        }
                        if close {
                            let _ = socket.send(WsMessage::Close(None)).await;
                            alive = false;
                        }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        close_with(&mut socket, CLOSE_UNSUPPORTED_DATA, "UNSUPPORTED_DATA").await;
                        alive = false;
                    }
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => alive = false,
                }
            }
            frame = conn.outbox.pop() => {
                alive = socket.send(WsMessage::Text(frame)).await.is_ok();
                if alive {
                    m.ddp_frames_written.inc();
                    m.fanout_frames_delivered.inc();
                }
            }
            () = &mut idle => {
                if pinged {
                    close_with(&mut socket, CLOSE_TIMEOUT, "TIMEOUT").await;
                    alive = false;
                } else {
                    pinged = true;
                    alive = socket.send(WsMessage::Text(Utf8Bytes::from_static(r#"{"msg":"ping"}"#))).await.is_ok();
                    idle.as_mut().reset(tokio::time::Instant::now() + idle_after);
                }
            }
                        () = conn.kill.cancelled() => {
                if conn.restarting.load(std::sync::atomic::Ordering::Relaxed) {
                    close_with(&mut socket, CLOSE_SERVICE_RESTART, "SERVICE_RESTART").await;
                } else {
                    close_with(&mut socket, CLOSE_TIMEOUT, "TIMEOUT").await;
                }
                alive = false;
            }
        }
    }
    m.ddp_subscriptions.add(-(session.subs.len() as i64));
    m.ddp_connections.dec();
    session.state.hub.disconnect(&conn);
    if let Some(who) = &session.principal {
        session.state.presence.disconnected(&who.user_id, conn.id).await;
    }
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) })))
        .await;
}

impl Session {
    fn reply(&mut self, value: &Value) {
        self.replies.push(encode(value));
    }

    /// Handles one inbound frame; `true` when the socket must close afterwards.
    async fn handle(&mut self, text: &str) -> bool {
        let parsed = match frame::parse(text) {
            Ok(f) => f,
            Err(bad) => {
                self.replies.push(bad.encode());
                return false;
            }
        };
        match parsed {
            ClientFrame::Ping { id } => {
                let mut pong = json!({ "msg": "pong" });
                if let Some(id) = id {
                    pong["id"] = id;
                }
                self.reply(&pong);
            }
            ClientFrame::Pong => {}
            ClientFrame::Connect { version, support } => return self.connect(version, support, text),
            _ if !self.connected => {
                let offending: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                self.reply(
                    &json!({ "msg": "error", "reason": "Must connect first", "offendingMessage": offending }),
                );
            }
            ClientFrame::Method { id, method, params } => {
                let result = {
                    let mut ctx = MethodCtx {
                        state: &self.state,
                        principal: self.principal.clone(),
                        token: self.token.clone(),
                        conn: Some(&self.conn),
                    };
                    let result = methods::call(&mut ctx, &method, params).await;
                    let (principal, token) = (ctx.principal, ctx.token);
                    self.after_method(principal, token).await;
                    result
                };
                let mut frame = json!({ "msg": "result", "id": id });
                match result {
                    Ok(Some(value)) => frame["result"] = value,
                    Ok(None) => {}
                    Err(e) => {
                        if matches!(
                            e.kind,
                            apogee_types::ErrorKind::Internal | apogee_types::ErrorKind::Unavailable
                        ) {
                            tracing::error!(%method, error = %e, "method failed");
                            frame["error"] = internal_error();
                        } else {
                            frame["error"] = error_object(&e);
                        }
                    }
                }
                self.reply(&frame);
                self.reply(&json!({ "msg": "updated", "methods": [id] }));
            }
            ClientFrame::Sub { id, name, params } => streams::subscribe(self, id, name, params).await,
            ClientFrame::Unsub { id } => streams::unsubscribe(self, &id),
        }
        false
    }

    fn connect(&mut self, version: Option<String>, support: Option<Vec<String>>, text: &str) -> bool {
        if self.connected {
            let offending: Value = serde_json::from_str(text).unwrap_or(Value::Null);
            self.reply(
                &json!({ "msg": "error", "reason": "Already connected", "offendingMessage": offending }),
            );
            return false;
        }
        let support = support.unwrap_or_default();
        let best = support.iter().find(|v| VERSIONS.contains(&v.as_str())).cloned();
        match (version, best) {
            (Some(version), Some(best)) if version == best => {
                self.connected = true;
                self.reply(&json!({ "msg": "connected", "session": apogee_types::random_id() }));
                false
            }
            (_, best) => {
                self.reply(
                    &json!({ "msg": "failed", "version": best.unwrap_or_else(|| VERSIONS[0].to_owned()) }),
                );
                true
            }
        }
    }

    /// Applies a login or logout that a method performed.
    async fn after_method(&mut self, principal: Option<Principal>, token: Option<String>) {
        let before = self.principal.as_ref().map(|p| p.user_id.clone());
        let after = principal.as_ref().map(|p| p.user_id.clone());
        if before == after {
            self.token = token;
            return;
        }
        if let Some(uid) = &before {
            self.state.hub.detach(&self.conn);
            self.state.presence.disconnected(uid, self.conn.id).await;
            // A logout ends the user's subscriptions on this socket.
            self.subs.clear();
            if let Ok(mut w) = self.conn.watches.lock() {
                *w = Default::default();
            }
        }
        if let Some(who) = &principal {
            self.state.hub.attach(&self.conn, who, &self.state.messaging).await;
            self.state.presence.connected(who, self.conn.id).await;
        }
        self.principal = principal;
        self.token = token;
    }
}
