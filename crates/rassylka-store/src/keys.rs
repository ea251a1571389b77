//! Knowing, without looking, that no delivery key of a freeze repeats.

use crate::NewDelivery;

/// Watches the deliveries of a freeze in order and says whether no key can have been written
/// twice: true while recipient ids come in strictly ascending order (shorter first, then by
/// text, so `9` comes before `10`) and no recipient has the same key twice. A backend may then
/// skip its look for repeated keys, which costs a sort of the whole occurrence.
#[derive(Debug, Clone)]
pub struct KeyOrder {
    unique: bool,
    recipient: String,
    keys: Vec<String>,
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

impl KeyOrder {
    /// Takes the next delivery written.
    pub fn observe(&mut self, delivery: &NewDelivery) {
        if !self.unique {
            return;
        }
        let id = delivery.recipient_id.as_str();
        if id == self.recipient && !self.keys.is_empty() {
            if self.keys.contains(&delivery.delivery_key) {
                self.unique = false;
            } else {
                self.keys.push(delivery.delivery_key.clone());
            }
            return;
        }
        let last = self.recipient.as_str();
        if !self.keys.is_empty() && (last.len(), last.as_bytes()) >= (id.len(), id.as_bytes()) {
            self.unique = false;
            return;
        }
        self.recipient.clear();
        self.recipient.push_str(id);
        self.keys.clear();
        self.keys.push(delivery.delivery_key.clone());
    }

    /// Whether every key observed so far is known to be unique.
    pub fn unique(&self) -> bool {
        self.unique
    }
}
