//! Domain → Rocket.Chat JSON. Absent optional fields are omitted, never `null` (Rocket.Chat's
//! documents simply lack them).

use apogee_types::{Integration, Message, Room, RoomType, Setting, Subscription, User};
use serde_json::{Map, Value, json};

use crate::Dates;

fn put_opt(map: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        map.insert(key.into(), Value::String(v.clone()));
    }
}

fn user_ref(u: &apogee_types::UserRef) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), u.id.clone().into());
    m.insert("username".into(), u.username.clone().into());
    put_opt(&mut m, "name", &u.name);
    Value::Object(m)
}

/// What other users see of a user (`users.info`, `users.list`, member lists). `full` adds the
/// e-mails, as for callers with `view-full-other-user-info`.
pub fn user_public(user: &User, dates: Dates, full: bool) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), user.id.clone().into());
    m.insert("username".into(), user.username.clone().into());
    put_opt(&mut m, "name", &user.name);
    m.insert("type".into(), user.kind.clone().into());
    m.insert("status".into(), user.status.clone().into());
    if !user.status_text.is_empty() {
        m.insert("statusText".into(), user.status_text.clone().into());
    }
    m.insert("active".into(), user.active.into());
    m.insert("roles".into(), json!(user.roles));
    m.insert("utcOffset".into(), json!(user.utc_offset));
    m.insert("createdAt".into(), dates.value(user.created_at));
    m.insert("_updatedAt".into(), dates.value(user.updated_at));
    if let Some(at) = user.last_login {
        m.insert("lastLogin".into(), dates.value(at));
    }
    put_opt(&mut m, "nickname", &user.nickname);
    put_opt(&mut m, "bio", &user.bio);
    put_opt(&mut m, "avatarETag", &user.avatar_etag);
    if !user.custom_fields.is_empty() {
        m.insert("customFields".into(), Value::Object(user.custom_fields.clone()));
    }
    if full {
        m.insert("emails".into(), json!(user.emails));
        if user.require_password_change {
            m.insert("requirePasswordChange".into(), true.into());
        }
    }
    Value::Object(m)
}

/// The caller's own user (`me`, `login`'s `data.me`): `preferences` is the user's preferences
/// over the server defaults; `site_url` makes `avatarUrl` absolute.
pub fn user_me(user: &User, preferences: Map<String, Value>, site_url: &str, dates: Dates) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), user.id.clone().into());
    m.insert("username".into(), user.username.clone().into());
    put_opt(&mut m, "name", &user.name);
    m.insert("emails".into(), json!(user.emails));
    if let Some(email) = user.emails.iter().find(|e| e.verified) {
        m.insert("email".into(), email.address.clone().into());
    }
    m.insert("status".into(), user.status.clone().into());
    m.insert("statusDefault".into(), user.status_default.clone().into());
    m.insert("statusText".into(), user.status_text.clone().into());
    m.insert("statusConnection".into(), if user.status == "offline" { "offline" } else { "online" }.into());
    m.insert("utcOffset".into(), json!(user.utc_offset));
    m.insert("active".into(), user.active.into());
    m.insert("roles".into(), json!(user.roles));
    m.insert("type".into(), user.kind.clone().into());
    m.insert("_updatedAt".into(), dates.value(user.updated_at));
    put_opt(&mut m, "language", &user.language);
    put_opt(&mut m, "nickname", &user.nickname);
    put_opt(&mut m, "bio", &user.bio);
    put_opt(&mut m, "avatarETag", &user.avatar_etag);
    if user.require_password_change {
        m.insert("requirePasswordChange".into(), true.into());
    }
    m.insert("customFields".into(), Value::Object(user.custom_fields.clone()));
    m.insert("settings".into(), json!({ "profile": {}, "preferences": preferences }));
    m.insert(
        "avatarUrl".into(),
        format!("{}/avatar/{}", site_url.trim_end_matches('/'), user.username).into(),
    );
    m.insert("services".into(), json!({ "password": { "exists": user.password_bcrypt.is_some() } }));
    m.insert("isOAuthUser".into(), false.into());
    Value::Object(m)
}

/// A room as Rocket.Chat publishes it (`roomFields`); secrets such as `joinCode` are left out.
pub fn room(room: &Room, dates: Dates) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), room.id.clone().into());
    m.insert("t".into(), room.t.as_str().into());
    put_opt(&mut m, "name", &room.name);
    put_opt(&mut m, "fname", &room.fname);
    put_opt(&mut m, "prid", &room.prid);
    if let Some(u) = &room.u {
        m.insert("u".into(), user_ref(u));
    }
    m.insert("ts".into(), dates.value(room.ts));
    m.insert("_updatedAt".into(), dates.value(room.updated_at));
    m.insert("msgs".into(), room.msgs.into());
    m.insert("usersCount".into(), room.users_count.into());
    if let Some(lm) = room.lm {
        m.insert("lm".into(), dates.value(lm));
    }
    if let Some(last) = &room.last_message {
        m.insert("lastMessage".into(), message(last, dates));
    }
    put_opt(&mut m, "topic", &room.topic);
    put_opt(&mut m, "description", &room.description);
    put_opt(&mut m, "announcement", &room.announcement);
    put_opt(&mut m, "purpose", &room.purpose);
    if let Some(sidepanel) = &room.sidepanel {
        m.insert("sidepanel".into(), sidepanel.clone());
    }
    m.insert("ro".into(), room.ro.into());
    m.insert("sysMes".into(), room.sys_mes.clone().unwrap_or(Value::Bool(true)));
    if room.t != RoomType::Direct {
        m.insert("default".into(), room.default.into());
    }
    if room.archived {
        m.insert("archived".into(), true.into());
    }
    if room.featured {
        m.insert("featured".into(), true.into());
    }
    if room.broadcast {
        m.insert("broadcast".into(), true.into());
    }
    if room.encrypted {
        m.insert("encrypted".into(), true.into());
    }
    if room.join_code.is_some() {
        m.insert("joinCodeRequired".into(), true.into());
    }
    if !room.muted.is_empty() {
        m.insert("muted".into(), json!(room.muted));
    }
    if room.favorite {
        m.insert("favorite".into(), true.into());
    }
    if room.react_when_read_only {
        m.insert("reactWhenReadOnly".into(), true.into());
    }
    if !room.unmuted.is_empty() {
        m.insert("unmuted".into(), json!(room.unmuted));
    }
    put_opt(&mut m, "avatarETag", &room.avatar_etag);
    if room.t == RoomType::Direct {
        m.insert("uids".into(), json!(room.uids));
        m.insert("usernames".into(), json!(room.usernames));
    }
    if room.t != RoomType::Direct || !room.custom_fields.is_empty() {
        m.insert("customFields".into(), Value::Object(room.custom_fields.clone()));
    }
    put_opt(&mut m, "teamId", &room.team_id);
    if room.team_main {
        m.insert("teamMain".into(), true.into());
    }
    if room.team_default {
        m.insert("teamDefault".into(), true.into());
    }
    Value::Object(m)
}

/// A subscription as Rocket.Chat publishes it (`subscriptionFields`), with derived `unread`.
pub fn subscription(sub: &Subscription, dates: Dates) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), sub.id.clone().into());
    m.insert("rid".into(), sub.rid.clone().into());
    m.insert("u".into(), user_ref(&sub.u));
    m.insert("t".into(), sub.t.as_str().into());
    m.insert("name".into(), sub.name.clone().into());
    m.insert("fname".into(), sub.fname.clone().unwrap_or_else(|| sub.name.clone()).into());
    m.insert("ts".into(), dates.value(sub.ts));
    m.insert("_updatedAt".into(), dates.value(sub.updated_at));
    m.insert("open".into(), sub.open.into());
    m.insert("alert".into(), (sub.alert || sub.unread > 0).into());
    m.insert("unread".into(), sub.unread.into());
    m.insert("userMentions".into(), sub.user_mentions.into());
    m.insert("groupMentions".into(), sub.group_mentions.into());
    if let Some(ls) = sub.ls {
        m.insert("ls".into(), dates.value(ls));
    }
    if let Some(lr) = sub.lr {
        m.insert("lr".into(), dates.value(lr));
    }
    if sub.f {
        m.insert("f".into(), true.into());
    }
    if !sub.roles.is_empty() {
        m.insert("roles".into(), json!(sub.roles));
    }
    if sub.archived {
        m.insert("archived".into(), true.into());
    }
    // Absent rather than empty, as Rocket.Chat unsets them once read.
    for (key, ids) in
        [("tunread", &sub.tunread), ("tunreadUser", &sub.tunread_user), ("tunreadGroup", &sub.tunread_group)]
    {
        if !ids.is_empty() {
            m.insert(key.into(), json!(ids));
        }
    }
    if !sub.ignored.is_empty() {
        m.insert("ignored".into(), json!(sub.ignored));
    }
    for (key, value) in &sub.notifications {
        m.insert(key.clone(), value.clone());
    }
    Value::Object(m)
}

/// A message; `extra` fields are merged in as stored.
pub fn message(msg: &Message, dates: Dates) -> Value {
    let mut m = Map::new();
    m.insert("_id".into(), msg.id.clone().into());
    m.insert("rid".into(), msg.rid.clone().into());
    m.insert("msg".into(), msg.msg.clone().into());
    m.insert("ts".into(), dates.value(msg.ts));
    m.insert("u".into(), user_ref(&msg.u));
    m.insert("_updatedAt".into(), dates.value(msg.updated_at));
    put_opt(&mut m, "t", &msg.t);
    m.insert("mentions".into(), json!(msg.mentions));
    m.insert("channels".into(), json!(msg.channels));
    put_opt(&mut m, "tmid", &msg.tmid);
    if msg.tshow {
        m.insert("tshow".into(), true.into());
    }
    if let Some(groupable) = msg.groupable {
        m.insert("groupable".into(), groupable.into());
    }
    if let Some(at) = msg.edited_at {
        m.insert("editedAt".into(), dates.value(at));
    }
    if let Some(by) = &msg.edited_by {
        m.insert("editedBy".into(), json!({ "_id": by.id, "username": by.username }));
    }
    if !msg.reactions.is_empty() {
        m.insert("reactions".into(), Value::Object(msg.reactions.clone()));
    }
    for (k, v) in &msg.extra {
        m.entry(k.clone()).or_insert_with(|| with_dates(v, dates));
    }
    Value::Object(m)
}

/// Free-form fields keep dates as EJSON `{"$date": ms}`; REST shows them as ISO strings.
fn with_dates(value: &Value, dates: Dates) -> Value {
    match value {
        Value::Object(o) if o.len() == 1 && o.get("$date").is_some_and(Value::is_i64) => {
            dates.value(apogee_types::Millis(o["$date"].as_i64().unwrap_or_default()))
        }
        Value::Object(o) if !matches!(dates, Dates::Ejson) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), with_dates(v, dates))).collect())
        }
        Value::Array(a) if !matches!(dates, Dates::Ejson) => {
            Value::Array(a.iter().map(|v| with_dates(v, dates)).collect())
        }
        other => other.clone(),
    }
}

/// An integration as `integrations.*` return it: the stored record with its dates rendered.
pub fn integration(integration: &Integration, dates: Dates) -> Value {
    let mut v = serde_json::to_value(integration).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("_createdAt".into(), dates.value(integration.created_at));
        m.insert("_updatedAt".into(), dates.value(integration.updated_at));
    }
    v
}

/// `{_id, value}` as `settings.public` lists them.
pub fn setting_public(setting: &Setting) -> Value {
    json!({ "_id": setting.id, "value": setting.value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use apogee_types::{Millis, UserRef};

    #[test]
    fn message_shape() {
        let msg = Message {
            id: "m1".into(),
            rid: "GENERAL".into(),
            msg: "hi".into(),
            ts: Millis(0),
            u: UserRef { id: "u1".into(), username: "alice".into(), name: None },
            updated_at: Millis(0),
            t: None,
            mentions: vec![],
            channels: vec![],
            tmid: None,
            tshow: false,
            groupable: None,
            seq: 3,
            edited_at: None,
            edited_by: None,
            reactions: Default::default(),
            extra: [("alias".to_owned(), json!("CI"))].into_iter().collect(),
        };
        assert_eq!(
            message(&msg, Dates::Iso),
            json!({"_id": "m1", "rid": "GENERAL", "msg": "hi", "ts": "1970-01-01T00:00:00.000Z",
                   "u": {"_id": "u1", "username": "alice"}, "_updatedAt": "1970-01-01T00:00:00.000Z",
                   "mentions": [], "channels": [], "alias": "CI"})
        );
        assert_eq!(message(&msg, Dates::Ejson)["ts"], json!({"$date": 0}));
    }
}
