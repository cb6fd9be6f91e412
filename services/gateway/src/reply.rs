//! Rocket.Chat's REST envelope: `success: true` merged into the payload, and exactly
//! `Content-Type: application/json` (Rocket.Chat's own tests compare the whole header).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// A JSON response with Rocket.Chat's headers.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `API.v1.success(payload)`.
pub(crate) fn success(payload: Map<String, Value>) -> Response {
    let mut payload = payload;
    payload.insert("success".into(), Value::Bool(true));
    json(StatusCode::OK, &Value::Object(payload))
}

/// Builds a success body from `key => value` pairs.
macro_rules! ok {
    () => { $crate::reply::success(serde_json::Map::new()) };
    ($($key:expr => $value:expr),+ $(,)?) => {{
        let mut map = serde_json::Map::new();
        $( map.insert($key.into(), serde_json::Value::from($value)); )+
        $crate::reply::success(map)
    }};
}
pub(crate) use ok;
