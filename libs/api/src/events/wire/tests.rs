#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

const ROOM_TYPES: [RoomType; 3] = [RoomType::Channel, RoomType::Group, RoomType::Direct];
const ACTIONS: [Action; 3] = [Action::Inserted, Action::Updated, Action::Removed];

fn object(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Every field set, with unicode, extreme numbers and nested JSON.
fn full_message() -> Message {
    Message {
        id: "mид-🚀".into(),
        rid: "GENERAL".into(),
        msg: "héllo @alice 👋 — see #général\n\t\"quoted\" \\ \u{0}".into(),
        ts: Millis(i64::MAX),
        u: UserRef { id: "u1".into(), username: "bob".into(), name: Some("Bøb 李".into()) },
        updated_at: Millis(i64::MIN),
        t: Some("uj".into()),
        mentions: vec![
            Mention {
                id: "u2".into(),
                username: "alice".into(),
                name: Some("Alice".into()),
                kind: Some("user".into()),
            },
            Mention { id: "all".into(), username: "all".into(), name: None, kind: None },
        ],
        channels: vec![ChannelMention { id: "r2".into(), name: "général".into() }],
        tmid: Some("root".into()),
        tshow: true,
        groupable: Some(false),
        seq: u64::MAX,
        edited_at: Some(Millis(-1)),
        edited_by: Some(UserRef { id: "u3".into(), username: "carol".into(), name: None }),
        reactions: object(json!({":+1:": {"usernames": ["alice", "bob"]}, ":ünï:": {"usernames": []}})),
        extra: object(json!({
            "alias": "Bot", "emoji": ":robot:", "bot": {"i": "x"},
            "attachments": [{"title": "t", "fields": [{"short": true, "value": 1.5}], "ts": null}],
            "customFields": {"big": u64::MAX, "neg": i64::MIN, "float": 1e300, "tiny": -2.5e-300},
            "nested": [[[]], {}, "", 0, -0.0, true],
        })),
    }
}

/// Every option absent, every list and map empty, every string empty.
fn bare_message() -> Message {
    Message {
        id: String::new(),
        rid: String::new(),
        msg: String::new(),
        ts: Millis(0),
        u: UserRef { id: String::new(), username: String::new(), name: None },
        updated_at: Millis(0),
        t: None,
        mentions: vec![],
        channels: vec![],
        tmid: None,
        tshow: false,
        groupable: None,
        seq: 0,
        edited_at: None,
        edited_by: None,
        reactions: Map::new(),
        extra: Map::new(),
    }
}

fn full_room(t: RoomType) -> Room {
    Room {
        id: "r.1 ✓".into(),
        t,
        name: Some("général".into()),
        fname: Some("Général 🎉".into()),
        u: Some(UserRef { id: "u1".into(), username: "bob".into(), name: Some("Bob".into()) }),
        ts: Millis(1_700_000_000_000),
        updated_at: Millis(1_700_000_000_001),
        msgs: u64::MAX,
        users_count: u64::MAX - 1,
        lm: Some(Millis(1_700_000_000_002)),
        last_message: Some(Box::new(full_message())),
        topic: Some("topic".into()),
        description: Some(String::new()),
        announcement: Some("📢".into()),
        purpose: Some("purpose".into()),
        ro: true,
        archived: true,
        default: true,
        featured: true,
        broadcast: true,
        encrypted: true,
        sys_mes: Some(json!(["uj", "ul"])),
        uids: vec!["u1".into(), "u2".into()],
        usernames: vec!["alice".into(), "bob".into()],
        join_code: Some("s3cr3t".into()),
        muted: vec!["mallory".into()],
        unmuted: vec!["trent".into()],
        favorite: true,
        react_when_read_only: true,
        custom_fields: object(json!({"dept": "R&D", "level": 3, "tags": ["a", "b"]})),
        prid: Some("parent".into()),
        dmid: Some("dm".into()),
        avatar_etag: Some("etag".into()),
        team_id: Some("team".into()),
        team_main: true,
        team_default: true,
        sidepanel: Some(json!({"items": ["channels", "discussions"]})),
    }
}

fn bare_room(t: RoomType) -> Room {
    Room::new(String::new(), t, None, None, Millis(0))
}

fn full_subscription(t: RoomType) -> Subscription {
    Subscription {
        id: "s1".into(),
        rid: "r1".into(),
        u: UserRef { id: "u1".into(), username: "bob".into(), name: Some("Bob".into()) },
        t,
        name: "général".into(),
        fname: Some("Général".into()),
        ts: Millis(1),
        updated_at: Millis(2),
        open: true,
        alert: true,
        user_mentions: u64::MAX,
        group_mentions: 7,
        ls: Some(Millis(3)),
        lr: Some(Millis(-4)),
        f: true,
        roles: vec!["owner".into(), "moderator".into()],
        archived: true,
        last_read_seq: 42,
        notifications: object(json!({"desktopNotifications": "mentions", "unreadAlert": "nothing"})),
        tunread: vec!["t1".into()],
        tunread_user: vec!["t2".into()],
        tunread_group: vec!["t3".into()],
        ignored: vec!["spammer".into()],
        unread: u64::MAX - 2,
    }
}

fn bare_subscription(t: RoomType) -> Subscription {
    Subscription {
        id: String::new(),
        rid: String::new(),
        u: UserRef { id: String::new(), username: String::new(), name: None },
        t,
        name: String::new(),
        fname: None,
        ts: Millis(0),
        updated_at: Millis(0),
        open: false,
        alert: false,
        user_mentions: 0,
        group_mentions: 0,
        ls: None,
        lr: None,
        f: false,
        roles: vec![],
        archived: false,
        last_read_seq: 0,
        notifications: Map::new(),
        tunread: vec![],
        tunread_user: vec![],
        tunread_group: vec![],
        ignored: vec![],
        unread: 0,
    }
}

/// JSON values of every kind, for the fields that carry any value.
fn json_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(false),
        json!(true),
        json!(0),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(0.1),
        json!(-1.5e-7),
        json!(""),
        json!("ünïcødé 🚀 \"\\"),
        json!([]),
        json!({}),
        json!({"a": [1, {"b": null}], "": ""}),
    ]
}

fn room_events() -> Vec<RoomEvent> {
    let mut events = vec![];
    for t in ROOM_TYPES {
        for (message, room) in [(full_message(), full_room(t)), (bare_message(), bare_room(t))] {
            for inserted in [true, false] {
                events.push(RoomEvent::Message {
                    message: Box::new(message.clone()),
                    room: Box::new(room.clone()),
                    touched: vec!["u1".into(), "ü2".into()],
                    left: if inserted { vec![] } else { vec!["u3".into()] },
                    inserted,
                });
            }
        }
        events.push(RoomEvent::Changed { room: Box::new(full_room(t)) });
        events.push(RoomEvent::Changed { room: Box::new(bare_room(t)) });
    }
    let mut room_without_sys_mes = full_room(RoomType::Channel);
    room_without_sys_mes.sys_mes = None;
    let mut room_with_null_sys_mes = full_room(RoomType::Channel);
    room_with_null_sys_mes.sys_mes = Some(Value::Null);
    let mut room_with_bare_last_message = bare_room(RoomType::Group);
    room_with_bare_last_message.last_message = Some(Box::new(bare_message()));
    for room in [room_without_sys_mes, room_with_null_sys_mes, room_with_bare_last_message] {
        events.push(RoomEvent::Changed { room: Box::new(room) });
    }
    events.push(RoomEvent::MessageDeleted { message_id: String::new() });
    events.push(RoomEvent::MessageDeleted { message_id: "m.1 🗑".into() });
    for extra in json_values() {
        events.push(RoomEvent::Activity {
            username: "bøb".into(),
            activity: vec!["user-typing".into(), "user-recording".into()],
            extra,
            origin: "conn-1".into(),
        });
    }
    events.push(RoomEvent::Activity {
        username: String::new(),
        activity: vec![],
        extra: Value::Null,
        origin: String::new(),
    });
    events
}

fn user_events() -> Vec<UserEvent> {
    let mut events = vec![];
    for action in ACTIONS {
        for t in ROOM_TYPES {
            for (subscription, unread) in [(full_subscription(t), u64::MAX), (bare_subscription(t), 0)] {
                events.push(UserEvent::Subscription { action, subscription: Box::new(subscription), unread });
            }
            events.push(UserEvent::Room { action, room: Box::new(full_room(t)) });
            events.push(UserEvent::Room { action, room: Box::new(bare_room(t)) });
        }
    }
    for notification in json_values() {
        events.push(UserEvent::Notification { notification });
    }
    events.push(UserEvent::Notification {
        notification: json!({"title": "Bob", "text": "héllo", "payload": {"_id": "m1", "rid": "r1", "type": "d"}}),
    });
    events.push(UserEvent::Ephemeral {
        id: "e1".into(),
        rid: "r1".into(),
        msg: "Nö 🚫".into(),
        ts: Millis(i64::MIN),
    });
    events.push(UserEvent::Ephemeral {
        id: String::new(),
        rid: String::new(),
        msg: String::new(),
        ts: Millis(0),
    });
    events
}

fn all_events() -> Vec<AllEvent> {
    let mut events: Vec<AllEvent> = json_values()
        .into_iter()
        .map(|value| AllEvent::PublicSetting { id: "Site_Name".into(), value })
        .collect();
    events.extend([
        AllEvent::Permission { id: "view-room".into(), roles: vec![], updated_at: Millis(0) },
        AllEvent::Permission {
            id: "edit-message".into(),
            roles: vec!["admin".into(), "owner".into()],
            updated_at: Millis(i64::MAX),
        },
        AllEvent::NameChanged { id: "u1".into(), name: None, username: "bob".into() },
        AllEvent::NameChanged { id: "u1".into(), name: Some("Bøb 李".into()), username: "bøb".into() },
        AllEvent::NameChanged { id: "u1".into(), name: Some(String::new()), username: String::new() },
        AllEvent::Avatar { username: None, rid: None, etag: None },
        AllEvent::Avatar { username: Some("bob".into()), rid: None, etag: Some("e1".into()) },
        AllEvent::Avatar { username: None, rid: Some("r1".into()), etag: Some(String::new()) },
        AllEvent::RoleChange {
            change: "added".into(),
            role: "moderator".into(),
            user: UserRef { id: "u1".into(), username: "bob".into(), name: Some("Bob".into()) },
            scope: Some("r1".into()),
        },
        AllEvent::RoleChange {
            change: "removed".into(),
            role: "admin".into(),
            user: UserRef { id: "u1".into(), username: "bob".into(), name: None },
            scope: None,
        },
    ]);
    events
}

#[test]
fn room_events_round_trip() {
    for event in room_events() {
        assert_eq!(RoomEvent::decode(&event.encode()).unwrap(), event);
    }
}

#[test]
fn user_events_round_trip() {
    for event in user_events() {
        assert_eq!(UserEvent::decode(&event.encode()).unwrap(), event);
    }
}

#[test]
fn all_events_round_trip() {
    for event in all_events() {
        assert_eq!(AllEvent::decode(&event.encode()).unwrap(), event);
    }
}

#[test]
fn internal_events_round_trip() {
    for id in ["", "Site_Name", "ünï.*>%"] {
        let setting = SettingChanged { id: id.into() };
        assert_eq!(SettingChanged::decode(&setting.encode()).unwrap(), setting);
        let pruned = FilesPruned { message_id: id.into() };
        assert_eq!(FilesPruned::decode(&pruned.encode()).unwrap(), pruned);
    }
    for name in [None, Some(String::new()), Some("Bøb".into())] {
        let presence = PresenceChanged {
            uid: "u1".into(),
            username: "bob".into(),
            status: "away".into(),
            status_text: "🌴 back monday".into(),
            name,
            roles: vec!["user".into(), "bot".into()],
        };
        assert_eq!(PresenceChanged::decode(&presence.encode()).unwrap(), presence);
    }
    let empty = PresenceChanged {
        uid: String::new(),
        username: String::new(),
        status: String::new(),
        status_text: String::new(),
        name: None,
        roles: vec![],
    };
    assert_eq!(PresenceChanged::decode(&empty.encode()).unwrap(), empty);
}

/// Each flag alone, so two flags swapped in the conversion cannot pass for each other.
#[test]
fn each_flag_travels_in_its_own_field() {
    let room_flags = [
        "ro",
        "archived",
        "default",
        "featured",
        "broadcast",
        "encrypted",
        "favorite",
        "reactWhenReadOnly",
        "teamMain",
        "teamDefault",
    ];
    for flag in room_flags {
        let mut room = serde_json::to_value(bare_room(RoomType::Channel)).unwrap();
        room[flag] = json!(true);
        let event = RoomEvent::Changed { room: Box::new(serde_json::from_value(room).unwrap()) };
        assert_eq!(RoomEvent::decode(&event.encode()).unwrap(), event, "{flag}");
    }
    for flag in ["open", "alert", "f", "archived"] {
        let mut subscription = serde_json::to_value(bare_subscription(RoomType::Group)).unwrap();
        subscription[flag] = json!(true);
        let event = UserEvent::Subscription {
            action: Action::Updated,
            subscription: Box::new(serde_json::from_value(subscription).unwrap()),
            unread: 0,
        };
        assert_eq!(UserEvent::decode(&event.encode()).unwrap(), event, "{flag}");
    }
}

/// The JSON fields keep what the Rust side holds, not a normalized copy.
#[test]
fn json_fields_survive_exactly() {
    let RoomEvent::Message { message, .. } = RoomEvent::decode(
        &RoomEvent::Message {
            message: Box::new(full_message()),
            room: Box::new(bare_room(RoomType::Direct)),
            touched: vec![],
            left: vec![],
            inserted: true,
        }
        .encode(),
    )
    .unwrap() else {
        panic!("not a message event");
    };
    assert_eq!(message.extra["customFields"]["big"], json!(u64::MAX));
    assert_eq!(message.extra["customFields"]["neg"], json!(i64::MIN));
    assert_eq!(message.extra["customFields"]["float"].as_f64(), Some(1e300));
    assert!(message.extra["customFields"]["big"].is_u64());
}

#[test]
fn refuses_what_is_not_an_event() {
    // No variant at all.
    assert!(RoomEvent::decode(&[]).is_err());
    assert!(UserEvent::decode(&[]).is_err());
    assert!(AllEvent::decode(&[]).is_err());
    // Not protobuf (the JSON the bus used to carry).
    let json = br#"{"type":"message_deleted","message_id":"m1"}"#;
    assert!(RoomEvent::decode(json).is_err());
    // A message event without its room.
    let mut pb = room_event(&RoomEvent::Message {
        message: Box::new(bare_message()),
        room: Box::new(bare_room(RoomType::Channel)),
        touched: vec![],
        left: vec![],
        inserted: true,
    });
    if let Some(pb::room_event::Event::Message(m)) = pb.event.as_mut() {
        m.room = None;
    }
    assert!(RoomEvent::decode(&pb.encode_to_vec()).is_err());
    // A room of no known type.
    let mut room = room(&bare_room(RoomType::Channel));
    for t in [0, 4, -1] {
        room.t = t;
        let event = pb::RoomEvent {
            event: Some(pb::room_event::Event::Changed(pb::room_event::RoomChanged {
                room: Some(room.clone()),
            })),
        };
        assert!(RoomEvent::decode(&event.encode_to_vec()).is_err(), "room type {t}");
    }
    // An unknown action.
    let mut sub = user_event(&UserEvent::Subscription {
        action: Action::Inserted,
        subscription: Box::new(bare_subscription(RoomType::Direct)),
        unread: 0,
    });
    if let Some(pb::user_event::Event::Subscription(s)) = sub.event.as_mut() {
        s.action = 0;
    }
    assert!(UserEvent::decode(&sub.encode_to_vec()).is_err());
    // A JSON object field holding something else, or no JSON at all.
    let mut message = message(&bare_message());
    for bad in [&b"[1]"[..], b"{", b"null"] {
        message.extra = bad.to_vec();
        assert!(message_of(message.clone()).is_err());
    }
    let setting = pb::AllEvent {
        event: Some(pb::all_event::Event::PublicSetting(pb::all_event::PublicSetting {
            id: "x".into(),
            value: b"{not json".to_vec(),
        })),
    };
    assert!(AllEvent::decode(&setting.encode_to_vec()).is_err());
}

/// The protobuf payload of the hot event is smaller than the JSON it replaced.
#[test]
fn message_event_is_smaller_than_json() {
    let event = RoomEvent::Message {
        message: Box::new(full_message()),
        room: Box::new(full_room(RoomType::Channel)),
        touched: vec!["u1".into()],
        left: vec![],
        inserted: true,
    };
    assert!(event.encode().len() < serde_json::to_vec(&event).unwrap().len());
}

#[test]
fn send_message_request_and_reply_round_trip() {
    use apogee_proto::messaging::v1::{SendMessageReply, SendMessageRequest};
    let full = NewMessage {
        id: Some("client-id".into()),
        rid: "GENERAL".into(),
        msg: "héllo 🚀".into(),
        tmid: Some("root".into()),
        tshow: true,
        groupable: Some(false),
        extra: object(
            json!({"alias": "Bot", "attachments": [{"title": "t"}], "customFields": {"n": u64::MAX}}),
        ),
    };
    for new in [NewMessage::default(), full] {
        let bytes = send_message_request(new.clone()).encode_to_vec();
        assert_eq!(new_message_of(SendMessageRequest::decode(&bytes[..]).unwrap()).unwrap(), new);
    }
    for m in [full_message(), bare_message()] {
        let bytes = send_message_reply(&m).encode_to_vec();
        assert_eq!(send_message_reply_of(SendMessageReply::decode(&bytes[..]).unwrap()).unwrap(), m);
    }
    assert!(send_message_reply_of(SendMessageReply { message: None }).is_err());
    let bad = SendMessageRequest { extra: b"[]".to_vec(), ..Default::default() };
    assert!(new_message_of(bad).is_err());
}
