//! Administering users and one's own account: `users.update`, `users.setActiveStatus`,
//! `users.delete`, `users.checkUsernameAvailability`, `users.updateOwnBasicInfo`,
//! `users.deleteOwnAccount`, `users.logout`, `users.getPreferences`, `users.setPreferences`,
//! `users.autocomplete`, `users.listByStatus`.

use apogee_api::{OwnProfileUpdate, UserStatusQuery, UserUpdate};
use apogee_rc::Dates;
use axum::extract::State;
use serde_json::{Map, Value, json};

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, page, require_str};
use crate::reply::ok;

fn opt_str(data: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match data.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_params(format!("must be string: 'data.{key}'"))),
    }
}

fn opt_bool(data: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match data.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_params(format!("must be boolean: 'data.{key}'"))),
    }
}

/// `confirmRelinquish`: hand solely owned rooms to other members instead of refusing.
fn confirm_relinquish(body: &Map<String, Value>) -> bool {
    matches!(body.get("confirmRelinquish"), Some(Value::Bool(true)))
}

pub(crate) async fn update(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let user_id = require_str(&body, "userId")?.to_owned();
    let data = match body.get("data") {
        Some(Value::Object(data)) => data,
        Some(_) => return Err(ApiError::invalid_params("must be object: 'data'")),
        None => return Err(ApiError::invalid_params("must have required property 'data'")),
    };
    let roles = match data.get("roles") {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::invalid_params("must be string: 'data.roles'"))?,
        ),
        Some(_) => return Err(ApiError::invalid_params("must be array: 'data.roles'")),
    };
    let update = UserUpdate {
        username: opt_str(data, "username")?,
        email: opt_str(data, "email")?,
        name: opt_str(data, "name")?,
        password: opt_str(data, "password")?,
        active: opt_bool(data, "active")?,
        roles,
        verified: opt_bool(data, "verified")?,
        require_password_change: opt_bool(data, "requirePasswordChange")?,
        status_text: opt_str(data, "statusText")?,
        bio: opt_str(data, "bio")?,
        nickname: opt_str(data, "nickname")?,
        custom_fields: data.get("customFields").and_then(Value::as_object).cloned(),
        confirm_relinquish: confirm_relinquish(&body),
    };
    let user = state.auth.update_user(&caller.principal, &user_id, update).await?;
    Ok(ok!("user" => apogee_rc::user_public(&user, Dates::Iso, true)))
}

pub(crate) async fn set_active_status(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let user_id = require_str(&body, "userId")?.to_owned();
    let active = match body.get("activeStatus") {
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid_params("must be boolean: 'activeStatus'")),
        None => return Err(ApiError::invalid_params("must have required property 'activeStatus'")),
    };
    let user =
        state.auth.set_active_status(&caller.principal, &user_id, active, confirm_relinquish(&body)).await?;
    Ok(ok!("user" => json!({"_id": user.id, "active": user.active})))
}

pub(crate) async fn delete(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let user_id =
        match (body.get("userId").and_then(Value::as_str), body.get("username").and_then(Value::as_str)) {
            (Some(id), _) if !id.is_empty() => id.to_owned(),
            (_, Some(name)) if !name.is_empty() => {
                let found = state.auth.find_user(apogee_api::UserSelector::Username(name.to_owned())).await?;
                found.map(|u| u.id).unwrap_or_default()
            }
            _ => {
                return Err(ApiError::typed(
                    "error-user-param-not-provided",
                    "The required \"userId\" or \"username\" param was not provided",
                ));
            }
        };
    state.auth.delete_user(&caller.principal, &user_id, confirm_relinquish(&body)).await?;
    Ok(ok!())
}

pub(crate) async fn check_username_availability(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(username) = query.get("username") else {
        return Err(ApiError::invalid_params("must have required property 'username'"));
    };
    let result = state.auth.username_available(&caller.principal, username).await?;
    Ok(ok!("result" => result))
}

pub(crate) async fn update_own_basic_info(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let data = match body.get("data") {
        Some(Value::Object(data)) => data,
        Some(_) => return Err(ApiError::invalid_params("must be object: 'data'")),
        None => return Err(ApiError::invalid_params("must have required property 'data'")),
    };
    let custom_fields = match body.get("customFields") {
        None | Some(Value::Null) => None,
        Some(Value::Object(fields)) => Some(fields.clone()),
        Some(_) => return Err(ApiError::invalid_params("must be object: 'customFields'")),
    };
    let update = OwnProfileUpdate {
        email: opt_str(data, "email")?,
        name: opt_str(data, "name")?,
        username: opt_str(data, "username")?,
        nickname: opt_str(data, "nickname")?,
        bio: opt_str(data, "bio")?,
        status_text: opt_str(data, "statusText")?,
        new_password: opt_str(data, "newPassword")?,
        current_password: opt_str(data, "currentPassword")?,
        custom_fields,
    };
    let user = state.auth.update_own_profile(&caller.principal, update).await?;
    Ok(ok!("user" => apogee_rc::user_public(&user, Dates::Iso, true)))
}

pub(crate) async fn delete_own_account(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let Some(password) = body.get("password").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
        return Err(ApiError::failure("Body parameter \"password\" is required."));
    };
    state.auth.delete_own_account(&caller.principal, password, confirm_relinquish(&body)).await?;
    Ok(ok!())
}

pub(crate) async fn logout(State(state): State<GatewayState>, caller: Caller, Body(body): Body) -> ApiResult {
    let user_id = match body.get("userId") {
        None | Some(Value::Null) => caller.principal.user_id.clone(),
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::String(_)) => caller.principal.user_id.clone(),
        Some(_) => return Err(ApiError::invalid_params("must be string: 'userId'")),
    };
    state.auth.logout_user(&caller.principal, &user_id).await?;
    Ok(ok!("message" => format!("User {user_id} has been logged out!")))
}

pub(crate) async fn get_preferences(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    let user = state.auth.me(&caller.principal).await?;
    // Rocket.Chat answers the stored preferences; a user who never saved any gets the defaults.
    let mut preferences = if user.preferences.is_empty() {
        state.auth.user_preferences(&user).await?
    } else {
        user.preferences.clone()
    };
    preferences.insert("language".into(), user.language.clone().map_or(Value::Null, Value::String));
    Ok(ok!("preferences" => preferences))
}

pub(crate) async fn set_preferences(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let data = match body.get("data") {
        Some(Value::Object(data)) => data.clone(),
        Some(_) => return Err(ApiError::invalid_params("must be object: 'data'")),
        None => return Err(ApiError::invalid_params("must have required property 'data'")),
    };
    let user_id = match body.get("userId") {
        None | Some(Value::Null) => caller.principal.user_id.clone(),
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::String(_)) => caller.principal.user_id.clone(),
        Some(_) => return Err(ApiError::invalid_params("must be string: 'userId'")),
    };
    let user = state.auth.set_preferences(&caller.principal, &user_id, data).await?;
    let mut preferences = user.preferences.clone();
    preferences.insert("language".into(), user.language.clone().map_or(Value::Null, Value::String));
    Ok(ok!("user" => json!({"_id": user.id, "settings": {"preferences": preferences}})))
}

pub(crate) async fn autocomplete(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let Some(raw) = query.get("selector") else {
        return Err(ApiError::invalid_params("must have required property 'selector'"));
    };
    let selector: Value = serde_json::from_str(raw)
        .map_err(|_| ApiError::invalid_params("must be a JSON object: 'selector'"))?;
    let term = selector.get("term").and_then(Value::as_str).unwrap_or_default();
    let exceptions = selector
        .get("exceptions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let conditions = selector.get("conditions").cloned().unwrap_or(Value::Null);
    if !conditions_are_allowed(&conditions) {
        return Err(ApiError::failure("error-invalid-query"));
    }
    let users = state.auth.autocomplete_users(&caller.principal, term, exceptions).await?;
    let items: Vec<Value> = users
        .iter()
        .filter(|u| conditions_match(&conditions, &apogee_rc::user_public(u, Dates::Iso, true)))
        .map(|u| {
            let mut item = json!({"_id": u.id, "username": u.username, "status": u.status});
            if let Some(name) = &u.name {
                item["name"] = json!(name);
            }
            if let Some(nickname) = &u.nickname {
                item["nickname"] = json!(nickname);
            }
            if let Some(etag) = &u.avatar_etag {
                item["avatarETag"] = json!(etag);
            }
            item
        })
        .collect();
    Ok(ok!("items" => items))
}

pub(crate) async fn list_by_status(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let active = match query.get("status").map(String::as_str) {
        None => None,
        Some("active") => Some(true),
        Some("deactivated") => Some(false),
        Some(_) => {
            return Err(ApiError::invalid_params("must be equal to one of the allowed values"));
        }
    };
    let has_logged_in = match query.get("hasLoggedIn").map(String::as_str) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::invalid_params("must be boolean: 'hasLoggedIn'")),
    };
    let roles = query
        .get("roles")
        .or_else(|| query.get("roles[]"))
        .map(|r| r.split(',').map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let status_query = UserStatusQuery {
        active,
        has_logged_in,
        kind: query.get("type").filter(|t| !t.is_empty()).cloned(),
        roles,
        search_term: query.get("searchTerm").cloned(),
    };
    let page = page(&state, &query).await?;
    let found = state.auth.users_by_status(&caller.principal, status_query, page).await?;
    const FIELDS: [&str; 9] =
        ["_id", "name", "username", "emails", "roles", "status", "active", "lastLogin", "type"];
    let users: Vec<Value> = found
        .items
        .iter()
        .map(|u| {
            let mut shown = apogee_rc::user_public(u, Dates::Iso, true);
            if let Value::Object(map) = &mut shown {
                map.retain(|k, _| FIELDS.contains(&k.as_str()));
            }
            shown
        })
        .collect();
    Ok(
        ok!("users" => users.clone(), "count" => users.len(), "offset" => found.offset, "total" => found.total),
    )
}

/// `isValidQuery(conditions, ['*'], ['$or', '$and'])`: any field, only `$or` / `$and` operators.
fn conditions_are_allowed(conditions: &Value) -> bool {
    match conditions {
        Value::Null => true,
        Value::Object(map) => map.iter().all(|(key, value)| match key.as_str() {
            "$or" | "$and" => value.as_array().is_some_and(|parts| parts.iter().all(conditions_are_allowed)),
            k if k.starts_with('$') => false,
            _ => !value.as_object().is_some_and(|v| v.keys().any(|k| k.starts_with('$'))),
        }),
        _ => false,
    }
}

/// Equality conditions combined with `$or` / `$and`, over the user's JSON.
fn conditions_match(conditions: &Value, user: &Value) -> bool {
    let Value::Object(map) = conditions else { return true };
    map.iter().all(|(key, value)| match key.as_str() {
        "$and" => value.as_array().is_some_and(|parts| parts.iter().all(|c| conditions_match(c, user))),
        "$or" => value.as_array().is_some_and(|parts| parts.iter().any(|c| conditions_match(c, user))),
        field => user.get(field) == Some(value),
    })
}

/// `GET users.getUsernameSuggestion`: `{result}`, the first free name among those made from the
/// caller's name and verified e-mails, else `<Accounts_DefaultUsernamePrefixSuggestion>-<n>`.
pub(crate) async fn username_suggestion(State(state): State<GatewayState>, caller: Caller) -> ApiResult {
    let user = state.auth.me(&caller.principal).await?;
    let slugify = state.auth.setting_bool("UTF8_Names_Slugify", true).await;
    // Without slugify the name is kept as typed, but only Rocket.Chat's username characters.
    let name = |s: &str| {
        if slugify {
            slug(s)
        } else {
            s.chars()
                .flat_map(char::to_lowercase)
                .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect()
        }
    };
    let mut candidates = Vec::new();
    if let Some(full) = user.name.as_deref().filter(|n| !n.is_empty()) {
        candidates.push(name(full));
        let parts: Vec<&str> = full.split(' ').collect();
        if let (Some(first), Some(last)) = (parts.first(), parts.last())
            && parts.len() > 1
        {
            let initial = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
            candidates.push(name(&format!("{}{last}", initial(first))));
            candidates.push(name(&format!("{first}{}", initial(last))));
        }
    }
    for email in user.emails.iter().filter(|e| e.verified) {
        let (local, domain) = email.address.split_once('@').unwrap_or((&email.address, ""));
        candidates.push(slug(local));
        let host: String = domain.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !host.is_empty() {
            candidates.push(slug(&format!("{local}.{host}")));
        }
    }
    candidates.retain(|c| !c.is_empty());
    for candidate in &candidates {
        if username_free(&state, candidate).await? {
            return Ok(ok!("result" => candidate.clone()));
        }
    }
    let base = match candidates.into_iter().next() {
        Some(first) => first,
        None => {
            state.auth.setting_string("Accounts_DefaultUsernamePrefixSuggestion").await.unwrap_or_default()
        }
    };
    // Bounded (each try is a lookup): a name with this many taken numbered variants gets no
    // suggestion.
    for n in 0..100 {
        let candidate = format!("{base}-{n}");
        if username_free(&state, &candidate).await? {
            return Ok(ok!("result" => candidate));
        }
    }
    Ok(ok!())
}

async fn username_free(state: &GatewayState, name: &str) -> Result<bool, ApiError> {
    if name.is_empty() || name == "all" {
        return Ok(false);
    }
    Ok(state.auth.find_user(apogee_api::UserSelector::Username(name.to_owned())).await?.is_none())
}

/// Rocket.Chat's username slug (limax with `.` between words, then only `[0-9a-z-_.]`): words
/// of letters or digits, lower-cased, joined by dots, digits split from letters.
fn slug(text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut digits = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if !current.is_empty() && digits != c.is_ascii_digit() {
                words.push(std::mem::take(&mut current));
            }
            digits = c.is_ascii_digit();
            current.push(c);
        } else if !current.is_empty() && !c.is_alphanumeric() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words.join(".")
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_like_rocket_chat() {
        assert_eq!(slug("John Smith"), "john.smith");
        assert_eq!(slug("  Ana-Maria  O'Neil "), "ana.maria.o.neil");
        assert_eq!(slug("user42"), "user.42");
        assert_eq!(slug("!!!"), "");
    }
}
