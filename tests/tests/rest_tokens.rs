//! Personal access tokens (`users.generatePersonalAccessToken`, `users.regeneratePersonalAccessToken`,
//! `users.removePersonalAccessToken`, `users.getPersonalAccessTokens`, the DDP
//! `personalAccessTokens:*` methods) and `users.deactivateIdle`.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

/// A client that authenticates with `token` as `user_id`.
fn with_token(client: &Client, token: &str) -> Client {
    client.with_credentials(client.user_id(), token)
}

#[tokio::test]
async fn personal_tokens_are_generated_listed_used_and_removed() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;

    let empty = alice.ok_get("users.getPersonalAccessTokens").await;
    assert_eq!(empty["tokens"], json!([]), "the session token is not listed");

    let made = alice
        .ok_post("users.generatePersonalAccessToken", json!({"tokenName": "ci", "bypassTwoFactor": true}))
        .await;
    let token = made["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "{made}");
    let again = alice.post("users.generatePersonalAccessToken", json!({"tokenName": "ci"})).await;
    assert_error(&again, 400, Some("error-token-already-exists"));
    assert_eq!(again.1["error"], "A token with this name already exists [error-token-already-exists]");
    let nameless = alice.post("users.generatePersonalAccessToken", json!({})).await;
    assert_error(&nameless, 400, None);
    assert_eq!(nameless.1["error"], "The 'tokenName' param is required");

    let listed = alice.ok_get("users.getPersonalAccessTokens").await;
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{listed}");
    assert_eq!(tokens[0]["name"], "ci");
    assert_eq!(tokens[0]["lastTokenPart"], token[token.len() - 6..]);
    assert_eq!(tokens[0]["bypassTwoFactor"], true);
    let created = tokens[0]["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "ISO date: {created}");

    // The token works as X-Auth-Token with its owner's id, and for a DDP resume login.
    let by_token = with_token(&alice, &token);
    assert_eq!(by_token.ok_get("me").await["username"], "alice");
    let bob = server.user("bob").await;
    let (status, _) = bob.with_credentials(bob.user_id(), &token).get("me").await;
    assert_eq!(status, 401, "only with its owner's id");
    let mut ddp = Ddp::connect(&server.url).await;
    let login = ddp.call("login", json!([{"resume": token}])).await;
    assert_eq!(login["result"]["id"], alice.user_id(), "{login}");

    // Another user does not see it; names are per user.
    assert_eq!(bob.ok_get("users.getPersonalAccessTokens").await["tokens"], json!([]));
    bob.ok_post("users.generatePersonalAccessToken", json!({"tokenName": "ci"})).await;

    // Regenerating replaces the token (and, as in Rocket.Chat, drops the bypass flag).
    let renewed = alice.ok_post("users.regeneratePersonalAccessToken", json!({"tokenName": "ci"})).await;
    let new_token = renewed["token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(by_token.get("me").await.0, 401, "the old token stops working");
    assert_eq!(with_token(&alice, &new_token).ok_get("me").await["username"], "alice");
    let listed = alice.ok_get("users.getPersonalAccessTokens").await;
    assert_eq!(listed["tokens"][0]["lastTokenPart"], new_token[new_token.len() - 6..]);
    assert_eq!(listed["tokens"][0]["bypassTwoFactor"], false);
    let unknown = alice.post("users.regeneratePersonalAccessToken", json!({"tokenName": "nope"})).await;
    assert_error(&unknown, 400, Some("error-token-does-not-exists"));

    alice.ok_post("users.removePersonalAccessToken", json!({"tokenName": "ci"})).await;
    assert_eq!(with_token(&alice, &new_token).get("me").await.0, 401);
    assert_eq!(alice.ok_get("users.getPersonalAccessTokens").await["tokens"], json!([]));
    let gone = alice.post("users.removePersonalAccessToken", json!({"tokenName": "ci"})).await;
    assert_error(&gone, 400, Some("error-token-does-not-exists"));
    assert_eq!(gone.1["error"], "Token does not exist [error-token-does-not-exists]");
    assert_eq!(bob.ok_get("users.getPersonalAccessTokens").await["tokens"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn personal_tokens_outlive_a_session_logout_but_not_users_logout() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token =
        alice.ok_post("users.generatePersonalAccessToken", json!({"tokenName": "bot"})).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
    let by_token = with_token(&alice, &token);

    // Logging out a session revokes that session's token only.
    let session = server.anon().login("alice", "pw").await;
    session.ok_post("logout", json!({})).await;
    assert_eq!(by_token.ok_get("me").await["username"], "alice");

    // `users.logout` empties every token of the user, personal ones too (Rocket.Chat's
    // `unsetLoginTokens`).
    alice.ok_post("users.logout", json!({})).await;
    assert_eq!(by_token.get("me").await.0, 401);
}

#[tokio::test]
async fn personal_tokens_need_the_permission() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    alice.ok_post("users.generatePersonalAccessToken", json!({"tokenName": "kept"})).await;
    admin
        .ok_post(
            "permissions.update",
            json!({"permissions": [{"_id": "create-personal-access-tokens", "roles": []}]}),
        )
        .await;
    for client in [&admin, &alice] {
        for (path, body) in [
            ("users.generatePersonalAccessToken", json!({"tokenName": "x"})),
            ("users.regeneratePersonalAccessToken", json!({"tokenName": "kept"})),
            ("users.removePersonalAccessToken", json!({"tokenName": "kept"})),
            ("users.removePersonalAccessToken", json!({"tokenName": "missing"})),
        ] {
            let refused = client.post(path, body).await;
            assert_error(&refused, 400, Some("not-authorized"));
            assert_eq!(refused.1["error"], "Not Authorized [not-authorized]");
        }
        assert_error(&client.get("users.getPersonalAccessTokens").await, 400, Some("not-authorized"));
    }
    // Nothing changed: the token is still there once the permission is back.
    admin
        .ok_post(
            "permissions.update",
            json!({"permissions": [{"_id": "create-personal-access-tokens", "roles": ["admin", "user"]}]}),
        )
        .await;
    let listed = alice.ok_get("users.getPersonalAccessTokens").await;
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["tokens"][0]["name"], "kept");
}

#[tokio::test]
async fn ddp_methods_manage_personal_tokens() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut ddp = Ddp::login(&server.url, alice.token()).await;
    let made = ddp.call("personalAccessTokens:generateToken", json!([{"tokenName": "ddp"}])).await;
    let token = made["result"].as_str().unwrap().to_owned();
    assert_eq!(with_token(&alice, &token).ok_get("me").await["username"], "alice");
    let twice = ddp.call("personalAccessTokens:generateToken", json!([{"tokenName": "ddp"}])).await;
    assert_eq!(twice["error"]["error"], "error-token-already-exists", "{twice}");
    let renewed = ddp.call("personalAccessTokens:regenerateToken", json!([{"tokenName": "ddp"}])).await;
    let renewed = renewed["result"].as_str().unwrap().to_owned();
    let removed = ddp.call("personalAccessTokens:removeToken", json!([{"tokenName": "ddp"}])).await;
    assert!(removed.get("error").is_none(), "{removed}");
    assert_eq!(with_token(&alice, &renewed).get("me").await.0, 401);
    let missing = ddp.call("personalAccessTokens:removeToken", json!([{"tokenName": "ddp"}])).await;
    assert_eq!(missing["error"]["error"], "error-token-does-not-exists", "{missing}");
    let mut anon = Ddp::connect(&server.url).await;
    let refused = anon.call("personalAccessTokens:generateToken", json!([{"tokenName": "x"}])).await;
    assert_eq!(refused["error"]["error"], "error-invalid-user", "{refused}");
}

/// Outside `TEST_MODE` the password is the second factor (no TOTP or e-mail codes are set
/// up), unless the request's own token was made to bypass it.
#[tokio::test]
async fn personal_token_changes_ask_for_the_password_outside_test_mode() {
    // SHA-256 of `s3cret`, as clients send the password as a second factor.
    const DIGEST: &str = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0";
    let server = TestServer::start_with(&[
        ("ADMIN_USERNAME", "root"),
        ("ADMIN_PASS", "s3cret"),
        ("ADMIN_EMAIL", "root@example.com"),
    ])
    .await;
    let root = server.anon().login("root", "s3cret").await;
    // A user is not asked again right after registering; that grace is switched off here.
    root.ok_post("settings/Accounts_TwoFactorAuthentication_RememberFor", json!({"value": 0})).await;

    let asked = root.post("users.generatePersonalAccessToken", json!({"tokenName": "ci"})).await;
    assert_error(&asked, 400, Some("totp-required"));
    assert_eq!(
        asked.1["details"],
        json!({"method": "password", "codeGenerated": false, "availableMethods": []})
    );
    assert_eq!(root.ok_get("users.getPersonalAccessTokens").await["tokens"], json!([]), "nothing made");

    let send = |code: &'static str| {
        root.request(reqwest::Method::POST, "users.generatePersonalAccessToken")
            .header("Content-Type", "application/json")
            .header("X-2fa-Code", code)
            .header("X-2fa-Method", "password")
            .body(json!({"tokenName": "ci", "bypassTwoFactor": true}).to_string())
            .send()
    };
    let wrong = send("0000").await.unwrap();
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<Value>().await.unwrap()["errorType"], "totp-invalid");
    let made = send(DIGEST).await.unwrap();
    assert_eq!(made.status(), 200);
    let token = made.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();

    // Requests made with the bypassing token need no second factor.
    let by_token = with_token(&root, &token);
    by_token.ok_post("users.generatePersonalAccessToken", json!({"tokenName": "second"})).await;
    let second = by_token.ok_get("users.getPersonalAccessTokens").await;
    assert_eq!(second["tokens"][1]["bypassTwoFactor"], false);
    // A token without the flag does not bypass.
    let removed = root.post("users.removePersonalAccessToken", json!({"tokenName": "second"})).await;
    assert_error(&removed, 400, Some("totp-required"));
}

#[tokio::test]
async fn deactivate_idle_deactivates_users_of_a_role_that_never_logged_in_long_enough() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    // A guest who never logged in.
    let guest = admin
        .ok_post(
            "users.create",
            json!({"username": "guesty", "email": "g@example.com", "name": "G", "password": "pw", "roles": ["guest"]}),
        )
        .await;
    let guest_id = guest["user"]["_id"].as_str().unwrap().to_owned();

    let refused = alice.post("users.deactivateIdle", json!({"daysIdle": 0})).await;
    assert_error(&refused, 403, None);
    assert_eq!(refused.1["error"], "unauthorized");
    assert_error(&admin.post("users.deactivateIdle", json!({})).await, 400, Some("invalid-params"));
    let extra = admin.post("users.deactivateIdle", json!({"daysIdle": 0, "x": 1})).await;
    assert_error(&extra, 400, Some("invalid-params"));
    assert_eq!(extra.1["error"], "must NOT have additional properties [invalid-params]");
    let bad = admin.post("users.deactivateIdle", json!({"daysIdle": "soon"})).await;
    assert_error(&bad, 400, Some("invalid-params"));

    let none = admin.ok_post("users.deactivateIdle", json!({"daysIdle": 999_999})).await;
    assert_eq!(none["count"], 0);
    let guests = admin.ok_post("users.deactivateIdle", json!({"daysIdle": 0, "role": "guest"})).await;
    assert_eq!(guests["count"], 1);
    let info = admin.ok_get(&format!("users.info?userId={guest_id}")).await;
    assert_eq!(info["user"]["active"], false);
    assert_eq!(alice.ok_get("me").await["active"], true, "other roles untouched");
    let again = admin.ok_post("users.deactivateIdle", json!({"daysIdle": "0", "role": "guest"})).await;
    assert_eq!(again["count"], 0, "already inactive");

    // The default role is `user`: alice logged in just now, so a day of idleness spares her,
    // and none at all does not.
    let spared = admin.ok_post("users.deactivateIdle", json!({"daysIdle": 1})).await;
    assert_eq!(spared["count"], 0);
    let all = admin.ok_post("users.deactivateIdle", json!({"daysIdle": 0})).await;
    assert!(all["count"].as_u64().unwrap() >= 1, "{all}");
    assert_eq!(alice.get("me").await.0, 401, "an inactive user cannot authenticate");
}

/// `users.logoutOtherClients` ends every other session but keeps personal tokens;
/// `users.removeOtherTokens` removes every other token, personal ones too.
#[tokio::test]
async fn other_sessions_end_on_request() {
    let server = TestServer::start().await;
    let first = server.user("olga").await;
    let second = server.anon().login("olga", "pw").await;
    let third = server.anon().login("olga", "pw").await;
    let made = first.ok_post("users.generatePersonalAccessToken", json!({"tokenName": "bot"})).await;
    let personal = with_token(&first, made["token"].as_str().unwrap());
    for client in [&first, &second, &third, &personal] {
        assert_eq!(client.get("me").await.0, 200);
    }

    let kept = second.ok_post("users.logoutOtherClients", json!({})).await;
    assert_eq!(kept["token"], second.token());
    let expires = kept["tokenExpires"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires > "2026", "an ISO date in the future: {kept}");
    assert_eq!(first.get("me").await.0, 401);
    assert_eq!(third.get("me").await.0, 401);
    assert_eq!(second.get("me").await.0, 200);
    assert_eq!(personal.get("me").await.0, 200, "personal tokens outlive logoutOtherClients");

    let fourth = server.anon().login("olga", "pw").await;
    second.ok_post("users.removeOtherTokens", json!({})).await;
    assert_eq!(fourth.get("me").await.0, 401);
    assert_eq!(personal.get("me").await.0, 401, "removeOtherTokens takes personal tokens too");
    assert_eq!(second.get("me").await.0, 200);
    assert_error(&server.anon().post("users.removeOtherTokens", json!({})).await, 401, None);
}
