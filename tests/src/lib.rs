//! The end-to-end harness: [`TestServer::start`] runs the real all-in-one server on port 0
//! with a fresh data directory, and [`Client`] speaks Rocket.Chat's REST API to it.
#![allow(clippy::unwrap_used)]

pub mod clients;
pub mod cluster;
pub mod ddp;
pub mod http_site;
pub mod moto;
pub mod otlp;

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The `TEST_MODE` admin: id, username and password.
pub const ADMIN: &str = "rocketchat.internal.admin.test";

/// A random suffix for names that must not collide between tests running in parallel.
pub fn random_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{nanos:x}", std::process::id())
}

/// A running server with its own temporary data directory.
pub struct TestServer {
    pub url: String,
    running: apogee::Running,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a server in `TEST_MODE` (Rocket.Chat's test bootstrap, no rate limits).
    pub async fn start() -> Self {
        Self::start_with(&[("TEST_MODE", "true")]).await
    }

    /// Starts a server configured by these environment variables (nothing else is read).
    pub async fn start_with(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut vars: HashMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        vars.insert("APOGEE_DATA_DIR".into(), dir.path().display().to_string());
        vars.entry("ROOT_URL".into()).or_insert_with(|| format!("http://127.0.0.1:{port}"));
        let config = apogee_config::load(&apogee_config::CliOverrides::default(), &vars).unwrap();
        let running = apogee::start(&config, listener).await.unwrap();
        Self { url: format!("http://{}", running.addr), running, _dir: dir }
    }

    /// The server's data directory (the database, `files/` with the local blobs).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Starts the graceful shutdown (as SIGTERM does).
    pub fn shutdown(&self) {
        self.running.shutdown.cancel();
    }

    /// An unauthenticated client.
    pub fn anon(&self) -> Client {
        Client { base: self.url.clone(), http: reqwest::Client::new(), auth: None }
    }

    /// A client logged in as the `TEST_MODE` admin.
    pub async fn admin(&self) -> Client {
        self.anon().login(ADMIN, ADMIN).await
    }

    /// Creates a user (as the admin) with password `pw` and returns a client logged in as them.
    pub async fn user(&self, username: &str) -> Client {
        let admin = self.admin().await;
        let (status, body) = admin
            .post(
                "users.create",
                json!({"username": username, "email": format!("{username}@example.com"), "name": format!("{username} Name"),
                       "password": "pw", "verified": true}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.anon().login(username, "pw").await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.running.shutdown.cancel();
    }
}

/// A REST client, optionally authenticated.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    /// `(user id, token)`.
    pub auth: Option<(String, String)>,
}

impl Client {
    /// An unauthenticated client of the server at `base` (say, one started as a process).
    pub fn anon(base: &str) -> Client {
        Client { base: base.trim_end_matches('/').to_owned(), http: reqwest::Client::new(), auth: None }
    }

    pub fn user_id(&self) -> &str {
        &self.auth.as_ref().unwrap().0
    }

    pub fn token(&self) -> &str {
        &self.auth.as_ref().unwrap().1
    }

    /// The same login against another server (another gateway of a cluster).
    pub fn at(&self, base: &str) -> Client {
        Client { base: base.to_owned(), ..self.clone() }
    }

    /// The same client authenticating as `user_id` with `token` (a personal access token, …).
    pub fn with_credentials(&self, user_id: &str, token: &str) -> Client {
        Client { auth: Some((user_id.to_owned(), token.to_owned())), ..self.clone() }
    }

    /// Logs in with `{user, password}` and returns a client carrying the token.
    pub async fn login(&self, user: &str, password: &str) -> Client {
        let (status, body) = self.post("login", json!({"user": user, "password": password})).await;
        assert_eq!(status, StatusCode::OK, "login as {user}: {body}");
        let auth = (
            body["data"]["userId"].as_str().unwrap().to_owned(),
            body["data"]["authToken"].as_str().unwrap().to_owned(),
        );
        Client { auth: Some(auth), ..self.clone() }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/api/v1/{path}", self.base)
        }
    }

    fn with_auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some((uid, token)) => req.header("X-User-Id", uid).header("X-Auth-Token", token),
            None => req,
        }
    }

    /// `GET /api/v1/<path>` (or an absolute path starting with `/`); the query goes in `path`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let resp = self.with_auth(self.http.get(self.url(path))).send().await.unwrap();
        Self::read(resp).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let req =
            self.http.post(self.url(path)).header("Content-Type", "application/json").body(body.to_string());
        let resp = self.with_auth(req).send().await.unwrap();
        Self::read(resp).await
    }

    /// Posts a multipart form (uploads).
    pub async fn post_multipart(&self, path: &str, form: reqwest::multipart::Form) -> (StatusCode, Value) {
        let resp = self.with_auth(self.http.post(self.url(path)).multipart(form)).send().await.unwrap();
        Self::read(resp).await
    }

    /// A request with this client's login headers, for responses that are not JSON (downloads).
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.with_auth(self.http.request(method, self.url(path)))
    }

    /// Posts raw bytes (malformed bodies).
    pub async fn post_raw(&self, path: &str, body: &'static str) -> (StatusCode, Value) {
        let req = self.http.post(self.url(path)).header("Content-Type", "application/json").body(body);
        let resp = self.with_auth(req).send().await.unwrap();
        Self::read(resp).await
    }

    async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
        let status = resp.status();
        let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        assert_eq!(content_type.as_deref(), Some("application/json"), "exact Content-Type; body: {text}");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Asserts a 200 with `success: true` and returns the body.
    pub async fn ok_get(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!((status, &body["success"]), (StatusCode::OK, &Value::Bool(true)), "GET {path}: {body}");
        body
    }

    pub async fn ok_post(&self, path: &str, body: Value) -> Value {
        let (status, resp) = self.post(path, body.clone()).await;
        assert_eq!(
            (status, &resp["success"]),
            (StatusCode::OK, &Value::Bool(true)),
            "POST {path} {body}: {resp}"
        );
        resp
    }
}

/// Asserts a Rocket.Chat failure: status, `success: false`, and the `errorType`.
pub fn assert_error(resp: &(StatusCode, Value), status: u16, error_type: Option<&str>) {
    let (got, body) = resp;
    assert_eq!(got.as_u16(), status, "{body}");
    assert_eq!(body["success"], Value::Bool(false), "{body}");
    match error_type {
        Some(t) => assert_eq!(body["errorType"], Value::String(t.into()), "{body}"),
        None => assert!(body.get("errorType").is_none(), "no errorType expected: {body}"),
    }
}
