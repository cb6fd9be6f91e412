//! `/api/info`, login in every body form, tokens, logout, `me`, and the errors around them.
#![allow(clippy::unwrap_used)]

use apogee_tests::{ADMIN, TestServer, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn info_hides_build_details_from_anonymous_callers() {
    let server = TestServer::start().await;
    let anon = server.anon().ok_get("/api/info").await;
    assert!(anon.get("info").is_none(), "{anon}");
    let short = anon["version"].as_str().unwrap();
    assert_eq!(short.split('.').count(), 2, "major.minor only: {short}");
    assert!(anon["apogeeVersion"].is_string());
    let admin = server.admin().await.ok_get("/api/info").await;
    let full = admin["info"]["version"].as_str().unwrap();
    assert!(full.starts_with(short) && full.split('.').count() == 3, "{admin}");
    assert!(admin["info"]["build"].is_object() && admin["info"]["commit"].is_object());
    // A user without view-statistics sees what anonymous callers see.
    let alice = server.user("alice").await.ok_get("/api/info").await;
    assert!(alice.get("info").is_none());
}

#[tokio::test]
async fn login_accepts_every_body_form() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let email = format!("{ADMIN}@rocket.chat");
    let digest = apogee_auth_digest(ADMIN);
    let forms = [
        json!({"user": ADMIN, "password": ADMIN}),
        json!({"user": email, "password": ADMIN}),
        json!({"username": ADMIN, "password": ADMIN}),
        json!({"email": email, "password": ADMIN}),
        json!({"user": {"username": ADMIN}, "password": ADMIN}),
        json!({"user": {"email": email}, "password": ADMIN}),
        json!({"user": ADMIN, "password": {"digest": digest, "algorithm": "sha-256"}}),
    ];
    for form in forms {
        let (status, body) = anon.post("login", form.clone()).await;
        assert_eq!(status, 200, "{form}: {body}");
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["userId"], ADMIN);
        assert_eq!(body["data"]["authToken"].as_str().unwrap().len(), 43);
        let me = &body["data"]["me"];
        assert_eq!(me["username"], ADMIN);
        assert_eq!(me["services"], json!({"password": {"exists": true}}), "never the hash");
        assert!(me["settings"]["preferences"].is_object());
    }
}

/// The SHA-256 hex digest clients send instead of the password.
fn apogee_auth_digest(password: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for b in sha256(password.as_bytes()) {
        write!(out, "{b:02x}").unwrap();
    }
    out
}

/// A small SHA-256 so the test does not trust the server's own implementation.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([chunk[4 * i], chunk[4 * i + 1], chunk[4 * i + 2], chunk[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for i in 0..8 {
            h[i] = h[i].wrapping_add(v[i]);
        }
    }
    let mut out = [0u8; 32];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[test]
fn sha256_known_answer() {
    assert_eq!(apogee_auth_digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[tokio::test]
async fn failed_logins_answer_401_with_rocket_chat_bodies() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let (status, body) = anon.post("login", json!({"user": ADMIN, "password": "wrong"})).await;
    assert_eq!(status, 401);
    assert_eq!((body["status"].clone(), body["error"].clone()), (json!("error"), json!(403)));
    assert_eq!(body["message"], "Incorrect password");
    let (status, body) = anon.post("login", json!({"user": "nobody", "password": "x"})).await;
    assert_eq!((status.as_u16(), body["error"].clone()), (401, json!("Unauthorized")));
    let (status, body) = anon.post("login", json!({"resume": "not-a-token"})).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "You've been logged out by the server. Please log in again.");
    let (status, _) = anon.post("login", json!({"user": ADMIN})).await;
    assert_eq!(status, 401, "a body without a password is refused");
    let (status, body) =
        anon.post("login", json!({"user": ADMIN, "password": {"digest": "x", "algorithm": "md5"}})).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = anon.post_raw("login", "{not json").await;
    assert_error(&(status, body), 400, Some("error-invalid-json"));
}

#[tokio::test]
async fn repeated_failures_lock_the_user_out() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let anon = server.anon();
    for _ in 0..10 {
        let (status, _) = anon.post("login", json!({"user": "alice", "password": "nope"})).await;
        assert_eq!(status, 401);
    }
    let (status, body) = anon.post("login", json!({"user": "alice", "password": "pw"})).await;
    assert_eq!(
        (status.as_u16(), body["error"].clone()),
        (401, json!("error-login-blocked-for-user")),
        "{body}"
    );
    // Tokens already issued keep working.
    alice.ok_get("me").await;
}

#[tokio::test]
async fn resume_logout_and_revoked_tokens() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (status, body) = server.anon().post("login", json!({"resume": alice.token()})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["authToken"], alice.token());
    let me = alice.ok_get("me").await;
    assert_eq!((me["_id"].as_str(), me["username"].as_str()), (Some(alice.user_id()), Some("alice")));
    assert_eq!(me["emails"][0]["address"], "alice@example.com");
    assert_eq!(me["email"], "alice@example.com", "first verified address");
    let body = alice.ok_post("logout", json!({})).await;
    assert_eq!(body["data"]["message"], "You've been logged out!");
    let (status, body) = alice.get("me").await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"success": false, "status": "error", "message": "You must be logged in to do this.", "error": "You must be logged in to do this."})
    );
    let (status, _) = server.anon().post("login", json!({"resume": alice.token()})).await;
    assert_eq!(status, 401, "a revoked token cannot resume");
}

#[tokio::test]
async fn authenticated_routes_refuse_missing_or_forged_credentials() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (status, _) = server.anon().get("me").await;
    assert_eq!(status, 401);
    let mut forged = admin.clone();
    forged.auth = Some(("rocket.cat".into(), admin.token().to_owned()));
    let (status, _) = forged.get("me").await;
    assert_eq!(status, 401, "a token only works for its own user");
    let (status, body) = server.anon().get("no.such.endpoint").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = server.anon().get("login").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn env_admin_is_created_once_on_an_empty_store() {
    let server = TestServer::start_with(&[
        ("ADMIN_USERNAME", "root"),
        ("ADMIN_PASS", "s3cret"),
        ("ADMIN_EMAIL", "root@example.com"),
    ])
    .await;
    let root = server.anon().login("root", "s3cret").await;
    let me = root.ok_get("me").await;
    assert!(me["roles"].as_array().unwrap().contains(&Value::from("admin")));
    let general = root.ok_get("channels.info?roomName=general").await;
    assert_eq!(general["channel"]["_id"], "GENERAL");
    let (status, _) = server.anon().post("login", json!({"user": ADMIN, "password": ADMIN})).await;
    assert_eq!(status, 401, "no test admin outside TEST_MODE");
}

#[tokio::test]
async fn logins_are_rate_limited_per_address_outside_test_mode() {
    let server = TestServer::start_with(&[]).await;
    let anon = server.anon();
    for _ in 0..60 {
        let (status, _) = anon.post("login", json!({"user": "nobody", "password": "x"})).await;
        assert_eq!(status, 401);
    }
    let (status, body) = anon.post("login", json!({"user": "nobody", "password": "x"})).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("[error-too-many-requests]"), "{body}");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let huge = "x".repeat(2 << 20);
    let (status, body) =
        admin.post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": huge}})).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["success"], false);
}
