//! Knowing, without looking, that no delivery key of a freeze repeats.

use crate::NewDelivery;

/// Watches the deliveries of a freeze in order and says whether no key can have been written
/// twice: true while recipient ids come in strictly ascending order (shorter first, then by
/// text, so `9` comes before `10`) and no recipient has the same key twice. A backend may then
/// skip its look for repeated keys, which costs a sort of the whole occurrence. It allocates
/// nothing per delivery: a recipient's keys are kept as hashes, and two equal hashes count as a
/// repeat (at worst the look is made when it was not needed).
#[derive(Debug, Clone)]
pub struct KeyOrder {
    unique: bool,
    recipient: String,
    keys: Vec<u64>,
}

impl Default for KeyOrder {
    fn default() -> Self {
        KeyOrder {
            unique: true,
            recipient: String::new(),
            keys: Vec::new(),
        }
    }
}

fn hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

impl KeyOrder {
    /// Takes the next delivery written.
    pub fn observe(&mut self, delivery: &NewDelivery) {
        if !self.unique {
            return;
        }
        let id = delivery.recipient_id.as_str();
        let key = hash(&delivery.delivery_key);
        if id == self.recipient && !self.keys.is_empty() {
            if self.keys.contains(&key) {
                self.unique = false;
            } else {
                self.keys.push(key);
            }
            return;
        }
        let last = self.recipient.as_str();
        if !self.keys.is_empty() && (last.len(), last.as_bytes()) >= (id.len(), id.as_bytes()) {
            self.unique = false;
            return;
        }
        // One buffer for the whole freeze.
        self.recipient.clear();
        self.recipient.push_str(id);
        self.keys.clear();
        self.keys.push(key);
    }

    /// Whether every key observed so far is known to be unique.
    pub fn unique(&self) -> bool {
        self.unique
    }
}
