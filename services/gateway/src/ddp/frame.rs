//! DDP frames: parsing what clients send and encoding what the server sends (EJSON dates).

use apogee_types::{ErrorKind, ServiceError};
use axum::extract::ws::Utf8Bytes;
use serde_json::{Map, Value, json};

/// What a client may send.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ClientFrame {
    Connect { version: Option<String>, support: Option<Vec<String>> },
    Ping { id: Option<Value> },
    Pong,
    Method { id: String, method: String, params: Vec<Value> },
    Sub { id: String, name: String, params: Vec<Value> },
    Unsub { id: String },
}

/// Why a frame was refused; answered with `{"msg":"error", …}` as Meteor does, keeping the socket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadFrame {
    pub reason: &'static str,
    pub offending: Option<Value>,
}

impl BadFrame {
    pub(crate) fn encode(&self) -> Utf8Bytes {
        let mut frame = json!({ "msg": "error", "reason": self.reason });
        if let Some(offending) = &self.offending {
            frame["offendingMessage"] = offending.clone();
        }
        encode(&frame)
    }
}

pub(crate) fn parse(text: &str) -> Result<ClientFrame, BadFrame> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| BadFrame { reason: "Parse error", offending: None })?;
    let Value::Object(map) = &value else {
        return Err(BadFrame { reason: "Bad request", offending: Some(value) });
    };
    let bad = |reason| BadFrame { reason, offending: Some(value.clone()) };
    let str_field = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
    let params = |map: &Map<String, Value>| match map.get("params") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => None,
    };
    match map.get("msg").and_then(Value::as_str) {
        Some("connect") => Ok(ClientFrame::Connect {
            version: str_field("version"),
            support: map
                .get("support")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
        }),
        Some("ping") => Ok(ClientFrame::Ping { id: map.get("id").cloned() }),
        Some("pong") => Ok(ClientFrame::Pong),
        Some("method") => match (str_field("id"), str_field("method"), params(map)) {
            (Some(id), Some(method), Some(params)) => Ok(ClientFrame::Method { id, method, params }),
            _ => Err(bad("Malformed method invocation")),
        },
        Some("sub") => match (str_field("id"), str_field("name"), params(map)) {
            (Some(id), Some(name), Some(params)) => Ok(ClientFrame::Sub { id, name, params }),
            _ => Err(bad("Malformed subscription")),
        },
        Some("unsub") => match str_field("id") {
            Some(id) => Ok(ClientFrame::Unsub { id }),
            None => Err(bad("Malformed subscription")),
        },
        _ => Err(bad("Bad request")),
    }
}

pub(crate) fn encode(value: &Value) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(value).unwrap_or_else(|_| "{}".into()))
}

/// A Meteor error object (`result.error` of a method, `nosub.error`).
pub(crate) fn error_object(e: &ServiceError) -> Value {
    let code: Value = match e.kind {
        ErrorKind::Internal | ErrorKind::Unavailable => return internal_error(),
        _ if e.error_type.is_empty() => Value::from(match e.kind {
            ErrorKind::Unauthenticated | ErrorKind::PermissionDenied => "error-not-allowed",
            ErrorKind::TooManyRequests => "too-many-requests",
            _ => "error-invalid-request",
        }),
        _ => {
            e.error_type.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(e.error_type.clone()))
        }
    };
    let code_text = match &code {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut obj = json!({
        "isClientSafe": true,
        "error": code,
        "reason": e.message,
        "message": format!("{} [{}]", e.message, code_text),
        "errorType": "Meteor.Error",
    });
    if let Some(details) = &e.details {
        obj["details"] = details.clone();
    }
    obj
}

/// Meteor redacts unexpected errors.
pub(crate) fn internal_error() -> Value {
    json!({"isClientSafe": true, "error": 500, "reason": "Internal server error",
           "message": "Internal server error [500]", "errorType": "Meteor.Error"})
}

/// An error with a code and no reason (`not-allowed` refusals of streams).
pub(crate) fn bare_error(code: &str) -> Value {
    json!({"isClientSafe": true, "error": code, "message": format!("[{code}]"), "errorType": "Meteor.Error"})
}

/// A `changed` stream frame: `{"msg":"changed","collection":C,"id":"id","fields":{"eventName":E,"args":A}}`.
pub(crate) fn stream_event(collection: &str, event_name: &str, args: Value) -> Utf8Bytes {
    // Written as text around the serialized args: no value tree for the envelope (hot path).
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let args = serde_json::to_string(&args).unwrap_or_else(|_| "[]".into());
    Utf8Bytes::from(format!(
        r#"{{"msg":"changed","collection":{},"id":"id","fields":{{"eventName":{},"args":{}}}}}"#,
        quote(collection),
        quote(event_name),
        args
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        assert_eq!(
            parse(r#"{"msg":"connect","version":"1","support":["1","pre2"]}"#),
            Ok(ClientFrame::Connect {
                version: Some("1".into()),
                support: Some(vec!["1".into(), "pre2".into()])
            })
        );
        assert_eq!(parse(r#"{"msg":"ping","id":"7"}"#), Ok(ClientFrame::Ping { id: Some(json!("7")) }));
        assert_eq!(parse(r#"{"msg":"pong"}"#), Ok(ClientFrame::Pong));
        assert_eq!(
            parse(r#"{"msg":"method","id":"1","method":"login","params":[{"resume":"t"}],"randomSeed":"x"}"#),
            Ok(ClientFrame::Method {
                id: "1".into(),
                method: "login".into(),
                params: vec![json!({"resume":"t"})]
            })
        );
        assert_eq!(
            parse(r#"{"msg":"sub","id":"s","name":"stream-room-messages","params":["GENERAL",false]}"#),
            Ok(ClientFrame::Sub {
                id: "s".into(),
                name: "stream-room-messages".into(),
                params: vec![json!("GENERAL"), json!(false)]
            })
        );
        assert_eq!(parse(r#"{"msg":"unsub","id":"s"}"#), Ok(ClientFrame::Unsub { id: "s".into() }));
    }

    #[test]
    fn refuses_malformed_frames_with_meteor_reasons() {
        assert_eq!(parse("{nope").unwrap_err().reason, "Parse error");
        assert_eq!(parse("[1]").unwrap_err().reason, "Bad request");
        assert_eq!(parse(r#"{"msg":"dance"}"#).unwrap_err().reason, "Bad request");
        assert_eq!(
            parse(r#"{"msg":"method","id":1,"method":"x"}"#).unwrap_err().reason,
            "Malformed method invocation"
        );
        assert_eq!(
            parse(r#"{"msg":"method","id":"1","method":"x","params":{}}"#).unwrap_err().reason,
            "Malformed method invocation"
        );
        assert_eq!(parse(r#"{"msg":"sub","id":"1"}"#).unwrap_err().reason, "Malformed subscription");
        let bad = parse(r#"{"msg":"dance"}"#).unwrap_err().encode();
        assert_eq!(
            bad.as_str(),
            r#"{"msg":"error","offendingMessage":{"msg":"dance"},"reason":"Bad request"}"#
        );
    }

    #[test]
    fn stream_events_are_meteor_changed_frames() {
        let frame = stream_event("stream-room-messages", "GEN\"ERAL", json!([{"msg": "hi"}]));
        let parsed: Value = serde_json::from_str(frame.as_str()).unwrap();
        assert_eq!(
            parsed,
            json!({"msg": "changed", "collection": "stream-room-messages", "id": "id",
                   "fields": {"eventName": "GEN\"ERAL", "args": [{"msg": "hi"}]}})
        );
    }

    #[test]
    fn meteor_error_objects() {
        let e = ServiceError::not_allowed("Not allowed");
        assert_eq!(
            error_object(&e),
            json!({"isClientSafe": true, "error": "error-not-allowed", "reason": "Not allowed",
                   "message": "Not allowed [error-not-allowed]", "errorType": "Meteor.Error"})
        );
        let numeric = ServiceError::new(ErrorKind::Unauthenticated, "403", "Incorrect password");
        assert_eq!(error_object(&numeric)["error"], json!(403));
        assert_eq!(error_object(&ServiceError::internal("db on fire"))["reason"], "Internal server error");
    }
}
