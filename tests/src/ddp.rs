//! A raw DDP client for tests: real WebSocket, frames as JSON values.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame that must come (never asserted as a speed).
const WAIT: Duration = Duration::from_secs(10);

pub struct Ddp {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for another one.
    pending: VecDeque<Value>,
    next_id: u64,
}

impl Ddp {
    /// Opens `/websocket` and reads the welcome frame.
    pub async fn open(base: &str) -> Self {
        let url = format!("{}/websocket", base.replacen("http", "ws", 1));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
        let mut ddp = Self { ws, pending: VecDeque::new(), next_id: 0 };
        let welcome = ddp.recv().await;
        assert_eq!(welcome, json!({"server_id": "0"}));
        ddp
    }

    /// Opens and completes the handshake with DDP version `1`.
    pub async fn connect(base: &str) -> Self {
        let mut ddp = Self::open(base).await;
        ddp.send(json!({"msg": "connect", "version": "1", "support": ["1", "pre2", "pre1"]})).await;
        let connected = ddp.recv().await;
        assert_eq!(connected["msg"], "connected", "{connected}");
        ddp
    }

    /// Connects and logs in with a resume token.
    pub async fn login(base: &str, token: &str) -> Self {
        let mut ddp = Self::connect(base).await;
        let result = ddp.call("login", json!([{"resume": token}])).await;
        assert!(result.get("error").is_none(), "{result}");
        ddp
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_binary(&mut self) {
        self.ws.send(Message::binary(vec![1u8, 2, 3])).await.expect("frame sent");
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("frame sent");
    }

    /// The next frame, answering server pings on the way.
    pub async fn recv(&mut self) -> Value {
        if let Some(frame) = self.pending.pop_front() {
            return frame;
        }
        self.read().await.expect("a frame arrives")
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next()).await.ok()??;
            match next.ok()? {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
                    if frame["msg"] == "ping" && frame.get("id").is_none() {
                        self.send(json!({"msg": "pong"})).await;
                        continue;
                    }
                    return Some(frame);
                }
                Message::Close(frame) => return Some(json!({"closed": frame.map(|f| u16::from(f.code))})),
                _ => {}
            }
        }
    }

    /// The next frame as it comes, pings included and not answered.
    pub async fn recv_raw(&mut self) -> Value {
        let next = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame arrives in time");
        match next.expect("socket open").expect("frame") {
            Message::Text(text) => serde_json::from_str(text.as_str()).expect("frames are JSON"),
            Message::Close(frame) => json!({"closed": frame.map(|f| u16::from(f.code))}),
            other => json!({"other": format!("{other:?}")}),
        }
    }

    /// The first frame (pending or new) that `pred` accepts; others stay pending in order.
    pub async fn recv_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&pred) {
            return self.pending.remove(i).expect("index is valid");
        }
        loop {
            let frame = self.read().await.expect("the awaited frame arrives");
            if pred(&frame) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Whether a frame `pred` accepts arrives within `wait` (for frames that must NOT come,
    /// callers first provoke a later frame and wait for that instead where they can).
    pub async fn arrives_within(&mut self, wait: Duration, pred: impl Fn(&Value) -> bool) -> bool {
        if self.pending.iter().any(&pred) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout_at(deadline, self.ws.next()).await
        {
            let frame: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
            if pred(&frame) {
                return true;
            }
            self.pending.push_back(frame);
        }
        false
    }

    /// Calls a method and returns its `result` frame.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = format!("m{}", self.next_id);
        self.send(json!({"msg": "method", "id": id, "method": method, "params": params})).await;
        let result = self.recv_where(|f| f["msg"] == "result" && f["id"] == id.as_str()).await;
        let updated = self.recv_where(|f| f["msg"] == "updated").await;
        assert_eq!(updated["methods"], json!([id]));
        result
    }

    /// Subscribes and returns the `ready` or `nosub` frame.
    pub async fn sub(&mut self, name: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = format!("s{}", self.next_id);
        self.send(json!({"msg": "sub", "id": id, "name": name, "params": params})).await;
        self.recv_where(|f| {
            (f["msg"] == "ready" && f["subs"][0] == id.as_str())
                || (f["msg"] == "nosub" && f["id"] == id.as_str())
        })
        .await
    }

    /// The next stream event on `collection` with `eventName`.
    pub async fn event(&mut self, collection: &str, event_name: &str) -> Value {
        self.recv_where(|f| {
            f["msg"] == "changed" && f["collection"] == collection && f["fields"]["eventName"] == event_name
        })
        .await
    }
}
