use rand::Rng;

/// Meteor's `Random.id()` alphabet: ids look like Rocket.Chat's, so clients that sniff them work.
const UNMISTAKABLE: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Returns a new 17-character id in Meteor's alphabet.
pub fn random_id() -> String {
    random_id_of(17)
}

/// Returns a `len`-character id in Meteor's alphabet (`Random.id(len)`: webhook tokens are 48).
pub fn random_id_of(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| UNMISTAKABLE[rng.random_range(0..UNMISTAKABLE.len())] as char).collect()
}

/// Returns a 43-character secret (login tokens), as Meteor's `Random.secret()`.
pub fn random_secret() -> String {
    let mut rng = rand::rng();
    (0..43).map(|_| URL_SAFE[rng.random_range(0..URL_SAFE.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_meteor_shape() {
        let id = random_id();
        assert_eq!(id.len(), 17);
        assert!(id.bytes().all(|b| UNMISTAKABLE.contains(&b)));
        assert_ne!(random_id(), id);
        assert_eq!(random_secret().len(), 43);
        assert_eq!(random_id_of(48).len(), 48);
    }
}
