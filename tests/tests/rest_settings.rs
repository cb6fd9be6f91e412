//! Public settings, admin settings, permissions and roles, and users.
#![allow(clippy::unwrap_used)]

use apogee_tests::{TestServer, assert_error};
use serde_json::json;

#[tokio::test]
async fn public_settings_page_with_exact_totals() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let some = anon.ok_get("settings.public?_id=Site_Name,Message_MaxAllowedSize,E2E_Enable").await;
    assert_eq!(some["total"], 3);
    let values: Vec<_> = some["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["_id"].as_str().unwrap(), s["value"].clone()))
        .collect();
    assert!(values.contains(&("Message_MaxAllowedSize", json!(5000))), "{values:?}");
    let legacy = anon.ok_get("settings.public?query={\"_id\":{\"$in\":[\"Site_Name\"]}}").await;
    assert_eq!(legacy["total"], 1);
    let first = anon.ok_get("settings.public?count=10").await;
    let total = first["total"].as_u64().unwrap();
    assert!(total > 100);
    let mut seen = 0;
    let mut offset = 0;
    loop {
        let page = anon.ok_get(&format!("settings.public?offset={offset}&count=100")).await;
        let n = page["settings"].as_array().unwrap().len();
        seen += n;
        offset += n;
        if n < 100 {
            break;
        }
    }
    assert_eq!(seen as u64, total, "paging reaches total exactly");
    let private = anon.ok_get("settings.public?_id=SMTP_Host").await;
    assert_eq!(private["total"], 0, "private settings are not public");
    assert_eq!(anon.ok_get("settings.oauth").await["services"], json!([]));
}

#[tokio::test]
async fn admins_read_and_write_settings() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    assert_eq!(admin.ok_get("settings/Message_MaxAllowedSize").await["value"], 5000);
    admin.ok_post("settings/Message_MaxAllowedSize", json!({"value": 10})).await;
    assert_eq!(admin.ok_get("settings/Message_MaxAllowedSize").await["value"], 10);
    let too_long =
        alice.post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "eleven char"}})).await;
    assert_error(&too_long, 400, Some("error-message-size-exceeded"));
    assert_error(
        &admin.post("settings/Message_MaxAllowedSize", json!({"value": "ten"})).await,
        400,
        Some("error-invalid-setting-value"),
    );
    assert_error(
        &admin.post("settings/No_Such_Setting", json!({"value": 1})).await,
        400,
        Some("error-setting-not-found"),
    );
    assert_error(&admin.post("settings/Site_Name", json!({})).await, 400, Some("invalid-params"));
    assert_eq!(alice.post("settings/Site_Name", json!({"value": "mine"})).await.0, 403);
    assert_eq!(alice.get("settings/Site_Name").await.0, 403);
    assert_eq!(
        admin.ok_get("settings/Message_MaxAllowedSize").await["value"],
        10,
        "refused writes changed nothing"
    );
}

#[tokio::test]
async fn settings_overrides_apply_at_start() {
    let server = TestServer::start_with(&[
        ("TEST_MODE", "true"),
        ("OVERWRITE_SETTING_Site_Name", "Acme Chat"),
        ("OVERWRITE_SETTING_Threads_enabled", "false"),
    ])
    .await;
    let public = server.anon().ok_get("settings.public?_id=Site_Name,Threads_enabled").await;
    let settings = public["settings"].as_array().unwrap();
    assert!(settings.contains(&json!({"_id": "Site_Name", "value": "Acme Chat"})), "{public}");
    assert!(settings.contains(&json!({"_id": "Threads_enabled", "value": false})), "{public}");
}

#[tokio::test]
async fn permissions_are_rocket_chats_table_and_editable() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let all = alice.ok_get("permissions.listAll").await;
    let create_c = all["update"].as_array().unwrap().iter().find(|p| p["_id"] == "create-c").unwrap().clone();
    assert_eq!(create_c["roles"], json!(["admin", "user", "bot", "app"]));
    assert!(create_c["_updatedAt"].is_string());
    let updated = admin
        .ok_post("permissions.update", json!({"permissions": [{"_id": "create-c", "roles": ["admin"]}]}))
        .await;
    assert!(
        updated["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["_id"] == "create-c" && p["roles"] == json!(["admin"]))
    );
    assert_eq!(alice.post("channels.create", json!({"name": "nope"})).await.0, 403, "takes effect at once");
    assert_error(
        &admin.post("permissions.update", json!({"permissions": [{"_id": "no-such", "roles": []}]})).await,
        400,
        Some("error-invalid-permission"),
    );
    assert_error(
        &admin
            .post("permissions.update", json!({"permissions": [{"_id": "create-c", "roles": ["king"]}]}))
            .await,
        400,
        Some("error-invalid-role"),
    );
    assert_error(
        &admin.post("permissions.update", json!({"permissions": "x"})).await,
        400,
        Some("error-invalid-body-params"),
    );
    assert_error(
        &alice
            .post("permissions.update", json!({"permissions": [{"_id": "create-c", "roles": ["user"]}]}))
            .await,
        400,
        Some("error-edit-permissions-not-allowed"),
    );
    let roles = alice.ok_get("roles.list").await;
    let names: Vec<&str> =
        roles["roles"].as_array().unwrap().iter().map(|r| r["_id"].as_str().unwrap()).collect();
    for role in ["admin", "user", "bot", "guest", "owner", "moderator", "leader", "anonymous", "app"] {
        assert!(names.contains(&role), "{role}");
    }
}

#[tokio::test]
async fn users_create_register_info_list() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .ok_post("users.create", json!({"username": "carol", "email": "carol@example.com", "name": "Carol", "password": "pw", "roles": ["user"], "joinDefaultChannels": false}))
        .await;
    let user = &created["user"];
    assert_eq!(
        (user["username"].as_str(), user["emails"][0]["address"].as_str(), user["type"].as_str()),
        (Some("carol"), Some("carol@example.com"), Some("user"))
    );
    assert!(user.get("password_bcrypt").is_none() && user.get("services").is_none(), "{user}");
    let carol = server.anon().login("carol", "pw").await;
    assert_eq!(carol.ok_get("rooms.get").await["update"], json!([]), "joinDefaultChannels: false");

    assert_error(
        &admin
            .post(
                "users.create",
                json!({"username": "carol", "email": "c2@example.com", "name": "C", "password": "pw"}),
            )
            .await,
        400,
        Some("error-field-unavailable"),
    );
    assert_error(
        &admin
            .post(
                "users.create",
                json!({"username": "dave", "email": "carol@example.com", "name": "D", "password": "pw"}),
            )
            .await,
        400,
        Some("error-field-unavailable"),
    );
    assert_error(
        &admin
            .post(
                "users.create",
                json!({"username": "bad name", "email": "e@example.com", "name": "E", "password": "pw"}),
            )
            .await,
        400,
        Some("error-input-is-not-a-valid-field"),
    );
    assert_error(
        &admin
            .post("users.create", json!({"username": "erin", "email": "nope", "name": "E", "password": "pw"}))
            .await,
        400,
        Some("error-invalid-email"),
    );
    assert_error(
        &admin.post("users.create", json!({"username": "erin", "email": "e@example.com", "name": "E"})).await,
        400,
        Some("invalid-params"),
    );
    assert_error(&admin.post("users.create", json!({"username": "erin", "email": "e@example.com", "name": "E", "password": "pw", "roles": ["king"]})).await, 400, Some("error-action-not-allowed"));
    assert_eq!(
        carol
            .post(
                "users.create",
                json!({"username": "x", "email": "x@example.com", "name": "X", "password": "pw"})
            )
            .await
            .0,
        403
    );

    let registered = server
        .anon()
        .ok_post(
            "users.register",
            json!({"username": "frank", "email": "frank@example.com", "pass": "pw", "name": "Frank"}),
        )
        .await;
    assert_eq!(registered["user"]["roles"], json!(["user"]));
    let frank = server.anon().login("frank", "pw").await;
    assert_eq!(frank.ok_get("rooms.get").await["update"][0]["_id"], "GENERAL");

    let info = frank.ok_get("users.info?username=carol").await;
    assert_eq!(info["user"]["username"], "carol");
    assert!(info["user"].get("emails").is_none(), "others' e-mails need view-full-other-user-info");
    let info = admin.ok_get(&format!("users.info?userId={}", carol.user_id())).await;
    assert_eq!(info["user"]["emails"][0]["address"], "carol@example.com");
    assert_error(&frank.get("users.info?username=ghost").await, 400, Some("error-invalid-user"));
    assert_error(&frank.get("users.info").await, 400, Some("error-user-param-not-provided"));

    let own = frank.ok_get("users.info?username=frank&includeUserRooms=true").await;
    assert_eq!(own["user"]["rooms"][0]["rid"], "GENERAL");
    let other = frank.ok_get("users.info?username=carol&includeUserRooms=true").await;
    assert!(other["user"].get("rooms").is_none(), "needs view-other-user-channels");
    let list = admin.ok_get("users.list?count=2").await;
    assert_eq!(
        (list["count"].as_u64(), list["total"].as_u64()),
        (Some(2), Some(4)),
        "admin, rocket.cat, carol, frank"
    );
}
