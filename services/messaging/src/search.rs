//! Rocket.Chat's message search query language (`chat.search`, DDP `messageSearch`): operators
//! are taken out of the text one kind at a time, in Rocket.Chat's order, and what is left is
//! the text to find.

use std::sync::LazyLock;

use apogee_store::MessageSearch;
use apogee_types::Millis;
use regex_lite::{Captures, Regex};

fn re(source: &str) -> Regex {
    Regex::new(source).expect("the search operators' patterns are valid")
}

static FROM: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)from:([a-z0-9.\-_]+)"));
static MENTION: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)mention:([a-z0-9.\-_]+)"));
static HAS_STAR: LazyLock<Regex> = LazyLock::new(|| re("has:star"));
static HAS_URL: LazyLock<Regex> = LazyLock::new(|| re("has:url|has:link"));
static PINNED: LazyLock<Regex> = LazyLock::new(|| re("is:pinned|has:pin"));
static LOCATION: LazyLock<Regex> = LazyLock::new(|| re("has:location|has:map"));
static LABEL: LazyLock<Regex> = LazyLock::new(|| re(r"label:(\w+)"));
static FILE_DESC: LazyLock<Regex> = LazyLock::new(|| re(r"file-desc:(\w+)"));
static FILE_TITLE: LazyLock<Regex> = LazyLock::new(|| re(r"file-title:(\w+)"));
static BEFORE: LazyLock<Regex> = LazyLock::new(|| re(r"before:(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"));
static AFTER: LazyLock<Regex> = LazyLock::new(|| re(r"after:(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"));
static ON: LazyLock<Regex> = LazyLock::new(|| re(r"on:(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"));
static ORDER: LazyLock<Regex> =
    LazyLock::new(|| re("(?:order|sort):(asc|ascend|ascending|desc|descend|descending)"));
static REGEX_QUERY: LazyLock<Regex> = LazyLock::new(|| re(r"^/.+/[imxs]*$"));

/// Days since 1970-01-01 of a proleptic Gregorian date; `month` counts from 0 and, like `day`,
/// may run over (JavaScript's `new Date(y, m, d)` carries the excess on).
fn days_from_civil(year: i64, month0: i64, day: i64) -> i64 {
    let year = year + month0.div_euclid(12);
    let month = month0.rem_euclid(12) + 1;
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

/// Midnight of `day`/`month`/`year` (plus `extra_days`) as Rocket.Chat computes it on a server
/// in UTC: shifted by the user's `utcOffset` hours (Rocket.Chat adds it).
fn day_start(caps: &Captures<'_>, extra_days: i64, utc_offset: f64) -> Millis {
    let n = |i: usize| caps[i].parse::<i64>().unwrap_or(0);
    let days = days_from_civil(n(3), n(2) - 1, n(1) + extra_days);
    // JavaScript's `setUTCHours` keeps whole hours of a fractional offset only.
    let offset_hours = utc_offset.trunc() as i64;
    Millis(days * 86_400_000 + offset_hours * 3_600_000)
}

/// `text` without `pattern`; `set` becomes true when it was there.
fn flag(pattern: &Regex, text: &str, set: &mut bool) -> String {
    *set |= pattern.is_match(text);
    pattern.replace_all(text, "").into_owned()
}

/// `text` without `pattern`; `slot` gets the last match's argument (each replaces the one
/// condition in Rocket.Chat's query).
fn last(pattern: &Regex, text: &str, slot: &mut Option<String>) -> String {
    pattern
        .replace_all(text, |caps: &Captures<'_>| {
            *slot = Some(caps[1].to_owned());
            String::new()
        })
        .into_owned()
}

/// What a search text asks for; `None` when it asks for nothing (Rocket.Chat then answers no
/// messages). `force_regex` is `Message_AlwaysSearchRegExp`.
pub(crate) fn parse_search(
    text: &str,
    user_id: &str,
    username: &str,
    utc_offset: f64,
    force_regex: bool,
) -> Option<MessageSearch> {
    let mut search = MessageSearch::default();
    let mut asks = false;

    let mut from: Vec<String> = Vec::new();
    let text = FROM.replace_all(text, |caps: &Captures<'_>| {
        let mut name = caps[1].to_owned();
        // `from:me` is the caller, once.
        if name == "me" && !from.iter().any(|f| f == username) {
            name = username.to_owned();
        }
        from.push(name);
        String::new()
    });
    if !from.is_empty() {
        search.from = from;
        asks = true;
    }
    let mut mentions: Vec<String> = Vec::new();
    let text = MENTION.replace_all(&text, |caps: &Captures<'_>| {
        mentions.push(caps[1].to_owned());
        String::new()
    });
    if !mentions.is_empty() {
        search.mentions = mentions;
        asks = true;
    }
    let mut starred = false;
    let text = flag(&HAS_STAR, &text, &mut starred);
    if starred {
        search.starred_by = Some(user_id.to_owned());
        asks = true;
    }
    let text = flag(&HAS_URL, &text, &mut search.has_url);
    let text = flag(&PINNED, &text, &mut search.pinned);
    let text = flag(&LOCATION, &text, &mut search.has_location);
    asks |= search.has_url || search.pinned || search.has_location;
    let text = last(&LABEL, &text, &mut search.label);
    let text = last(&FILE_DESC, &text, &mut search.file_description);
    let text = last(&FILE_TITLE, &text, &mut search.file_title);
    asks |= search.label.is_some() || search.file_description.is_some() || search.file_title.is_some();

    let text = BEFORE.replace_all(&text, |caps: &Captures<'_>| {
        search.until = Some(day_start(caps, 0, utc_offset));
        String::new()
    });
    let text = AFTER.replace_all(&text, |caps: &Captures<'_>| {
        search.since = Some(day_start(caps, 1, utc_offset));
        String::new()
    });
    let text = ON.replace_all(&text, |caps: &Captures<'_>| {
        // `on:` replaces whatever range came before.
        let start = day_start(caps, 0, utc_offset);
        search.since = Some(start);
        search.until = None;
        search.before = Some(Millis(start.0 + 86_400_000));
        String::new()
    });
    asks |= search.since.is_some() || search.until.is_some() || search.before.is_some();
    let text = ORDER.replace_all(&text, |caps: &Captures<'_>| {
        search.ascending = caps[1].starts_with("asc");
        String::new()
    });

    let text = collapse_space_pairs(text.trim());
    if !text.is_empty() {
        asks = true;
        if REGEX_QUERY.is_match(&text) {
            let mut parts = text.split('/');
            parts.next();
            let pattern = parts.next().unwrap_or_default().to_owned();
            let flags = parts.next().unwrap_or_default().to_owned();
            search.regex = Some((pattern, flags));
        } else if force_regex {
            search.regex = Some((text, "i".into()));
        } else {
            search.text = Some(text);
        }
    }
    asks.then_some(search)
}

/// JavaScript's `text.replace(/\s\s/g, ' ')`: each pair of whitespace characters, scanning left
/// to right without overlap, becomes one space.
fn collapse_space_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() && chars.peek().is_some_and(|n| n.is_whitespace()) {
            chars.next();
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<MessageSearch> {
        parse_search(text, "uid1", "alice", 0.0, false)
    }

    fn day(y: i64, m: i64, d: i64) -> Millis {
        Millis(days_from_civil(y, m - 1, d) * 86_400_000)
    }

    #[test]
    fn operators() {
        let s = |f: fn(&mut MessageSearch)| {
            let mut search = MessageSearch::default();
            f(&mut search);
            Some(search)
        };
        let table: Vec<(&str, Option<MessageSearch>)> = vec![
            ("", None),
            ("   ", None),
            ("order:asc", None),
            ("hello", s(|q| q.text = Some("hello".into()))),
            ("  hello   world ", s(|q| q.text = Some("hello  world".into()))),
            ("from:bob", s(|q| q.from = vec!["bob".into()])),
            (
                "FROM:Bob from:me hi",
                s(|q| {
                    q.from = vec!["Bob".into(), "alice".into()];
                    q.text = Some("hi".into());
                }),
            ),
            ("mention:carol mention:dave", s(|q| q.mentions = vec!["carol".into(), "dave".into()])),
            ("has:star", s(|q| q.starred_by = Some("uid1".into()))),
            ("has:url", s(|q| q.has_url = true)),
            (
                "has:link x",
                s(|q| {
                    q.has_url = true;
                    q.text = Some("x".into());
                }),
            ),
            ("is:pinned", s(|q| q.pinned = true)),
            ("has:pin", s(|q| q.pinned = true)),
            ("has:location", s(|q| q.has_location = true)),
            ("has:map", s(|q| q.has_location = true)),
            // Flags are case-sensitive in Rocket.Chat.
            ("HAS:STAR", s(|q| q.text = Some("HAS:STAR".into()))),
            ("label:cat label:dog", s(|q| q.label = Some("dog".into()))),
            ("file-desc:report", s(|q| q.file_description = Some("report".into()))),
            ("file-title:q3", s(|q| q.file_title = Some("q3".into()))),
            ("before:02/03/2024", s(|q| q.until = Some(day(2024, 3, 2)))),
            ("after:2.3.2024", s(|q| q.since = Some(day(2024, 3, 3)))),
            ("after:31-12-2023", s(|q| q.since = Some(day(2024, 1, 1)))),
            (
                "before:1/1/2025 after:1/1/2024",
                s(|q| {
                    q.until = Some(day(2025, 1, 1));
                    q.since = Some(day(2024, 1, 2));
                }),
            ),
            (
                "before:1/1/2025 on:29/02/2024",
                s(|q| {
                    q.since = Some(day(2024, 2, 29));
                    q.before = Some(day(2024, 3, 1));
                }),
            ),
            ("before:1/1/24", s(|q| q.text = Some("before:1/1/24".into()))),
            (
                "hi order:asc",
                s(|q| {
                    q.text = Some("hi".into());
                    q.ascending = true;
                }),
            ),
            // Alternatives are tried in order, so `sort:ascending` is `sort:asc` + `ending`.
            ("hi sort:ascending sort:desc", s(|q| q.text = Some("hi ending".into()))),
            ("/^he.lo$/i", s(|q| q.regex = Some(("^he.lo$".into(), "i".into())))),
            ("/x/", s(|q| q.regex = Some(("x".into(), String::new())))),
        ];
        for (input, expected) in table {
            assert_eq!(parse(input), expected, "{input:?}");
        }
    }

    #[test]
    fn forced_regex_and_offsets() {
        let forced = parse_search("a.c", "u", "me", 0.0, true).expect("a query");
        assert_eq!(forced.regex, Some(("a.c".into(), "i".into())));
        let shifted = parse_search("on:1/1/2024", "u", "me", 2.5, false).expect("a query");
        assert_eq!(shifted.since, Some(Millis(day(2024, 1, 1).0 + 2 * 3_600_000)));
    }

    #[test]
    fn dates_carry_over_like_javascript() {
        assert_eq!(days_from_civil(1970, 0, 1), 0);
        assert_eq!(days_from_civil(2024, 1, 30), days_from_civil(2024, 2, 1));
        assert_eq!(days_from_civil(2023, 12, 1), days_from_civil(2024, 0, 1));
        assert_eq!(days_from_civil(2000, 2, 1) - days_from_civil(2000, 1, 1), 29);
    }
}
