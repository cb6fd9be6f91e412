//! Request extraction: the authenticated principal, JSON bodies and query strings, parsed
//! leniently as Rocket.Chat clients send them and refused with Rocket.Chat's errors.

use std::collections::HashMap;
use std::net::SocketAddr;

use apogee_types::{Millis, PageRequest, Principal, ServiceError};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::GatewayState;
use crate::error::{ApiError, not_logged_in};

/// The caller, authenticated from `X-User-Id` + `X-Auth-Token`.
pub(crate) struct Caller {
    pub principal: Principal,
    pub token: String,
}

impl FromRequestParts<GatewayState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &GatewayState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let (user_id, token) = (header("x-user-id"), header("x-auth-token"));
        if user_id.is_empty() || token.is_empty() {
            return Err(not_logged_in());
        }
        match state.authenticate(&user_id, &token).await {
            Ok(principal) => Ok(Caller { principal, token }),
            Err(e) if e.kind == apogee_types::ErrorKind::Unauthenticated => Err(not_logged_in()),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}

/// The client's address (for limits keyed before login), when the server knows it.
pub(crate) struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip().to_string()),
        ))
    }
}

/// A JSON object body. An empty body is an empty object; anything but an object is refused.
pub(crate) struct Body(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            let mut response =
                ApiError::failure(format!("Invalid request body: {}", e.body_text())).into_response();
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                *response.status_mut() = status;
            }
            response
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Body(map)),
            Ok(_) => Err(ApiError::invalid_params("must be object").into_response()),
            Err(e) => {
                Err(ApiError::typed("error-invalid-json", format!("Invalid JSON body: {e}")).into_response())
            }
        }
    }
}

/// The query string as a map, decoded leniently: clients send raw JSON and unencoded values.
pub(crate) struct Query(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Query(parse_query(parts.uri.query().unwrap_or_default())))
    }
}

pub(crate) fn parse_query(query: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        let value = percent_decode(value);
        // `ids[]=a&ids[]=b`: join repeated keys with commas, as Rocket.Chat's list params read them.
        map.entry(key)
            .and_modify(|v: &mut String| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    map
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lenient booleans: `true`, `True`, `1`.
pub(crate) fn truthy(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("true" | "True" | "TRUE" | "1"))
}

/// A string parameter from a body or query.
pub(crate) fn body_str<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// A required string body parameter, refused as Rocket.Chat's validators do.
pub(crate) fn require_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid_params(format!("must be string: '{key}'"))),
        None => Err(ApiError::invalid_params(format!("must have required property '{key}'"))),
    }
}

/// Pagination from a query: `offset`, `count` (clamped by the `API_*_Count` settings), as
/// `helpers/getPaginationItems.ts` does.
pub(crate) async fn page(
    state: &GatewayState,
    query: &HashMap<String, String>,
) -> Result<PageRequest, ApiError> {
    let number = |key: &str| -> Result<Option<i64>, ApiError> {
        match query.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid_params(format!("{key} must be a number"))),
        }
    };
    let offset = number("offset")?.unwrap_or(0).max(0);
    let default = state.auth.setting_i64("API_Default_Count", 50).await;
    let upper = state.auth.setting_i64("API_Upper_Count_Limit", 100).await;
    let infinite = state.auth.setting_bool("API_Allow_Infinite_Count", true).await;
    let count = match number("count")? {
        None => Some(default),
        Some(0) if infinite => None,
        Some(c) if c < 0 => Some(default),
        Some(c) => Some(c.min(upper)),
    };
    if let Some(sort) = query.get("sort") {
        validate_sort(sort)?;
    }
    if let Some(fields) = query.get("fields")
        && serde_json::from_str::<Map<String, Value>>(fields).is_err()
    {
        return Err(ApiError::typed("error-invalid-fields", "Invalid fields parameter"));
    }
    if let Some(q) = query.get("query")
        && serde_json::from_str::<Map<String, Value>>(q).is_err()
    {
        return Err(ApiError::typed("error-invalid-query", "Invalid query parameter"));
    }
    Ok(PageRequest {
        offset: u64::try_from(offset).unwrap_or(0),
        count: count.map(|c| u64::try_from(c).unwrap_or(0)),
    })
}

fn validate_sort(sort: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::typed("error-invalid-sort", "Invalid sort parameter provided");
    let map: Map<String, Value> = serde_json::from_str(sort).map_err(|_| invalid())?;
    if map.values().all(|v| v.as_i64().is_some_and(|n| n == 1 || n == -1)) { Ok(()) } else { Err(invalid()) }
}

/// An optional date parameter; `error_type` names Rocket.Chat's error for a bad one.
pub(crate) fn date_param(
    value: Option<&String>,
    error_type: &str,
    message: &str,
) -> Result<Option<Millis>, ApiError> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => apogee_rc::parse_date(&Value::String(v.to_owned()))
            .map(Some)
            .ok_or_else(|| ApiError(ServiceError::invalid(error_type, message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_leniently() {
        let q = parse_query("roomId=GENERAL&query={\"a\":1}&ids[]=a&ids[]=b&text=hello+world%21&bad=%zz");
        assert_eq!(q["roomId"], "GENERAL");
        assert_eq!(q["query"], "{\"a\":1}");
        assert_eq!(q["ids[]"], "a,b");
        assert_eq!(q["text"], "hello world!");
        assert_eq!(q["bad"], "%zz");
        assert!(truthy(Some("True")) && !truthy(Some("false")) && !truthy(None));
    }
}
