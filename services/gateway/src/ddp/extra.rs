//! DDP methods of personal access tokens (`personalAccessTokens:*`), slash commands
//! (`slashCommand`) and `saveUserPreferences`; the method table falls through to here.

use apogee_api::TwoFactorProof;
use apogee_types::{ErrorKind, ServiceError, ServiceResult};
use serde_json::{Map, Value};

use super::methods::MethodCtx;

fn invalid_user() -> ServiceError {
    ServiceError::invalid("error-invalid-user", "Invalid user")
}

/// A method's arguments and, when its last argument is `{twoFactorCode, twoFactorMethod}`, the
/// second factor it brings (Rocket.Chat's `twoFactorRequired` pops it).
fn with_two_factor(ctx: &MethodCtx<'_>, mut params: Vec<Value>) -> (Vec<Value>, TwoFactorProof) {
    let mut proof = TwoFactorProof { token: ctx.token.clone(), ..Default::default() };
    let code = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    if let Some(last) = params.last()
        && let (Some(c), Some(m)) = (code(last, "twoFactorCode"), code(last, "twoFactorMethod"))
    {
        proof.code = Some(c);
        proof.method = Some(m);
        params.pop();
    }
    (params, proof)
}

fn object_arg(params: &[Value]) -> Map<String, Value> {
    params.first().and_then(Value::as_object).cloned().unwrap_or_default()
}

pub(crate) async fn call(
    ctx: &mut MethodCtx<'_>,
    method: &str,
    params: Vec<Value>,
) -> ServiceResult<Option<Value>> {
    let state = ctx.state;
    match method {
        "personalAccessTokens:generateToken"
        | "personalAccessTokens:regenerateToken"
        | "personalAccessTokens:removeToken" => {
            // `twoFactorRequired` refuses a caller without a login first.
            let who = ctx.principal.clone().ok_or_else(invalid_user)?;
            let (params, proof) = with_two_factor(ctx, params);
            let args = object_arg(&params);
            let name = args.get("tokenName").and_then(Value::as_str).unwrap_or_default();
            match method {
                "personalAccessTokens:generateToken" => {
                    let bypass = matches!(args.get("bypassTwoFactor"), Some(Value::Bool(true)));
                    let token = state.auth.generate_personal_token(&who, name, bypass, proof).await?;
                    Ok(Some(Value::String(token)))
                }
                "personalAccessTokens:regenerateToken" => {
                    let token = state.auth.regenerate_personal_token(&who, name, proof).await?;
                    Ok(Some(Value::String(token)))
                }
                _ => {
                    state.auth.remove_personal_token(&who, name, proof).await?;
                    Ok(None)
                }
            }
        }
        "slashCommand" => {
            let who = ctx.principal.clone().ok_or_else(invalid_user)?;
            let args = object_arg(&params);
            let command = args.get("cmd").and_then(Value::as_str).unwrap_or_default();
            if crate::commands::find(command).is_none() {
                return Err(ServiceError::invalid("error-invalid-command", "Invalid Command Provided"));
            }
            let msg = args.get("msg").and_then(Value::as_object).cloned().unwrap_or_default();
            let text =
                |key: &str| msg.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
            let Some(rid) = text("rid") else {
                return Err(ServiceError::invalid(
                    "invalid-command-usage",
                    "Executing a command requires at least a message with a room id.",
                ));
            };
            let inv = crate::commands::Invocation {
                command: command.to_owned(),
                params: args.get("params").and_then(Value::as_str).unwrap_or_default().to_owned(),
                rid,
                tmid: text("tmid"),
                message_id: text("_id"),
            };
            crate::commands::run(state, &who, inv).await?;
            Ok(None)
        }
        "saveUserPreferences" => {
            let who = ctx.principal.clone().ok_or_else(invalid_user)?;
            let Some(Value::Object(prefs)) = params.first() else {
                return Err(ServiceError::invalid("400", "Match failed"));
            };
            if !preferences_match(prefs) {
                return Err(ServiceError::invalid("400", "Match failed"));
            }
            state.auth.set_preferences(&who, &who.user_id, prefs.clone()).await?;
            Ok(Some(Value::Bool(true)))
        }
        _ => Err(ServiceError::new(ErrorKind::NotFound, "404", format!("Method '{method}' not found"))),
    }
}

/// `saveUserPreferences`'s `check(settings, Match.ObjectIncluding(keys))`: the known keys must
/// have their type (other keys pass through).
fn preferences_match(prefs: &Map<String, Value>) -> bool {
    const STRINGS: &[&str] = &[
        "language",
        "newRoomNotification",
        "newMessageNotification",
        "emailNotificationMode",
        "desktopNotifications",
        "pushNotifications",
        "sendOnEnter",
        "sidebarSortby",
        "sidebarViewMode",
        "themeAppearence",
        "fontSize",
    ];
    const NUMBERS: &[&str] = &["clockMode", "notificationsSoundVolume", "idleTimeLimit"];
    prefs.iter().all(|(key, value)| {
        if STRINGS.contains(&key.as_str()) {
            value.is_string()
        } else if NUMBERS.contains(&key.as_str()) {
            value.is_number()
        } else if key == "highlights" {
            value.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        } else {
            !BOOLEANS.contains(&key.as_str()) || value.is_boolean()
        }
    })
}

const BOOLEANS: &[&str] = &[
    "useEmojis",
    "convertAsciiEmoji",
    "saveMobileBandwidth",
    "collapseMediaByDefault",
    "autoImageLoad",
    "unreadAlert",
    "enableAutoAway",
    "hideUsernames",
    "hideRoles",
    "displayAvatars",
    "hideFlexTab",
    "sidebarShowFavorites",
    "sidebarShowUnread",
    "sidebarDisplayAvatar",
    "sidebarGroupByType",
    "muteFocusedConversations",
    "omnichannelTranscriptEmail",
    "omnichannelTranscriptPDF",
    "omnichannelHideConversationAfterClosing",
    "notifyCalendarEvents",
    "enableMobileRinging",
    "mentionsWithSymbol",
];
