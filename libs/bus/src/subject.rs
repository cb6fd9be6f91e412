//! Subjects and subject patterns, with NATS semantics so that the embedded bus and NATS agree on
//! what a subscription receives.

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::BusError;

/// A concrete subject events are published on, such as `apogee.room.GENERAL.message`.
///
/// A subject is one or more tokens separated by `.`. A token is non-empty and holds no
/// whitespace, no control character and neither wildcard character (`*`, `>`). Cloning is cheap
/// (a reference count), since every delivered [`Event`](crate::Event) carries its subject.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject(Arc<str>);

/// A subscription's interest: a subject whose tokens may be wildcards.
///
/// - `*` matches exactly one token: `apogee.room.*.message` matches `apogee.room.R1.message`.
/// - `>` matches one or more trailing tokens and may only be the last token: `apogee.all.>`
///   matches `apogee.all.roles` and `apogee.all.emoji.changed`, but not `apogee.all`.
///
/// Wildcards are whole tokens; `a*` or `a.b>` is rejected rather than taken literally.
#[derive(Clone)]
pub struct SubjectPattern {
    /// The pattern as written, for display and equality.
    raw: Arc<str>,
    /// `raw` split on `.`, parsed once so that matching never re-parses.
    tokens: Box<[PatternToken]>,
}

#[derive(Clone, Debug)]
enum PatternToken {
    Literal(Box<str>),
    /// `*`
    One,
    /// `>`
    Rest,
}

// === impl Subject ===

impl Subject {
    /// Parses and validates a subject.
    pub fn new(subject: &str) -> Result<Self, BusError> {
        for token in subject.split('.') {
            if let Err(reason) = check_literal_token(token) {
                return Err(BusError::InvalidSubject { subject: subject.to_owned(), reason });
            }
        }
        Ok(Self(subject.into()))
    }

    /// Builds a subject from its tokens, validating each one. Unlike formatting a string, a
    /// token that itself contains a `.` (say, an id from a client) is an error here instead of
    /// silently becoming two tokens.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, BusError> {
        let mut subject = String::new();
        let mut bad_token = None;
        for (index, token) in tokens.into_iter().enumerate() {
            if index > 0 {
                subject.push('.');
            }
            subject.push_str(token);
            if bad_token.is_none() {
                bad_token = check_literal_token(token).err();
                if bad_token.is_none() && token.contains('.') {
                    bad_token = Some("a token contains `.`");
                }
            }
        }
        if subject.is_empty() && bad_token.is_none() {
            bad_token = Some("no tokens");
        }
        match bad_token {
            Some(reason) => Err(BusError::InvalidSubject { subject, reason }),
            None => Ok(Self(subject.into())),
        }
    }

    /// Returns the subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the subject's tokens in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl FromStr for Subject {
    type Err = BusError;

    fn from_str(subject: &str) -> Result<Self, BusError> {
        Self::new(subject)
    }
}

impl AsRef<str> for Subject {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({:?})", &*self.0)
    }
}

// === impl SubjectPattern ===

impl SubjectPattern {
    /// Parses and validates a pattern.
    pub fn new(pattern: &str) -> Result<Self, BusError> {
        let invalid = |reason| BusError::InvalidPattern { pattern: pattern.to_owned(), reason };
        let token_count = pattern.split('.').count();
        let mut tokens = Vec::with_capacity(token_count);
        for (index, token) in pattern.split('.').enumerate() {
            let parsed = match token {
                "*" => PatternToken::One,
                ">" if index + 1 == token_count => PatternToken::Rest,
                ">" => return Err(invalid("`>` is allowed only as the last token")),
                literal => {
                    check_literal_token(literal).map_err(invalid)?;
                    PatternToken::Literal(literal.into())
                }
            };
            tokens.push(parsed);
        }
        Ok(Self { raw: pattern.into(), tokens: tokens.into_boxed_slice() })
    }

    /// Returns the pattern that matches exactly `subject` and nothing else.
    pub fn exact(subject: &Subject) -> Self {
        Self {
            raw: subject.0.clone(),
            tokens: subject.tokens().map(|token| PatternToken::Literal(token.into())).collect(),
        }
    }

    /// Returns the pattern as text.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Returns true if the pattern has no wildcard, so it matches exactly one subject.
    pub fn is_exact(&self) -> bool {
        self.tokens.iter().all(|token| matches!(token, PatternToken::Literal(_)))
    }

    /// Returns the one subject this pattern matches, if it has no wildcard.
    pub fn as_exact(&self) -> Option<Subject> {
        self.is_exact().then(|| Subject(self.raw.clone()))
    }

    /// Returns true if `subject` matches this pattern.
    pub fn matches(&self, subject: &Subject) -> bool {
        let mut subject_tokens = subject.tokens();
        for token in self.tokens.iter() {
            match token {
                PatternToken::Rest => return subject_tokens.next().is_some(),
                PatternToken::One => {
                    if subject_tokens.next().is_none() {
                        return false;
                    }
                }
                PatternToken::Literal(literal) => {
                    if subject_tokens.next() != Some(&**literal) {
                        return false;
                    }
                }
            }
        }
        subject_tokens.next().is_none()
    }
}

impl From<&Subject> for SubjectPattern {
    fn from(subject: &Subject) -> Self {
        Self::exact(subject)
    }
}

impl FromStr for SubjectPattern {
    type Err = BusError;

    fn from_str(pattern: &str) -> Result<Self, BusError> {
        Self::new(pattern)
    }
}

impl AsRef<str> for SubjectPattern {
    fn as_ref(&self) -> &str {
        &self.raw
    }
}

impl PartialEq for SubjectPattern {
    fn eq(&self, other: &Self) -> bool {
        // `tokens` is derived from `raw`.
        self.raw == other.raw
    }
}

impl Eq for SubjectPattern {}

impl std::hash::Hash for SubjectPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl fmt::Display for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for SubjectPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubjectPattern({:?})", &*self.raw)
    }
}

/// Checks one token of a subject, or a non-wildcard token of a pattern. The caller splits on
/// `.`, so the token holds none.
fn check_literal_token(token: &str) -> Result<(), &'static str> {
    if token.is_empty() {
        return Err("empty token");
    }
    for c in token.chars() {
        if c == '*' || c == '>' {
            return Err("wildcards (`*`, `>`) are allowed only as whole tokens of a pattern");
        }
        // Control characters are refused too: NATS' wire protocol is line-based text.
        if c.is_whitespace() || c.is_control() {
            return Err("whitespace or control character");
        }
    }
    Ok(())
}
