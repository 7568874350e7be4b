//! The OTN token rules as a plain in-memory model, the one statement of them outside the
//! store: `botflow simulate` runs conversations on it, and the store's model test checks the
//! sled store against it operation by operation.
//!
//! The rules: a token is usable until it is spent, invalidated or past its expiry; a token send
//! takes the holder's oldest usable token of the topic (by creation time, then value), marking
//! the expired ones it meets on the way; invalidation applies to usable and spent tokens.

/// What became of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    /// Waiting to pay for a message.
    Usable,
    /// Paid for a message.
    Spent,
    /// Messenger said it cannot be used (or its topic was deleted).
    Invalid,
    /// Found past its expiry.
    Expired,
}

/// One token: whose it is (`K`, e.g. subscriber and topic), its value and lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleToken<K> {
    /// The holder and topic.
    pub key: K,
    /// The token's value.
    pub name: String,
    /// When the opt-in happened.
    pub created_ms: u64,
    /// When it stops being usable.
    pub expires_ms: u64,
    /// Its state.
    pub state: RuleState,
}

/// Every token, under the rules above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRules<K> {
    /// The tokens in the order they were added.
    pub tokens: Vec<RuleToken<K>>,
}

impl<K> Default for TokenRules<K> {
    fn default() -> Self {
        Self { tokens: Vec::new() }
    }
}

impl<K: Clone + PartialEq> TokenRules<K> {
    /// Adds a usable token; a value seen before is a no-op (false), as a redelivered opt-in is.
    pub fn add(&mut self, key: K, name: &str, created_ms: u64, expires_ms: u64) -> bool {
        if self.tokens.iter().any(|t| t.name == name) {
            return false;
        }
        self.tokens.push(RuleToken {
            key,
            name: name.to_owned(),
            created_ms,
            expires_ms,
            state: RuleState::Usable,
        });
        true
    }

    /// Takes `key`'s oldest usable token at `now_ms` for a send, marking expired ones on the way;
    /// returns the token taken, if any, and how many were found expired.
    pub fn take_oldest(&mut self, key: &K, now_ms: u64) -> (Option<String>, u64) {
        let mut mine: Vec<&mut RuleToken<K>> = self
            .tokens
            .iter_mut()
            .filter(|t| t.key == *key && t.state == RuleState::Usable)
            .collect();
        mine.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
        let (mut taken, mut expired) = (None, 0);
        for token in mine {
            if token.expires_ms <= now_ms {
                token.state = RuleState::Expired;
                expired += 1;
            } else if taken.is_none() {
                token.state = RuleState::Spent;
                taken = Some(token.name.clone());
            }
        }
        (taken, expired)
    }

    /// `key`'s usable tokens at `now_ms`, oldest first (the order sends take them in).
    pub fn usable(&self, key: &K, now_ms: u64) -> Vec<String> {
        let mut usable: Vec<&RuleToken<K>> = self
            .tokens
            .iter()
            .filter(|t| t.key == *key && t.state == RuleState::Usable && now_ms < t.expires_ms)
            .collect();
        usable.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
        usable.into_iter().map(|t| t.name.clone()).collect()
    }

    /// Whether `key` holds a token not yet spent, invalidated or marked expired (a holder, as the
    /// store lists them, even when its expiry has passed unnoticed).
    pub fn holds(&self, key: &K) -> bool {
        self.tokens
            .iter()
            .any(|t| t.key == *key && t.state == RuleState::Usable)
    }

    /// Invalidates the token with this value; returns whether it was usable.
    pub fn invalidate(&mut self, name: &str) -> bool {
        let Some(token) = self.tokens.iter_mut().find(|t| t.name == name) else {
            return false;
        };
        let was_usable = token.state == RuleState::Usable;
        if matches!(token.state, RuleState::Usable | RuleState::Spent) {
            token.state = RuleState::Invalid;
        }
        was_usable
    }

    /// Marks every usable token past its expiry at `now_ms` expired; returns how many.
    pub fn expire(&mut self, now_ms: u64) -> u64 {
        let mut expired = 0;
        for token in self
            .tokens
            .iter_mut()
            .filter(|t| t.state == RuleState::Usable && t.expires_ms <= now_ms)
        {
            token.state = RuleState::Expired;
            expired += 1;
        }
        expired
    }
}

impl<K: Clone + Ord> TokenRules<K> {
    /// The usable token count at `now_ms` of every key holding one.
    pub fn usable_counts(&self, now_ms: u64) -> std::collections::BTreeMap<K, u32> {
        let mut counts = std::collections::BTreeMap::new();
        for token in self
            .tokens
            .iter()
            .filter(|t| t.state == RuleState::Usable && now_ms < t.expires_ms)
        {
            *counts.entry(token.key.clone()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_takes_the_oldest_usable_token_and_marks_expired_ones_it_meets() {
        let mut rules = TokenRules::default();
        assert!(rules.add("t", "young", 20, 1_000));
        assert!(rules.add("t", "stale", 5, 50));
        assert!(rules.add("t", "old", 10, 1_000));
        assert!(
            !rules.add("t", "old", 11, 2_000),
            "a redelivered opt-in is a no-op"
        );
        assert_eq!(rules.usable(&"t", 100), ["old", "young"]);
        assert_eq!(rules.take_oldest(&"t", 100), (Some("old".to_owned()), 1));
        assert!(rules.invalidate("young"));
        assert!(!rules.invalidate("old"), "a spent token was not usable");
        assert_eq!(rules.take_oldest(&"t", 100), (None, 0));
        let states: Vec<RuleState> = rules.tokens.iter().map(|t| t.state).collect();
        assert_eq!(
            states,
            [RuleState::Invalid, RuleState::Expired, RuleState::Invalid]
        );
    }
}
