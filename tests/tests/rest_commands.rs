//! Slash commands: `commands.get`, `commands.list`, `commands.run` and DDP `slashCommand`, with
//! the ephemeral replies on `stream-notify-user` `<uid>/message`.
#![allow(clippy::unwrap_used)]

use apogee_tests::ddp::Ddp;
use apogee_tests::{TestServer, assert_error};
use serde_json::{Value, json};

/// Opens a DDP session for `token` that listens to the user's `message` stream.
async fn listen(server: &TestServer, uid: &str, token: &str) -> Ddp {
    let mut ddp = Ddp::login(&server.url, token).await;
    let ready = ddp.sub("stream-notify-user", json!([format!("{uid}/message"), false])).await;
    assert_eq!(ready["msg"], "ready", "{ready}");
    ddp
}

/// The next ephemeral message of the user listening on `ddp`.
async fn ephemeral(ddp: &mut Ddp) -> Value {
    let frame = ddp
        .recv_where(|f| {
            f["msg"] == "changed"
                && f["collection"] == "stream-notify-user"
                && f["fields"]["eventName"].as_str().is_some_and(|e| e.ends_with("/message"))
        })
        .await;
    frame["fields"]["args"][0].clone()
}

#[tokio::test]
async fn commands_are_listed_and_described() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (status, _) = server.anon().get("commands.list").await;
    assert_eq!(status, 401);

    let all = alice.ok_get("commands.list").await;
    let names: Vec<&str> =
        all["commands"].as_array().unwrap().iter().map(|c| c["command"].as_str().unwrap()).collect();
    for expected in [
        "join",
        "leave",
        "part",
        "invite",
        "kick",
        "topic",
        "me",
        "mute",
        "unmute",
        "archive",
        "unarchive",
        "create",
        "msg",
        "status",
        "shrug",
        "gimme",
        "tableflip",
        "unflip",
        "lennyface",
        "help",
        "hide",
        "invite-all-to",
        "invite-all-from",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(all["total"], names.len());
    assert_eq!(all["count"], names.len());
    assert_eq!(all["offset"], 0);
    let paged = alice.ok_get("commands.list?count=5&offset=2").await;
    assert_eq!(paged["commands"].as_array().unwrap().len(), 5);
    assert_eq!(paged["commands"][0]["command"], names[2]);
    assert_eq!(paged["total"], names.len(), "{paged}");
    let one = alice.ok_get("commands.list?query={\"command\":\"kick\"}").await;
    assert_eq!((one["total"].as_u64(), &one["commands"][0]["command"]), (Some(1), &json!("kick")));
    let sorted = alice.ok_get("commands.list?sort={\"command\":1}&count=1").await;
    assert_eq!(sorted["commands"][0]["command"], "archive");

    let kick = alice.ok_get("commands.get?command=KICK").await;
    assert_eq!(
        kick["command"],
        json!({"command": "kick", "params": "@username", "description": "Remove_someone_from_room",
               "permission": "remove-user", "clientOnly": false, "providesPreview": false})
    );
    let missing = alice.get("commands.get").await;
    assert_error(&missing, 400, None);
    assert_eq!(missing.1["error"], "The query param \"command\" must be provided.");
    let unknown = alice.get("commands.get?command=nope").await;
    assert_eq!(unknown.1["error"], "There is no command in the system by the name of: nope");
}

#[tokio::test]
async fn run_validates_its_parameters_and_the_room() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let cases = [
        (json!({}), "You must provide a command to run."),
        (json!({"command": "me", "params": true}), "The parameters for the command must be a single string."),
        (
            json!({"command": "me", "params": "x"}),
            "The room's id where to execute this command must be provided and be a string.",
        ),
        (
            json!({"command": "me", "roomId": "GENERAL", "tmid": 5}),
            "The tmid parameter when provided must be a string.",
        ),
        (
            json!({"command": "nope", "roomId": "GENERAL"}),
            "The command provided does not exist (or is disabled).",
        ),
        (json!({"command": "tableflip", "roomId": "GENERAL", "tmid": "nope"}), "Invalid thread."),
    ];
    for (body, error) in cases {
        let refused = alice.post("commands.run", body.clone()).await;
        assert_error(&refused, 400, None);
        assert_eq!(refused.1["error"], error, "{body}");
    }
    let group = admin.ok_post("groups.create", json!({"name": "secret"})).await;
    let gid = group["group"]["_id"].as_str().unwrap();
    let hidden = alice.post("commands.run", json!({"command": "me", "params": "hi", "roomId": gid})).await;
    assert_error(&hidden, 403, None);
    assert_eq!(hidden.1["error"], "unauthorized");
    let other = admin.ok_post("channels.create", json!({"name": "elsewhere"})).await;
    let root = admin
        .ok_post("chat.sendMessage", json!({"message": {"rid": other["channel"]["_id"], "msg": "root"}}))
        .await;
    let wrong_room = alice
        .post(
            "commands.run",
            json!({"command": "tableflip", "roomId": "GENERAL", "tmid": root["message"]["_id"]}),
        )
        .await;
    assert_eq!(wrong_room.1["error"], "Invalid thread.");
}

#[tokio::test]
async fn message_commands_post_as_the_caller() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut room = Ddp::login(&server.url, alice.token()).await;
    room.sub("stream-room-messages", json!(["GENERAL", false])).await;

    let ran = alice
        .ok_post("commands.run", json!({"command": "shrug", "params": "well", "roomId": "GENERAL"}))
        .await;
    assert!(ran.get("result").is_none(), "{ran}");
    let frame = room.event("stream-room-messages", "GENERAL").await;
    assert_eq!(frame["fields"]["args"][0]["msg"], "well ¯\\\\_(ツ)_/¯");
    assert_eq!(frame["fields"]["args"][0]["u"]["username"], "alice");
    alice.ok_post("commands.run", json!({"command": "me", "params": "waves", "roomId": "GENERAL"})).await;
    assert_eq!(room.event("stream-room-messages", "GENERAL").await["fields"]["args"][0]["msg"], "_waves_");

    // In a thread, the post is a reply.
    let root = alice.ok_post("chat.sendMessage", json!({"message": {"rid": "GENERAL", "msg": "root"}})).await;
    let tmid = root["message"]["_id"].as_str().unwrap();
    alice.ok_post("commands.run", json!({"command": "tableflip", "roomId": "GENERAL", "tmid": tmid})).await;
    let replies = alice.ok_get(&format!("chat.getThreadMessages?tmid={tmid}")).await;
    assert_eq!(replies["messages"][0]["msg"], " (╯°□°）╯︵ ┻━┻", "{replies}");

    // /msg opens the direct conversation and posts there.
    server.user("bob").await;
    alice
        .ok_post("commands.run", json!({"command": "msg", "params": "@bob hello there", "roomId": "GENERAL"}))
        .await;
    let dms = alice.ok_get("im.list").await;
    assert_eq!(dms["ims"][0]["lastMessage"]["msg"], "hello there", "{dms}");
}

#[tokio::test]
async fn room_commands_use_the_room_operations_and_reply_ephemerally() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let created = alice.ok_post("channels.create", json!({"name": "town"})).await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_owned();
    let mut mine = listen(&server, alice.user_id(), alice.token()).await;
    let run = |body: Value| {
        let alice = alice.clone();
        async move { alice.ok_post("commands.run", body).await }
    };

    // /invite: adds, and says who is already in.
    run(json!({"command": "invite", "params": "@bob", "roomId": rid})).await;
    assert!(
        alice.ok_get(&format!("channels.members?roomId={rid}")).await["members"]
            .to_string()
            .contains("\"bob\"")
    );
    run(json!({"command": "invite", "params": "@bob", "roomId": rid})).await;
    let reply = ephemeral(&mut mine).await;
    assert_eq!(reply["msg"], "`@bob` is already in here.");
    assert_eq!(
        (&reply["rid"], &reply["u"]["username"], &reply["private"]),
        (&json!(rid), &json!("rocket.cat"), &json!(true))
    );
    run(json!({"command": "invite", "params": "@ghost", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "No user exists by the name of `@ghost`.");

    // /topic, /mute, /unmute, /kick run the room's own operations.
    run(json!({"command": "topic", "params": "Hello town", "roomId": rid})).await;
    assert_eq!(alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["topic"], "Hello town");
    run(json!({"command": "mute", "params": "@bob", "roomId": rid})).await;
    assert_eq!(
        alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["muted"],
        json!(["bob"])
    );
    run(json!({"command": "unmute", "params": "bob", "roomId": rid})).await;
    let muted = alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["muted"].clone();
    assert!(muted.as_array().is_none_or(Vec::is_empty), "{muted}");
    run(json!({"command": "unmute", "params": "@ghost", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "The username `ghost` doesn't exist.");
    let not_owner =
        bob.post("commands.run", json!({"command": "kick", "params": "@alice", "roomId": rid})).await;
    assert_error(&not_owner, 400, Some("error-not-allowed"));
    run(json!({"command": "kick", "params": "@bob", "roomId": rid})).await;
    assert!(
        !alice.ok_get(&format!("channels.members?roomId={rid}")).await["members"]
            .to_string()
            .contains("\"bob\"")
    );
    // Without `edit-room`, /topic changes nothing and says nothing.
    bob.ok_post("channels.join", json!({"roomId": rid})).await;
    bob.ok_post("commands.run", json!({"command": "topic", "params": "mine", "roomId": rid})).await;
    assert_eq!(alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["topic"], "Hello town");

    // /join and /leave.
    let joined =
        bob.post("commands.run", json!({"command": "join", "params": "#town", "roomId": "GENERAL"})).await;
    assert_error(&joined, 400, Some("error-user-already-in-room"));
    bob.ok_post("commands.run", json!({"command": "leave", "roomId": rid})).await;
    assert!(bob.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].is_null());
    bob.ok_post("commands.run", json!({"command": "join", "params": "#town", "roomId": "GENERAL"})).await;
    assert!(!bob.ok_get(&format!("subscriptions.getOne?roomId={rid}")).await["subscription"].is_null());
    run(json!({"command": "join", "params": "#nowhere", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "The channel `#nowhere` does not exist.");
    // The last owner may not leave: told, not failed.
    run(json!({"command": "part", "roomId": rid})).await;
    assert_eq!(
        ephemeral(&mut mine).await["msg"],
        "You are the last owner. Please set new owner before leaving the room."
    );

    // /archive needs `archive-room`; the owner has it in her room.
    let refused = bob.post("commands.run", json!({"command": "archive", "roomId": rid})).await;
    assert_error(&refused, 400, Some("error-not-authorized"));
    run(json!({"command": "archive", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "Channel with name `#town` has been archived successfully");
    assert_eq!(alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["archived"], true);
    run(json!({"command": "archive", "params": "#town", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "An archived Channel with name `#town` exists");
    // `unarchive-room` is the admins' alone.
    let owner_only =
        alice.post("commands.run", json!({"command": "unarchive", "params": "town", "roomId": rid})).await;
    assert_error(&owner_only, 400, Some("error-not-authorized"));
    admin.ok_post("commands.run", json!({"command": "unarchive", "params": "town", "roomId": rid})).await;
    assert_ne!(alice.ok_get(&format!("channels.info?roomId={rid}")).await["channel"]["archived"], true);

    // /create makes a channel, or a private group with --private.
    run(json!({"command": "create", "params": "#plaza", "roomId": rid})).await;
    assert_eq!(alice.ok_get("channels.info?roomName=plaza").await["channel"]["t"], "c");
    run(json!({"command": "create", "params": "hideout --private", "roomId": rid})).await;
    assert_eq!(alice.ok_get("groups.info?roomName=hideout").await["group"]["t"], "p");
    run(json!({"command": "create", "params": "#plaza", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "The channel `#plaza` already exists.");

    // /status sets the status text.
    run(json!({"command": "status", "params": "lunch", "roomId": rid})).await;
    assert_eq!(ephemeral(&mut mine).await["msg"], "Status message changed successfully.");
    assert_eq!(
        admin.ok_get(&format!("users.info?userId={}", alice.user_id())).await["user"]["statusText"],
        "lunch"
    );

    // /help lists the shortcuts.
    run(json!({"command": "help", "roomId": rid})).await;
    let help = ephemeral(&mut mine).await;
    assert!(
        help["msg"]
            .as_str()
            .unwrap()
            .starts_with("\n`Command (or Ctrl) + p OR Command (or Ctrl) + k` - Open Channel / User search"),
        "{help}"
    );
}

#[tokio::test]
async fn invite_all_from_respects_access() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let group = alice.ok_post("groups.create", json!({"name": "club"})).await;
    let gid = group["group"]["_id"].as_str().unwrap().to_owned();
    let hall = bob.ok_post("channels.create", json!({"name": "hall"})).await;
    let hall_id = hall["channel"]["_id"].as_str().unwrap().to_owned();
    let mut bobs = listen(&server, bob.user_id(), bob.token()).await;

    bob.ok_post("commands.run", json!({"command": "invite-all-from", "params": "#club", "roomId": hall_id}))
        .await;
    assert_eq!(
        ephemeral(&mut bobs).await["msg"],
        "The room does not exist or you may not have access permission"
    );
    let members = bob.ok_get(&format!("channels.members?roomId={hall_id}")).await;
    assert!(!members.to_string().contains("\"alice\""), "{members}");

    alice.ok_post("groups.invite", json!({"roomId": gid, "userId": bob.user_id()})).await;
    bob.ok_post("commands.run", json!({"command": "invite-all-from", "params": "#club", "roomId": hall_id}))
        .await;
    assert_eq!(ephemeral(&mut bobs).await["msg"], "The users have been added");
    let members = bob.ok_get(&format!("channels.members?roomId={hall_id}")).await;
    assert!(members.to_string().contains("\"alice\""), "{members}");

    // invite-all-to a room that does not exist creates it, of the current room's type.
    bob.ok_post("commands.run", json!({"command": "invite-all-to", "params": "#annex", "roomId": hall_id}))
        .await;
    assert_eq!(ephemeral(&mut bobs).await["msg"], "Channel `#annex` created.");
    let annex = bob.ok_get("channels.members?roomName=annex").await;
    assert!(annex.to_string().contains("\"alice\""), "{annex}");
}

#[tokio::test]
async fn ddp_slash_command_runs_commands() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut ddp = listen(&server, alice.user_id(), alice.token()).await;
    ddp.sub("stream-room-messages", json!(["GENERAL", false])).await;
    let result = ddp
        .call("slashCommand", json!([{"cmd": "gimme", "params": "cake", "msg": {"_id": "cmdmsg1", "rid": "GENERAL", "msg": "/gimme cake"}}]))
        .await;
    assert!(result.get("error").is_none(), "{result}");
    let posted = ddp.event("stream-room-messages", "GENERAL").await;
    assert_eq!(posted["fields"]["args"][0]["_id"], "cmdmsg1");
    assert_eq!(posted["fields"]["args"][0]["msg"], "༼ つ ◕_◕ ༽つ cake");

    let unknown = ddp.call("slashCommand", json!([{"cmd": "nope", "msg": {"rid": "GENERAL"}}])).await;
    assert_eq!(unknown["error"]["error"], "error-invalid-command", "{unknown}");
    let no_room = ddp.call("slashCommand", json!([{"cmd": "me", "params": "x", "msg": {}}])).await;
    assert_eq!(no_room["error"]["error"], "invalid-command-usage", "{no_room}");
    ddp.call("slashCommand", json!([{"cmd": "join", "params": "#ghosttown", "msg": {"rid": "GENERAL"}}]))
        .await;
    assert_eq!(ephemeral(&mut ddp).await["msg"], "The channel `#ghosttown` does not exist.");
    let mut anon = Ddp::connect(&server.url).await;
    let refused = anon.call("slashCommand", json!([{"cmd": "me", "msg": {"rid": "GENERAL"}}])).await;
    assert_eq!(refused["error"]["error"], "error-invalid-user", "{refused}");
}
