//! A minimal DDP client for the `idle` and `fanout` subcommands: open `/websocket`, do the
//! `connect` handshake, log in with a resume token, optionally subscribe to one room's
//! `stream-room-messages`, then hold the socket open (answering the server's pings) until told
//! to stop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{Api, SETUP_CONCURRENCY, TEST_ADMIN, create_and_login, run_prefix};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long closing a socket may take before it is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The DDP endpoint of a REST base URL (`http://host:port` → `ws://host:port/websocket`).
pub(crate) fn websocket_url(base: &str) -> String {
    format!("ws{}/websocket", base.strip_prefix("http").unwrap_or(base))
}

/// Small client buffers: a run holds thousands of sockets, and tungstenite's default read
/// buffer is 128 KiB each.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Microseconds since the Unix epoch (the clock both ends of a fan-out measurement share).
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Loopback source addresses to spread connections over: one (source ip, server ip, port)
/// tuple has only ~28k ephemeral ports, so more clients than that need more source addresses.
#[derive(Clone, Debug)]
pub(crate) struct Sources(Arc<[IpAddr]>);

impl Sources {
    /// `127.0.0.<first>` … `127.0.0.<first + n - 1>`; `n == 0` lets the kernel choose.
    pub(crate) fn loopback(n: u8, first: u8) -> Sources {
        let first = first.max(1);
        Sources(
            (0..n)
                .filter_map(|i| first.checked_add(i))
                .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
                .collect(),
        )
    }

    /// The source for connection `i` (round robin), if any were asked for.
    pub(crate) fn pick(&self, i: usize) -> Option<IpAddr> {
        (!self.0.is_empty()).then(|| self.0[i % self.0.len()])
    }
}

/// Opens the TCP connection (from `source` when given) and does the WebSocket handshake.
pub(crate) async fn connect(url: &str, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let Some(source) = source else {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config()), true)
            .await
            .context("websocket connect")?;
        return Ok(ws);
    };
    let parsed = reqwest::Url::parse(url).context("websocket url")?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").trim_start_matches('[').trim_end_matches(']');
    let host: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().context("websocket host must be an IP address with --sources")?
    };
    let server = SocketAddr::new(host, parsed.port_or_known_default().unwrap_or(80));
    let socket = if server.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("bind source {source}"))?;
    let stream = socket.connect(server).await.with_context(|| format!("connect {server} from {source}"))?;
    stream.set_nodelay(true)?;
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), Some(config()))
            .await
            .context("websocket handshake")?;
    Ok(ws)
}

/// Opens a socket (from `source`, if given), connects, logs in with `token` (`resume`) and,
/// given a room id, subscribes to its `stream-room-messages`. The caller bounds the time this
/// takes.
pub(crate) async fn open_from(
    url: &str,
    token: &str,
    room: Option<&str>,
    source: Option<IpAddr>,
) -> anyhow::Result<Ws> {
    let mut ws = connect(url, source).await?;
    send(&mut ws, &json!({ "msg": "connect", "version": "1", "support": ["1"] })).await?;
    expect(&mut ws, |v| match v["msg"].as_str() {
        Some("connected") => Some(Ok(())),
        Some("failed") => Some(Err(anyhow::anyhow!("connect failed: {v}"))),
        _ => None,
    })
    .await?;
    send(&mut ws, &json!({ "msg": "method", "id": "1", "method": "login", "params": [{ "resume": token }] }))
        .await?;
    expect(&mut ws, |v| match (v["msg"].as_str(), v["id"].as_str()) {
        (Some("result"), Some("1")) if v.get("error").is_some() => {
            Some(Err(anyhow::anyhow!("login failed: {}", v["error"])))
        }
        (Some("result"), Some("1")) => Some(Ok(())),
        _ => None,
    })
    .await?;
    if let Some(rid) = room {
        send(
            &mut ws,
            &json!({ "msg": "sub", "id": "s1", "name": "stream-room-messages", "params": [rid, false] }),
        )
        .await?;
        expect(&mut ws, |v| match v["msg"].as_str() {
            Some("ready") if v["subs"].as_array().is_some_and(|s| s.iter().any(|id| id == "s1")) => {
                Some(Ok(()))
            }
            Some("nosub") if v["id"] == "s1" => Some(Err(anyhow::anyhow!("subscription refused: {v}"))),
            _ => None,
        })
        .await?;
    }
    Ok(ws)
}

pub(crate) async fn send(ws: &mut Ws, frame: &Value) -> anyhow::Result<()> {
    ws.send(Message::text(frame.to_string())).await.context("websocket send")
}

/// Reads frames (answering pings) until `pick` accepts one.
pub(crate) async fn expect<T>(
    ws: &mut Ws,
    mut pick: impl FnMut(&Value) -> Option<anyhow::Result<T>>,
) -> anyhow::Result<T> {
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => bail!("server closed the socket: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e).context("websocket read"),
            None => bail!("socket ended"),
        };
        let value: Value = serde_json::from_str(text.as_str()).context("server sent invalid JSON")?;
        if value["msg"] == "ping" {
            send(ws, &json!({ "msg": "pong" })).await?;
            continue;
        }
        if let Some(picked) = pick(&value) {
            return picked;
        }
    }
}

/// Counters the held sockets of a run share.
#[derive(Default)]
pub(crate) struct Counters {
    /// Text frames received while held.
    pub frames: AtomicU64,
    /// Server pings answered.
    pub pings: AtomicU64,
    /// Sockets that ended before being told to stop.
    pub dropped: AtomicU64,
}

/// Holds an open socket until `stop` changes (it only ever turns true): answers the server's `ping`s and hands every
/// other text frame to `on_frame` with its receipt time (µs since the epoch). Returns why the
/// socket ended early, if it did.
pub(crate) async fn hold(
    ws: &mut Ws,
    stop: &mut watch::Receiver<bool>,
    counters: &Counters,
    mut on_frame: impl FnMut(&str, u64),
) -> Option<String> {
    let ended = loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break None,
            next = ws.next() => match next {
                Some(Ok(Message::Text(text))) => {
                    let received = unix_micros();
                    counters.frames.fetch_add(1, Ordering::Relaxed);
                    if is_ping(text.as_str()) {
                        if let Err(e) = send(ws, &json!({ "msg": "pong" })).await {
                            break Some(format!("{e:#}"));
                        }
                        counters.pings.fetch_add(1, Ordering::Relaxed);
                    } else {
                        on_frame(text.as_str(), received);
                    }
                }
                Some(Ok(Message::Close(frame))) => break Some(format!("closed by the server: {frame:?}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(format!("read error: {e}")),
                None => break Some("socket ended".to_owned()),
            },
        }
    };
    if ended.is_some() {
        counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
    ended
}

/// Closes a socket politely, giving up after a moment.
pub(crate) async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
}

/// The server's `{"msg":"ping"}` (short frames only: events are never this small).
pub(crate) fn is_ping(text: &str) -> bool {
    text.len() < 64 && serde_json::from_str::<Value>(text).is_ok_and(|v| v["msg"] == "ping")
}

/// What `setup` made: users (logged in over REST) and channels holding all of them.
pub(crate) struct Setup {
    pub prefix: String,
    /// The `TEST_MODE` admin, for further set-up.
    pub admin: Api,
    /// Usernames, in creation order.
    pub names: Vec<String>,
    /// One authenticated REST client per user, in creation order.
    pub clients: Vec<Api>,
    /// Each user's resume token, same order.
    pub tokens: Vec<Arc<str>>,
    /// Channel ids.
    pub rooms: Vec<String>,
}

/// Logs in as the `TEST_MODE` admin, creates and logs in `users` users (a few at a time: each
/// login costs the server a bcrypt) and `rooms` public channels with every user as a member.
pub(crate) async fn setup(base: &str, users: usize, rooms: usize) -> anyhow::Result<Setup> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(SETUP_CONCURRENCY * 2)
        .tcp_nodelay(true)
        .build()?;
    let anon = Api { http, base: base.into(), auth: None };
    let admin = anon
        .login(TEST_ADMIN, TEST_ADMIN)
        .await
        .context("log in as the TEST_MODE admin (is TEST_MODE=true?)")?;
    let prefix = run_prefix();
    let names: Vec<String> = (0..users).map(|i| format!("{prefix}-u{i}")).collect();
    let clients = create_and_login(&admin, &anon, &names).await?;
    let tokens = clients
        .iter()
        .map(|c| c.auth.as_ref().map(|(_, token)| token.clone()).context("client without a token"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut rids = Vec::with_capacity(rooms);
    for r in 0..rooms {
        let body = json!({ "name": format!("{prefix}-room{r}"), "members": &names });
        let reply = admin.post("channels.create", &body).await.context("create a channel")?;
        let rid = reply["channel"]["_id"].as_str().context("channels.create: no channel._id")?;
        rids.push(rid.to_owned());
    }
    Ok(Setup { prefix, admin, names, clients, tokens, rooms: rids })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_base() {
        assert_eq!(websocket_url("http://127.0.0.1:3400"), "ws://127.0.0.1:3400/websocket");
    }

    #[test]
    fn pings_are_recognised() {
        assert!(is_ping(r#"{"msg":"ping"}"#));
        assert!(is_ping(r#"{"msg":"ping","id":"x"}"#));
        assert!(!is_ping(r#"{"msg":"pong"}"#));
        assert!(!is_ping(r#"{"msg":"changed","collection":"stream-room-messages","id":"id"}"#));
    }
}
