//! `POST /api/v1/method.call/:method` and `method.callAnon/:method`: a DDP method call wrapped
//! in a REST body, answered with HTTP 200 and the DDP `result` frame as an EJSON string, errors
//! included (protocol.md §3.8).

use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::ddp::frame::{error_object, internal_error};
use crate::ddp::methods::{self, MethodCtx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller};
use crate::reply::ok;

/// The inner call: exactly `msg: "method"`, `id`, `method`, `params` (no `randomSeed`).
fn parse(body: &Map<String, Value>) -> Result<(String, String, Vec<Value>), ApiError> {
    if body.len() != 1 {
        return Err(ApiError::invalid_params("must NOT have additional properties"));
    }
    let Some(Value::String(message)) = body.get("message") else {
        return Err(ApiError::invalid_params("must have required property 'message'"));
    };
    let call: Map<String, Value> =
        serde_json::from_str(message).map_err(|_| ApiError::failure("Invalid method call"))?;
    let keys_ok = call.len() == 4 && ["msg", "id", "method", "params"].iter().all(|k| call.contains_key(*k));
    match (keys_ok, call.get("msg"), call.get("id"), call.get("method"), call.get("params")) {
        (
            true,
            Some(Value::String(m)),
            Some(Value::String(id)),
            Some(Value::String(method)),
            Some(Value::Array(params)),
        ) if m == "method" => Ok((id.clone(), method.clone(), params.clone())),
        _ => Err(ApiError::failure("Invalid method call")),
    }
}

async fn run(state: &GatewayState, caller: Option<&Caller>, body: &Map<String, Value>) -> ApiResult {
    let (id, method, params) = parse(body)?;
    let mut ctx = MethodCtx {
        state,
        principal: caller.map(|c| c.principal.clone()),
        token: caller.map(|c| c.token.clone()),
        conn: None,
    };
    let mut frame = json!({ "msg": "result", "id": id });
    match methods::call(&mut ctx, &method, params).await {
        Ok(Some(result)) => frame["result"] = result,
        Ok(None) => {}
        Err(e)
            if matches!(e.kind, apogee_types::ErrorKind::Internal | apogee_types::ErrorKind::Unavailable) =>
        {
            tracing::error!(%method, error = %e, "method failed");
            frame["error"] = internal_error();
        }
        Err(e) => frame["error"] = error_object(&e),
    }
    Ok(ok!("message" => frame.to_string()))
}

pub(crate) async fn method_call(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    run(&state, Some(&caller), &body).await
}

/// Runs anonymously even when credentials are sent, as Rocket.Chat 6.14 does.
pub(crate) async fn method_call_anon(State(state): State<GatewayState>, Body(body): Body) -> ApiResult {
    run(&state, None, &body).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(message: &str) -> Map<String, Value> {
        json!({ "message": message }).as_object().unwrap().clone()
    }

    #[test]
    fn accepts_only_exact_calls() {
        let ok = parse(&body(r#"{"msg":"method","id":"1","method":"rooms/get","params":[]}"#)).unwrap();
        assert_eq!(ok, ("1".to_owned(), "rooms/get".to_owned(), vec![]));
        assert!(
            parse(&body(r#"{"msg":"method","id":"1","method":"x","params":[],"randomSeed":"s"}"#)).is_err()
        );
        assert!(parse(&body(r#"{"msg":"sub","id":"1","method":"x","params":[]}"#)).is_err());
        assert!(parse(&body("not json")).is_err());
        let extra = json!({ "message": "{}", "other": 1 }).as_object().unwrap().clone();
        assert!(parse(&extra).is_err());
    }
}
