//! `users.update`, `users.setActiveStatus`, `users.delete`, `users.deleteOwnAccount`,
//! `users.updateOwnBasicInfo`, `users.checkUsernameAvailability`, `users.autocomplete`,
//! `users.getPreferences` / `users.setPreferences`, `users.logout`.
#![allow(clippy::unwrap_used)]

use apogee_tests::{TestServer, assert_error};
use serde_json::json;

/// SHA-256 hex digests (what clients send as `currentPassword` / `password`), computed by
/// Python's hashlib.
fn sha256_hex(text: &str) -> String {
    match text {
        "pw" => "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4".into(),
        "nope" => "ca3704aa0b06f5954c79ee837faa152d84d6b2d42838f0637a15eda8337dbdce".into(),
        other => panic!("no digest for {other}"),
    }
}

#[tokio::test]
async fn admin_updates_a_user_with_rocket_chat_rules() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    let updated = admin
        .ok_post(
            "users.update",
            json!({"userId": alice.user_id(), "data": {"name": "Alice Liddell", "email": "liddell@example.com",
                   "verified": true, "customFields": {"team": "red"}}}),
        )
        .await;
    assert_eq!(updated["user"]["name"], "Alice Liddell");
    assert_eq!(updated["user"]["emails"][0]["address"], "liddell@example.com");
    assert_eq!(updated["user"]["emails"][0]["verified"], true);

    let taken =
        admin.post("users.update", json!({"userId": alice.user_id(), "data": {"username": "bob"}})).await;
    assert_error(&taken, 400, Some("error-could-not-save-identity"));
    let reserved =
        admin.post("users.update", json!({"userId": alice.user_id(), "data": {"username": "admin"}})).await;
    assert_error(&reserved, 400, Some("error-could-not-save-identity"));
    let long_bio = admin
        .post("users.update", json!({"userId": alice.user_id(), "data": {"bio": "b".repeat(261)}}))
        .await;
    assert_error(&long_bio, 400, Some("error-bio-size-exceeded"));
    let bio = admin
        .ok_post(
            "users.update",
            json!({"userId": alice.user_id(), "data": {"bio": "hello", "nickname": "ally"}}),
        )
        .await;
    assert_eq!((&bio["user"]["bio"], &bio["user"]["nickname"]), (&json!("hello"), &json!("ally")), "{bio}");
    let email_taken = admin
        .post("users.update", json!({"userId": alice.user_id(), "data": {"email": "bob@example.com"}}))
        .await;
    assert_error(&email_taken, 400, Some("error-field-unavailable"));
    let bad_role = admin
        .post("users.update", json!({"userId": alice.user_id(), "data": {"roles": ["no-such-role"]}}))
        .await;
    assert_error(&bad_role, 400, Some("error-action-not-allowed"));
    let bad_name =
        admin.post("users.update", json!({"userId": alice.user_id(), "data": {"name": "<b>"}})).await;
    assert_error(&bad_name, 400, None);
    assert_eq!(bad_name.1["error"], "Name contains invalid characters");
    let missing = admin.post("users.update", json!({"data": {"name": "x"}})).await;
    assert_error(&missing, 400, Some("invalid-params"));

    let other =
        bob.post("users.update", json!({"userId": alice.user_id(), "data": {"name": "Mallory"}})).await;
    assert_error(&other, 400, Some("error-action-not-allowed"));
    assert_eq!(other.1["error"], "Editing user is not allowed [error-action-not-allowed]");
    let self_verify =
        bob.post("users.update", json!({"userId": bob.user_id(), "data": {"verified": true}})).await;
    assert_error(&self_verify, 400, Some("error-action-not-allowed"));
    let self_roles =
        bob.post("users.update", json!({"userId": bob.user_id(), "data": {"roles": ["user", "bot"]}})).await;
    assert_error(&self_roles, 400, Some("error-action-not-allowed"));

    admin.ok_post("users.update", json!({"userId": alice.user_id(), "data": {"password": "newpw"}})).await;
    server.anon().login("alice", "newpw").await;
    admin
        .ok_post(
            "users.update",
            json!({"userId": alice.user_id(), "data": {"username": "alice2", "roles": ["user", "bot"]}}),
        )
        .await;
    let info = admin.ok_get("users.info?username=alice2").await;
    assert_eq!(info["user"]["roles"], json!(["user", "bot"]));
}

#[tokio::test]
async fn deactivated_users_cannot_log_in_and_lose_their_tokens() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;

    let refused =
        dave.post("users.setActiveStatus", json!({"userId": carol.user_id(), "activeStatus": false})).await;
    assert_error(&refused, 403, None);
    let done = admin
        .ok_post("users.setActiveStatus", json!({"userId": carol.user_id(), "activeStatus": false}))
        .await;
    assert_eq!(done["user"], json!({"_id": carol.user_id(), "active": false}));
    let (status, _) = carol.get("me").await;
    assert_eq!(status.as_u16(), 401, "the token stopped working");
    let (status, _) = server.anon().post("login", json!({"user": "carol", "password": "pw"})).await;
    assert_ne!(status.as_u16(), 200);

    admin.ok_post("users.setActiveStatus", json!({"userId": carol.user_id(), "activeStatus": true})).await;
    let (status, _) = carol.get("me").await;
    assert_eq!(status.as_u16(), 401, "old tokens stay revoked after reactivation");
    server.anon().login("carol", "pw").await;

    let bad =
        admin.post("users.setActiveStatus", json!({"userId": carol.user_id(), "activeStatus": "no"})).await;
    assert_error(&bad, 400, Some("invalid-params"));
}

#[tokio::test]
async fn deleting_users_removes_their_subscriptions() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let erin = server.user("erin").await;
    let frank = server.user("frank").await;
    let room = admin.ok_post("channels.create", json!({"name": "deleteme-room", "members": ["erin"]})).await;
    let rid = room["channel"]["_id"].as_str().unwrap().to_owned();
    let before = admin.ok_get(&format!("channels.members?roomId={rid}")).await;
    assert_eq!(before["total"], 2);

    let refused = frank.post("users.delete", json!({"userId": erin.user_id()})).await;
    assert_error(&refused, 403, None);
    admin.ok_post("users.delete", json!({"userId": erin.user_id()})).await;
    let after = admin.ok_get(&format!("channels.members?roomId={rid}")).await;
    assert_eq!(after["total"], 1, "{after}");
    let (status, _) = erin.get("me").await;
    assert_eq!(status.as_u16(), 401);
    let gone = admin.post("users.delete", json!({"userId": erin.user_id()})).await;
    assert_error(&gone, 400, Some("error-invalid-user"));

    let gus = server.user("gus").await;
    let owned = gus.ok_post("channels.create", json!({"name": "gus-room", "members": ["frank"]})).await;
    let owned_rid = owned["channel"]["_id"].as_str().unwrap().to_owned();
    let last_owner = admin.post("users.delete", json!({"userId": gus.user_id()})).await;
    assert_error(&last_owner, 400, Some("user-last-owner"));
    assert_eq!(last_owner.1["error"], "[user-last-owner]");
    admin.ok_post("users.delete", json!({"userId": gus.user_id(), "confirmRelinquish": true})).await;
    let heir = frank.ok_get(&format!("subscriptions.getOne?roomId={owned_rid}")).await;
    assert!(heir["subscription"]["roles"].as_array().unwrap().contains(&json!("owner")), "{heir}");

    let disabled = frank.post("users.deleteOwnAccount", json!({"password": sha256_hex("pw")})).await;
    assert_error(&disabled, 400, Some("error-not-allowed"));
    admin.ok_post("settings/Accounts_AllowDeleteOwnAccount", json!({"value": true})).await;
    let no_password = frank.post("users.deleteOwnAccount", json!({})).await;
    assert_error(&no_password, 400, None);
    let wrong = frank.post("users.deleteOwnAccount", json!({"password": sha256_hex("nope")})).await;
    assert_error(&wrong, 400, Some("error-invalid-password"));
    frank.ok_post("users.deleteOwnAccount", json!({"password": sha256_hex("pw")})).await;
    let (status, _) = server.anon().post("login", json!({"user": "frank", "password": "pw"})).await;
    assert_eq!(status.as_u16(), 401);
}

#[tokio::test]
async fn own_basic_info_needs_the_current_password_for_email_and_password() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let gina = server.user("gina").await;

    let renamed = gina
        .ok_post(
            "users.updateOwnBasicInfo",
            json!({"data": {"name": "Gina G", "username": "gina2", "bio": "hi", "nickname": "gg"}}),
        )
        .await;
    assert_eq!(renamed["user"]["username"], "gina2");
    assert_eq!(renamed["user"]["name"], "Gina G");
    let no_password =
        gina.post("users.updateOwnBasicInfo", json!({"data": {"email": "g@example.com"}})).await;
    assert_error(&no_password, 400, Some("totp-required"));
    let new_pw = gina.post("users.updateOwnBasicInfo", json!({"data": {"newPassword": "pw2"}})).await;
    assert_eq!(new_pw.0.as_u16(), 400);
    let email = gina
        .ok_post(
            "users.updateOwnBasicInfo",
            json!({"data": {"email": "g@example.com", "newPassword": "pw2", "currentPassword": sha256_hex("pw")}}),
        )
        .await;
    assert_eq!(email["user"]["emails"][0], json!({"address": "g@example.com", "verified": false}));
    server.anon().login("gina2", "pw2").await;
    let reserved = gina.post("users.updateOwnBasicInfo", json!({"data": {"username": "all"}})).await;
    assert_error(&reserved, 400, Some("error-could-not-save-identity"));
    assert_eq!(reserved.1["error"], "Could not save user identity [error-could-not-save-identity]");
    let blank = gina.post("users.updateOwnBasicInfo", json!({"data": {"name": "  "}})).await;
    assert_eq!(blank.0.as_u16(), 400);

    admin.ok_post("settings/Accounts_AllowUsernameChange", json!({"value": false})).await;
    let locked = gina.post("users.updateOwnBasicInfo", json!({"data": {"username": "gina3"}})).await;
    assert_error(&locked, 400, Some("error-action-not-allowed"));
    assert_eq!(locked.1["error"], "Edit username is not allowed [error-action-not-allowed]");
}

#[tokio::test]
async fn username_availability_autocomplete_preferences_and_logout() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let hank = server.user("hank").await;
    let ivy = server.user("ivy").await;

    assert_eq!(hank.ok_get("users.checkUsernameAvailability?username=hank").await["result"], true);
    assert_eq!(hank.ok_get("users.checkUsernameAvailability?username=ivy").await["result"], false);
    assert_eq!(hank.ok_get("users.checkUsernameAvailability?username=free-name").await["result"], true);
    let missing = hank.get("users.checkUsernameAvailability").await;
    assert_error(&missing, 400, Some("invalid-params"));

    let found = hank.ok_get("users.autocomplete?selector={\"term\":\"iv\"}").await;
    let names: Vec<&str> =
        found["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["ivy"]);
    let none = hank
        .ok_get("users.autocomplete?selector={\"conditions\":{\"$and\":[{\"active\":false},{\"status\":\"online\"}]}}")
        .await;
    assert_eq!(none["items"], json!([]));
    let forbidden = hank
        .get("users.autocomplete?selector={\"conditions\":{\"$nor\":[{\"username\":{\"$exists\":false}}]}}")
        .await;
    assert_error(&forbidden, 400, None);

    let prefs = hank.ok_get("users.getPreferences").await;
    assert!(prefs["preferences"].as_object().unwrap().len() > 5, "{prefs}");
    let set = hank
        .ok_post("users.setPreferences", json!({"data": {"sidebarShowUnread": true, "language": "pt-BR"}}))
        .await;
    assert_eq!(set["user"]["_id"], hank.user_id());
    assert_eq!(set["user"]["settings"]["preferences"]["sidebarShowUnread"], true);
    assert_eq!(set["user"]["settings"]["preferences"]["language"], "pt-BR");
    let prefs = hank.ok_get("users.getPreferences").await;
    assert_eq!(prefs["preferences"]["sidebarShowUnread"], true);
    let other = hank.post("users.setPreferences", json!({"userId": ivy.user_id(), "data": {"x": 1}})).await;
    assert_error(&other, 400, Some("error-action-not-allowed"));

    let refused = hank.post("users.logout", json!({"userId": ivy.user_id()})).await;
    assert_error(&refused, 403, None);
    let out = admin.ok_post("users.logout", json!({"userId": ivy.user_id()})).await;
    assert_eq!(out["message"], format!("User {} has been logged out!", ivy.user_id()));
    let (status, _) = ivy.get("me").await;
    assert_eq!(status.as_u16(), 401);
    hank.ok_post("users.logout", json!({})).await;
    let (status, _) = hank.get("me").await;
    assert_eq!(status.as_u16(), 401);
}

#[tokio::test]
async fn list_by_status_filters_and_pages() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let jack = server.user("jack").await;
    let kate = server.user("kate").await;
    admin.ok_post("users.setActiveStatus", json!({"userId": kate.user_id(), "activeStatus": false})).await;

    let deactivated = admin.ok_get("users.listByStatus?status=deactivated").await;
    let names: Vec<&str> =
        deactivated["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["kate"]);
    assert_eq!(deactivated["total"], 1);
    assert_eq!(deactivated["users"][0]["active"], false);
    assert!(deactivated["users"][0].get("services").is_none());

    let active = admin.ok_get("users.listByStatus?status=active&searchTerm=jac").await;
    assert_eq!(active["users"][0]["_id"], jack.user_id());
    let paged = admin.ok_get("users.listByStatus?count=1&offset=1").await;
    assert_eq!(paged["count"], 1);
    assert!(paged["total"].as_u64().unwrap() >= 3);
    let logged_in = admin.ok_get("users.listByStatus?hasLoggedIn=true&roles=user").await;
    let names: Vec<&str> =
        logged_in["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"jack"), "{names:?}");

    let bad = admin.get("users.listByStatus?status=sleeping").await;
    assert_error(&bad, 400, Some("invalid-params"));
}

#[tokio::test]
async fn new_passwords_follow_the_password_policy() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let lena = server.user("lena").await;
    admin.ok_post("settings/Accounts_Password_Policy_Enabled", json!({"value": true})).await;
    let current = sha256_hex("pw");

    let short = lena
        .post("users.updateOwnBasicInfo", json!({"data": {"currentPassword": current, "newPassword": "2"}}))
        .await;
    assert_error(&short, 400, Some("error-password-policy-not-met"));
    let reasons: Vec<&str> =
        short.1["details"].as_array().unwrap().iter().map(|r| r["error"].as_str().unwrap()).collect();
    assert!(reasons.contains(&"error-password-policy-not-met-minLength"), "{reasons:?}");
    assert!(reasons.contains(&"error-password-policy-not-met-oneUppercase"), "{reasons:?}");
    let repeats = lena
        .post(
            "users.updateOwnBasicInfo",
            json!({"data": {"currentPassword": current, "newPassword": "Abc@1111x"}}),
        )
        .await;
    assert_eq!(repeats.1["details"][0]["error"], "error-password-policy-not-met-repeatingCharacters");
    lena.ok_post(
        "users.updateOwnBasicInfo",
        json!({"data": {"currentPassword": current, "newPassword": "Abc@12345"}}),
    )
    .await;
    server.anon().login("lena", "Abc@12345").await;
}

#[tokio::test]
async fn name_changes_are_announced_to_logged_in_clients() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut ws = apogee_tests::ddp::Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-notify-logged", json!(["Users:NameChanged", false])).await["msg"], "ready");

    // A bio alone is not a name change; the name then is, by an admin and by the user herself.
    alice.ok_post("users.updateOwnBasicInfo", json!({"data": {"bio": "hi"}})).await;
    admin.ok_post("users.update", json!({"userId": alice.user_id(), "data": {"name": "Alice A."}})).await;
    let event = ws.event("stream-notify-logged", "Users:NameChanged").await;
    assert_eq!(
        event["fields"]["args"][0],
        json!({"_id": alice.user_id(), "name": "Alice A.", "username": "alice"})
    );
    alice.ok_post("users.updateOwnBasicInfo", json!({"data": {"username": "alice2"}})).await;
    let event = ws.event("stream-notify-logged", "Users:NameChanged").await;
    assert_eq!(event["fields"]["args"][0]["username"], "alice2");
    // A refused change announces nothing: the next event is the one after it.
    assert_eq!(
        admin.post("users.update", json!({"userId": alice.user_id(), "data": {"username": "bob"}})).await.0,
        400
    );
    admin.ok_post("users.update", json!({"userId": bob.user_id(), "data": {"name": "Bob B."}})).await;
    let event = ws.event("stream-notify-logged", "Users:NameChanged").await;
    assert_eq!(event["fields"]["args"][0]["name"], "Bob B.");
}
