use apogee_types::Millis;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat};
use serde_json::{Value, json};

/// How dates are written: ISO strings (REST) or EJSON objects (DDP and `method.call`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dates {
    Iso,
    Ejson,
}

impl Dates {
    pub fn value(self, at: Millis) -> Value {
        match self {
            Dates::Iso => Value::String(iso(at)),
            Dates::Ejson => json!({ "$date": at.0 }),
        }
    }
}

/// Formats as JavaScript's `Date.toISOString()`: `2024-05-01T12:34:56.789Z`.
pub fn iso(at: Millis) -> String {
    DateTime::from_timestamp_millis(at.0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a date as clients send it: an ISO string (with or without zone, taken as UTC without),
/// a bare date, an EJSON `{"$date": ms}`, or epoch milliseconds.
pub fn parse_date(value: &Value) -> Option<Millis> {
    match value {
        Value::String(s) => parse_date_str(s),
        Value::Number(n) => n.as_i64().map(Millis),
        Value::Object(o) => o.get("$date").and_then(Value::as_i64).map(Millis),
        _ => None,
    }
}

fn parse_date_str(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(Millis(dt.timestamp_millis()));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, format) {
            return Some(Millis(dt.and_utc().timestamp_millis()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|dt| Millis(dt.and_utc().timestamp_millis()));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok().map(Millis);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_roundtrip() {
        let at = Millis(1_714_566_896_789);
        assert_eq!(iso(at), "2024-05-01T12:34:56.789Z");
        assert_eq!(parse_date(&Value::String(iso(at))), Some(at));
        assert_eq!(Dates::Ejson.value(at), json!({"$date": 1_714_566_896_789_i64}));
    }

    #[test]
    fn lenient_inputs() {
        assert_eq!(parse_date(&json!("2024-05-01T12:34:56")), Some(Millis(1_714_566_896_000)));
        assert_eq!(parse_date(&json!("2024-05-01")), Some(Millis(1_714_521_600_000)));
        assert_eq!(parse_date(&json!("2024-05-01T14:34:56.789+02:00")), Some(Millis(1_714_566_896_789)));
        assert_eq!(parse_date(&json!({"$date": 5})), Some(Millis(5)));
        assert_eq!(parse_date(&json!("1714566896789")), Some(Millis(1_714_566_896_789)));
        assert_eq!(parse_date(&json!("yesterday")), None);
        assert_eq!(parse_date(&json!("")), None);
    }
}
