//! What Rocket.Chat does to a message's content before saving it, on send and on edit: the
//! bad-words filter, the check of `customFields` against the `Message_CustomFields` schema, the
//! `urls` of the text and the quote attachments of links to messages on this server.

use std::sync::LazyLock;

use apogee_types::{Message, Principal, ServiceError, ServiceResult};
use regex_lite::Regex;
use serde_json::{Map, Value, json};

use crate::badwords::BadWords;
use crate::service::Messaging;

/// Checks `fields` against a `Message_CustomFields` schema, as Rocket.Chat compiles it: the
/// schema must describe an object (or say no type), and no property beyond those it lists is
/// allowed. Errors are Rocket.Chat's messages.
pub(crate) fn check_custom_fields(fields: &Value, schema: &str) -> Result<(), String> {
    let mut schema: Value = serde_json::from_str(schema).map_err(|e| e.to_string())?;
    let Some(object) = schema.as_object_mut() else {
        return Err("Invalid custom fields config".into());
    };
    if object.get("type").is_some_and(|t| !t.is_null() && t != "object") {
        return Err("Invalid custom fields config".into());
    }
    object.insert("type".into(), "object".into());
    object.insert("additionalProperties".into(), false.into());
    // ajv's default dialect is draft-07.
    let validator = jsonschema::draft7::new(&schema).map_err(|e| e.to_string())?;
    if validator.is_valid(fields) { Ok(()) } else { Err("Invalid custom fields".into()) }
}

/// Rocket.Chat's URL pattern for message text (`getMessageUrlRegex`).
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"([A-Za-z]{3,9})://([-;:&=+$,\w]+@)?([-A-Za-z0-9.]+)+:?(\d+)?((/[-+=!:~%/.@,\w]*)?\??([-+=&!:;%@/.,\w]+)?(?:#([^\s)]+))?)?",
    )
    .expect("the URL pattern is valid")
});
/// Code blocks and inline code, where Rocket.Chat does not look for URLs.
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"```[\s\S]*?```|`[^`\n]+`").expect("the code pattern is valid"));

/// The distinct URLs of a message's text outside code, in order of appearance.
pub(crate) fn message_urls(msg: &str) -> Vec<String> {
    let outside_code = CODE.replace_all(msg, " ");
    let mut urls: Vec<String> = Vec::new();
    for found in URL.find_iter(&outside_code) {
        if !urls.iter().any(|u| u == found.as_str()) {
            urls.push(found.as_str().to_owned());
        }
    }
    urls
}

/// Sets `urls` (`[{url, meta: {}}]`) from the text, as Rocket.Chat's `parseUrlsInMessage`
/// does on send and edit unless the client sent `parseUrls: false`.
pub(crate) fn set_urls(msg: &str, extra: &mut Map<String, Value>) {
    if extra.get("parseUrls") == Some(&Value::Bool(false)) {
        return;
    }
    let urls: Vec<Value> =
        message_urls(msg).into_iter().map(|url| json!({ "url": url, "meta": {} })).collect();
    if urls.is_empty() {
        extra.remove("urls");
    } else {
        extra.insert("urls".into(), urls.into());
    }
}

/// Rocket.Chat's `isQuoteAttachment`: an attachment carrying `message_link` (JSON cannot say
/// `undefined`, so any value counts).
fn is_quote(attachment: &Value) -> bool {
    attachment.get("message_link").is_some()
}

/// Rocket.Chat's `recursiveRemoveAttachments`: a quote nested `depth` deep keeps its own
/// quotes only while `depth < limit - 1`.
fn trim_quote_chain(attachment: &mut Value, depth: i64, limit: i64) {
    if !is_quote(attachment) {
        return;
    }
    let Some(object) = attachment.as_object_mut() else { return };
    if depth < limit - 1 {
        if let Some(Value::Array(nested)) = object.get_mut("attachments") {
            for n in nested {
                trim_quote_chain(n, depth + 1, limit);
            }
        }
    } else {
        object.remove("attachments");
    }
}

/// The `msg` query parameter of a link, when it has exactly one (Node's `querystring`).
fn linked_message_id(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key) == "msg" {
            if found.is_some() {
                return None;
            }
            found = Some(percent_decode(value));
        }
    }
    found
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Rocket.Chat's `createQuoteAttachment` for a linked message (whose quote chain is trimmed
/// already).
fn quote_of(message: &Message, link: &str, use_real_name: bool) -> Value {
    let author = match message.extra.get("alias").and_then(Value::as_str).filter(|a| !a.is_empty()) {
        Some(alias) => alias.to_owned(),
        None if use_real_name => {
            message.u.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| message.u.username.clone())
        }
        None => message.u.username.clone(),
    };
    let icon: String = format!(
        "/avatar/{}",
        message
            .u
            .username
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    );
    json!({
        "text": message.msg,
        "message_link": link,
        "author_name": author,
        "author_icon": icon,
        "attachments": message.extra.get("attachments").cloned().unwrap_or_else(|| json!([])),
        "ts": { "$date": message.ts.0 },
    })
}

impl Messaging {
    /// Rocket.Chat's `createAttachmentForMessageURLs`, on send and on edit: quote attachments
    /// are always rebuilt, one per link in `urls` to a message of this server (`Site_Url`,
    /// `?msg=<id>`) in a room the caller may read; those links are marked `ignoreParse`.
    pub(crate) async fn quote_links(
        &self,
        who: &Principal,
        extra: &mut Map<String, Value>,
    ) -> ServiceResult<()> {
        if let Some(Value::Array(attachments)) = extra.get_mut("attachments") {
            attachments.retain(|a| !is_quote(a));
        }
        let Some(Value::Array(urls)) = extra.get("urls") else { return Ok(()) };
        if urls.is_empty() {
            return Ok(());
        }
        let site_url = self.auth.setting_string("Site_Url").await.unwrap_or_default();
        let limit = self.auth.setting_i64("Message_QuoteChainLimit", 2).await;
        let use_real_name = self.auth.setting_bool("UI_Use_Real_Name", false).await;
        let mut quotes = Vec::new();
        let mut quoted = Vec::new();
        for (index, item) in urls.iter().enumerate() {
            let Some(url) = item.get("url").and_then(Value::as_str).filter(|u| u.contains(&site_url)) else {
                continue;
            };
            let Some(id) = linked_message_id(url) else { continue };
            let Some(mut linked) =
                self.store.message_by_id(&id).await.map_err(crate::service::store_error)?
            else {
                continue;
            };
            if !self.can_read_id(who, &linked.rid).await? {
                continue;
            }
            if limit < 2 {
                linked.extra.remove("attachments");
            } else if let Some(Value::Array(nested)) = linked.extra.get_mut("attachments") {
                for n in nested {
                    trim_quote_chain(n, 1, limit);
                }
            }
            quotes.push(quote_of(&linked, url, use_real_name));
            quoted.push(index);
        }
        if let Some(Value::Array(urls)) = extra.get_mut("urls") {
            for index in quoted {
                if let Some(Value::Object(item)) = urls.get_mut(index) {
                    item.insert("ignoreParse".into(), true.into());
                }
            }
        }
        if !quotes.is_empty() {
            let entry = extra.entry("attachments").or_insert_with(|| json!([]));
            match entry {
                Value::Array(current) => current.extend(quotes),
                other => *other = Value::Array(quotes),
            }
        }
        Ok(())
    }

    /// `text` after the bad-words filter, when `Message_AllowBadWordsFilter` is on.
    pub(crate) async fn filter_bad_words(&self, text: String) -> String {
        if text.is_empty() || !self.auth.setting_bool("Message_AllowBadWordsFilter", false).await {
            return text;
        }
        let list = self.auth.setting_string("Message_BadWordsFilterList").await.unwrap_or_default();
        let allowed = self.auth.setting_string("Message_BadWordsWhitelist").await.unwrap_or_default();
        BadWords::new(&list, &allowed).clean(&text)
    }

    /// Rocket.Chat validates `customFields` whenever it is present (an empty object too).
    pub(crate) async fn validate_custom_fields(&self, fields: Option<&Value>) -> ServiceResult<()> {
        // JavaScript truthiness: `null`, `false`, `0` and `""` count as absent.
        let present = fields.is_some_and(|f| match f {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        });
        let Some(fields) = fields.filter(|_| present) else {
            return Ok(());
        };
        if !self.auth.setting_bool("Message_CustomFields_Enabled", false).await {
            return Err(ServiceError::failure("Custom fields not enabled"));
        }
        let schema = self.auth.setting_string("Message_CustomFields").await.unwrap_or_default();
        check_custom_fields(fields, &schema).map_err(ServiceError::failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PRIORITY: &str = r#"{"properties":{"priority":{"type":"string","nullable":false,"enum":["low","medium","high"]}},"required":["priority"]}"#;

    #[test]
    fn linked_message_ids_from_the_query() {
        assert_eq!(linked_message_id("http://a.io/channel/general?msg=abc"), Some("abc".into()));
        assert_eq!(linked_message_id("http://a.io/x?a=1&msg=a%2Db#frag"), Some("a-b".into()));
        assert_eq!(linked_message_id("http://a.io/x?msg=a&msg=b"), None, "two are an array");
        assert_eq!(linked_message_id("http://a.io/x#msg=a"), None);
        assert_eq!(linked_message_id("http://a.io/x?m=a"), None);
        assert_eq!(percent_decode("%E6%97%A5+%zz%"), "日 %zz%");
    }

    #[test]
    fn quote_chains_are_trimmed() {
        let mut deep = json!({ "message_link": "a", "attachments": [
            { "message_link": "b", "attachments": [{ "message_link": "c", "attachments": [] }] },
            { "title": "file" },
        ]});
        trim_quote_chain(&mut deep, 1, 3);
        assert_eq!(
            deep,
            json!({ "message_link": "a", "attachments": [{ "message_link": "b" }, { "title": "file" }] })
        );
    }

    #[test]
    fn custom_fields_follow_the_schema() {
        assert_eq!(check_custom_fields(&json!({ "priority": "low" }), PRIORITY), Ok(()));
        let invalid = Err("Invalid custom fields".to_owned());
        assert_eq!(check_custom_fields(&json!({}), PRIORITY), invalid);
        assert_eq!(check_custom_fields(&json!({ "priority": "urgent" }), PRIORITY), invalid);
        // Properties the schema does not list are refused.
        assert_eq!(check_custom_fields(&json!({ "priority": "low", "x": 1 }), PRIORITY), invalid);
        assert_eq!(check_custom_fields(&json!("low"), PRIORITY), invalid);
    }

    #[test]
    fn urls_outside_code() {
        assert_eq!(
            message_urls("see https://example.com/a?b=1#top, and http://x.io:8080/p and http://x.io:8080/p"),
            ["https://example.com/a?b=1#top,", "http://x.io:8080/p"]
        );
        assert_eq!(message_urls("`https://in.code` ```\nftp://block.io\n``` mailto:x"), Vec::<String>::new());
        let mut extra = Map::new();
        set_urls("go to https://a.io", &mut extra);
        assert_eq!(extra["urls"], json!([{ "url": "https://a.io", "meta": {} }]));
        set_urls("none now", &mut extra);
        assert!(extra.get("urls").is_none());
        let mut off = Map::from_iter([("parseUrls".to_owned(), Value::Bool(false))]);
        set_urls("https://a.io", &mut off);
        assert!(off.get("urls").is_none());
    }

    #[test]
    fn schemas_must_describe_objects() {
        let config = Err("Invalid custom fields config".to_owned());
        assert_eq!(check_custom_fields(&json!({}), r#"{"type":"string"}"#), config);
        assert_eq!(check_custom_fields(&json!({}), "[1]"), config);
        assert!(check_custom_fields(&json!({}), "").is_err());
        assert_eq!(check_custom_fields(&json!({}), r#"{"type":"object"}"#), Ok(()));
    }
}
