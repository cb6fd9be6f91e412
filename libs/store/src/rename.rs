//! A user's new username or name, written into the copies rooms, subscriptions and messages keep
//! of it (Rocket.Chat's `updateUsernameReferences`). What changes is decided here, once, for
//! every backend; the backends only find the candidates and store the changed documents.

use apogee_types::{Message, Millis, Room, RoomType, Subscription};

/// A rename to apply by [`RoomStore::rename_user`](crate::RoomStore::rename_user).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRename {
    pub user_id: String,
    /// The username before the change.
    pub old_username: String,
    /// The new username, when it changed: messages (`u`, `editedBy`, mentions and the `@old` in
    /// their text), rooms (`usernames`, `muted`, the owner `u`), the user's own subscriptions'
    /// `u`, and the `name` of the direct-message subscriptions named after the old username.
    pub username: Option<String>,
    /// The new name, when it changed: the `fname` of those direct-message subscriptions.
    pub name: Option<String>,
    /// The `_updatedAt` of every changed document.
    pub at: Millis,
}

/// What [`RoomStore::rename_user`](crate::RoomStore::rename_user) changed, as stored.
#[derive(Debug, Clone, Default)]
pub struct RenameOutcome {
    pub rooms: Vec<Room>,
    /// With their unread counts.
    pub subscriptions: Vec<Subscription>,
}

impl UserRename {
    /// Whether messages and rooms need looking at (only a new username touches them).
    pub fn renames_username(&self) -> bool {
        self.username.as_deref().is_some_and(|new| new != self.old_username)
    }

    /// Applies the rename to a message; `true` when it changed.
    pub fn apply_to_message(&self, message: &mut Message) -> bool {
        let Some(new) = self.username.as_deref().filter(|_| self.renames_username()) else { return false };
        let mut changed = false;
        if message.u.id == self.user_id && message.u.username != new {
            message.u.username = new.to_owned();
            changed = true;
        }
        if let Some(by) = message.edited_by.as_mut().filter(|by| by.id == self.user_id && by.username != new)
        {
            by.username = new.to_owned();
            changed = true;
        }
        let mut mentioned = false;
        for mention in message.mentions.iter_mut().filter(|m| m.username == self.old_username) {
            mention.username = new.to_owned();
            mentioned = true;
        }
        if mentioned {
            message.msg = replace_mentions(&message.msg, &self.old_username, new);
            changed = true;
        }
        if changed {
            message.updated_at = self.at;
        }
        changed
    }

    /// Applies the rename to a room; `true` when it changed.
    pub fn apply_to_room(&self, room: &mut Room) -> bool {
        let Some(new) = self.username.as_deref().filter(|_| self.renames_username()) else { return false };
        let mut changed = false;
        for name in room.usernames.iter_mut().chain(room.muted.iter_mut()) {
            if *name == self.old_username {
                *name = new.to_owned();
                changed = true;
            }
        }
        if let Some(owner) = room.u.as_mut().filter(|u| u.id == self.user_id && u.username != new) {
            owner.username = new.to_owned();
            changed = true;
        }
        if changed {
            room.updated_at = self.at;
        }
        changed
    }

    /// Applies the rename to a subscription; `true` when it changed.
    pub fn apply_to_subscription(&self, sub: &mut Subscription) -> bool {
        let mut changed = false;
        if let Some(new) = self.username.as_deref().filter(|_| self.renames_username())
            && sub.u.id == self.user_id
            && sub.u.username != new
        {
            sub.u.username = new.to_owned();
            changed = true;
        }
        // The other party's view of a one-to-one direct message is named after the user.
        if sub.t == RoomType::Direct && sub.name == self.old_username {
            if let Some(new) = self.username.as_deref().filter(|new| *new != sub.name) {
                sub.name = new.to_owned();
                changed = true;
            }
            if let Some(name) = self.name.as_deref().filter(|name| sub.fname.as_deref() != Some(name)) {
                sub.fname = Some(name.to_owned());
                changed = true;
            }
        }
        if changed {
            sub.updated_at = self.at;
        }
        changed
    }
}

/// `text` with every `@old` (ASCII case-insensitive) made `@new`, as Rocket.Chat rewrites the
/// messages that mention a renamed user.
/// Whether a username may end where `rest` starts: `@bob` in `@bobby` or `@bob.smith` is not a
/// mention of bob (a dot ends it only when no name character follows).
fn ends_a_username(rest: &str) -> bool {
    let name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut chars = rest.chars();
    match chars.next() {
        None => true,
        Some('.') => !chars.next().is_some_and(name_char),
        Some(c) => !name_char(c),
    }
}

pub fn replace_mentions(text: &str, old: &str, new: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.get(..old.len()) {
            Some(head) if head.eq_ignore_ascii_case(old) && ends_a_username(&after[old.len()..]) => {
                out.push('@');
                out.push_str(new);
                rest = &after[old.len()..];
            }
            _ => {
                out.push('@');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_rewritten_whatever_their_case_and_nothing_else_is() {
        assert_eq!(
            replace_mentions("hi @Bob and @bob, @bobby! @bob.smith @bob. bob@x", "bob", "rob"),
            "hi @rob and @rob, @bobby! @bob.smith @rob. bob@x"
        );
        assert_eq!(replace_mentions("@ @b é@bob", "bob", "rob"), "@ @b é@rob");
        assert_eq!(replace_mentions("nothing", "bob", "rob"), "nothing");
    }
}
