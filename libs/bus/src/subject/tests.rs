#![allow(clippy::unwrap_used)]

use super::*;

fn subject(s: &str) -> Subject {
    Subject::new(s).unwrap()
}

fn pattern(p: &str) -> SubjectPattern {
    SubjectPattern::new(p).unwrap()
}

fn matches(p: &str, s: &str) -> bool {
    pattern(p).matches(&subject(s))
}

#[test]
fn valid_subjects() {
    for s in ["a", "apogee.room.GENERAL.message", "a.b-c_d.ÿ.9", "x:y.z"] {
        assert_eq!(Subject::new(s).unwrap().as_str(), s);
    }
}

#[test]
fn invalid_subjects() {
    for s in
        ["", ".", "a.", ".a", "a..b", "a b", "a.\tb", "a\n", "a\0b", "*", "a.*", "a.>", "a*", "a.b>", ">"]
    {
        assert!(matches!(Subject::new(s), Err(BusError::InvalidSubject { .. })), "{s:?} should be invalid");
    }
}

#[test]
fn subject_from_tokens_validates_each_token() {
    let ok = Subject::from_tokens(["apogee", "room", "R1", "message"]).unwrap();
    assert_eq!(ok.as_str(), "apogee.room.R1.message");
    assert_eq!(ok.tokens().collect::<Vec<_>>(), ["apogee", "room", "R1", "message"]);
    for tokens in
        [&["apogee", "room", "a.b", "message"][..], &["apogee", "", "x"], &["apogee", "*"], &[""], &[]]
    {
        let got = Subject::from_tokens(tokens.iter().copied());
        assert!(matches!(got, Err(BusError::InvalidSubject { .. })), "{tokens:?}: {got:?}");
    }
}

#[test]
fn valid_patterns() {
    for p in ["a", ">", "*", "a.*.c", "a.>", "*.>", "*.*", "a.*.>"] {
        assert_eq!(SubjectPattern::new(p).unwrap().as_str(), p);
    }
}

#[test]
fn invalid_patterns() {
    for p in ["", ".", "a.", "a..b", ">.a", "a.>.b", "a.>.>", "a*", "a.b>", "a.*b", "a b", "a.\r"] {
        assert!(
            matches!(SubjectPattern::new(p), Err(BusError::InvalidPattern { .. })),
            "{p:?} should be invalid"
        );
    }
}

#[test]
fn literal_patterns_match_only_themselves() {
    assert!(matches("a.b.c", "a.b.c"));
    assert!(!matches("a.b.c", "a.b"));
    assert!(!matches("a.b.c", "a.b.c.d"));
    assert!(!matches("a.b.c", "a.b.cc"));
    assert!(!matches("a.b", "a.bb"));
    assert!(!matches("a", "A"));
}

#[test]
fn star_matches_exactly_one_token() {
    assert!(matches("a.*.c", "a.b.c"));
    assert!(matches("a.*.c", "a.xyz.c"));
    assert!(!matches("a.*.c", "a.c"));
    assert!(!matches("a.*.c", "a.b.b.c"));
    assert!(!matches("a.*.c", "a.b.d"));
    assert!(matches("*", "a"));
    assert!(!matches("*", "a.b"));
    assert!(matches("*.*", "a.b"));
    assert!(!matches("*.*", "a"));
    assert!(matches("a.*", "a.b"));
    assert!(!matches("a.*", "a"));
    assert!(!matches("a.*", "a.b.c"));
}

#[test]
fn rest_matches_one_or_more_trailing_tokens() {
    assert!(matches(">", "a"));
    assert!(matches(">", "a.b.c"));
    assert!(matches("a.>", "a.b"));
    assert!(matches("a.>", "a.b.c.d"));
    assert!(!matches("a.>", "a"));
    assert!(!matches("a.>", "b.a"));
    assert!(!matches("a.>", "ab.c"));
    assert!(matches("*.>", "a.b"));
    assert!(!matches("*.>", "a"));
    assert!(matches("a.*.>", "a.b.c"));
    assert!(!matches("a.*.>", "a.b"));
}

#[test]
fn exact_patterns() {
    let s = subject("apogee.room.R1.message");
    let exact = SubjectPattern::exact(&s);
    assert_eq!(exact, pattern("apogee.room.R1.message"));
    assert!(exact.is_exact());
    assert_eq!(exact.as_exact(), Some(s.clone()));
    assert!(exact.matches(&s));
    assert_eq!(SubjectPattern::from(&s), exact);
    assert!(!pattern("a.*").is_exact());
    assert_eq!(pattern("a.>").as_exact(), None);
}

#[test]
fn parse_display_and_debug() {
    let s: Subject = "a.b".parse().unwrap();
    let p: SubjectPattern = "a.*".parse().unwrap();
    assert_eq!(s.to_string(), "a.b");
    assert_eq!(p.to_string(), "a.*");
    assert_eq!(format!("{s:?}"), r#"Subject("a.b")"#);
    assert_eq!(format!("{p:?}"), r#"SubjectPattern("a.*")"#);
    assert_eq!(
        Subject::new("a b").unwrap_err().to_string(),
        "invalid subject `a b`: whitespace or control character"
    );
}
