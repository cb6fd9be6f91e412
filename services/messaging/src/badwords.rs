//! The bad-words filter (`Message_AllowBadWordsFilter`), as Rocket.Chat runs it: the `bad-words`
//! npm filter with its default list plus `Message_BadWordsFilterList`, minus
//! `Message_BadWordsWhitelist`.
//!
//! That filter splits the text at ASCII word boundaries (JavaScript's `\b`) and tests each piece
//! against `\b<word>\b`, case-insensitively. A piece is either all word characters
//! (`[A-Za-z0-9_]`) or none, so a piece is bad exactly when it equals a listed word that is
//! itself all word characters; listed phrases and words with other characters never match. A
//! bad piece loses its underscores and every other character becomes `*`.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The default list (see the file's header for where it comes from).
const DEFAULT_LIST: &str = include_str!("../data/badwords.txt");

fn default_words() -> &'static HashSet<String> {
    static WORDS: OnceLock<HashSet<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        DEFAULT_LIST
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_ascii_lowercase)
            .collect()
    })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The filter as configured by the two settings' comma-separated lists.
pub(crate) struct BadWords {
    extra: HashSet<String>,
    allowed: HashSet<String>,
}

impl BadWords {
    pub(crate) fn new(list: &str, whitelist: &str) -> Self {
        let extra = list.split(',').map(str::trim).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase);
        // The whitelist is lowercased with JavaScript's full `toLowerCase`; list words that can
        // match are ASCII, so ASCII lowercasing compares the same.
        let allowed = whitelist.split(',').map(|w| w.trim().to_lowercase());
        Self { extra: extra.collect(), allowed: allowed.collect() }
    }

    fn is_bad(&self, piece: &str) -> bool {
        let lower = piece.to_ascii_lowercase();
        !self.allowed.contains(&lower) && (self.extra.contains(&lower) || default_words().contains(&lower))
    }

    /// `text` with every bad word masked.
    pub(crate) fn clean(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut start = 0;
        while start < bytes.len() {
            let word = is_word_byte(bytes[start]);
            let mut end = start + 1;
            while end < bytes.len() && is_word_byte(bytes[end]) == word {
                end += 1;
            }
            // Word pieces are ASCII, so slicing at their ends stays on char boundaries; non-word
            // pieces run to the next ASCII word byte, which is a boundary too.
            let piece = &text[start..end];
            if word && self.is_bad(piece) {
                out.extend(piece.chars().filter(|c| *c != '_').map(|_| '*'));
            } else {
                out.push_str(piece);
            }
            start = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_words_only_case_insensitively() {
        let filter = BadWords::new("", "");
        assert_eq!(filter.clean("you are a Bitch!"), "you are a *****!");
        assert_eq!(filter.clean("bitchy is not listed"), "bitchy is not listed");
        assert_eq!(filter.clean("clean text"), "clean text");
        assert_eq!(filter.clean(""), "");
    }

    #[test]
    fn custom_list_and_whitelist() {
        let filter = BadWords::new(" foo, bar_baz ,,", "bitch, FOO");
        // `foo` is both listed and whitelisted: the whitelist wins, as in the npm filter.
        assert_eq!(filter.clean("foo BAR_BAZ bitch"), "foo ****** bitch");
        let filter = BadWords::new("naïve, two words", "");
        assert_eq!(filter.clean("naïve two words"), "naïve two words");
    }

    #[test]
    fn splits_at_ascii_word_boundaries() {
        let filter = BadWords::new("caf", "");
        // `é` is not an ASCII word character, so `café` is the pieces `caf` and `é`.
        assert_eq!(filter.clean("café (caf)"), "***é (***)");
        assert_eq!(filter.clean("日本 caf"), "日本 ***");
    }
}
