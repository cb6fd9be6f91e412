//! What Rocket.Chat does to a message's content before saving it, on send and on edit: the
//! bad-words filter and the check of `customFields` against the `Message_CustomFields` schema.

use std::sync::LazyLock;

use apogee_types::{ServiceError, ServiceResult};
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

impl Messaging {
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
