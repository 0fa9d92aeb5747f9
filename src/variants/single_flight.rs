//! Concurrent first requests for the same variant render it once: the first
//! becomes the leader, the others follow and get its outcome. A leader that
//! goes away without an outcome (its request was dropped) lets a follower
//! take over.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

pub struct SingleFlight<K, V> {
    flights: Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>,
}

pub enum Joined<K: Hash + Eq, V> {
    /// Do the work, then [`Leader::finish`].
    Leader(Leader<K, V>),
    /// Wait for the leader's outcome with [`follow`].
    Follower(watch::Receiver<Option<V>>),
}

pub struct Leader<K: Hash + Eq, V> {
    key: K,
    sender: watch::Sender<Option<V>>,
    flights: Arc<Mutex<HashMap<K, watch::Receiver<Option<V>>>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self { flights: Arc::default() }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> SingleFlight<K, V> {
    pub fn join(&self, key: &K) -> Joined<K, V> {
        let mut flights = self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(receiver) = flights.get(key) {
            return Joined::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        flights.insert(key.clone(), receiver);
        Joined::Leader(Leader { key: key.clone(), sender, flights: self.flights.clone() })
    }
}

impl<K: Hash + Eq, V> Leader<K, V> {
    pub fn finish(self, outcome: V) {
        self.sender.send_replace(Some(outcome));
    }
}

impl<K: Hash + Eq, V> Drop for Leader<K, V> {
    fn drop(&mut self) {
        self.flights.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.key);
    }
}

/// The leader's outcome; `None` when it went away without one.
pub async fn follow<V: Clone>(mut receiver: watch::Receiver<Option<V>>) -> Option<V> {
    receiver.wait_for(Option::is_some).await.ok().and_then(|outcome| outcome.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_outcome_and_take_over_when_it_leaves() {
        let flights = SingleFlight::<u32, &'static str>::default();
        let Joined::Leader(leader) = flights.join(&1) else { panic!("the first one leads") };
        let Joined::Follower(follower) = flights.join(&1) else { panic!("the second one follows") };
        assert!(matches!(flights.join(&2), Joined::Leader(_)), "another key has its own flight");
        leader.finish("done");
        assert_eq!(follow(follower).await, Some("done"));
        assert!(matches!(flights.join(&1), Joined::Leader(_)), "a finished flight is gone");

        let Joined::Leader(leader) = flights.join(&3) else { panic!() };
        let Joined::Follower(follower) = flights.join(&3) else { panic!() };
        drop(leader);
        assert_eq!(follow(follower).await, None);
        assert!(matches!(flights.join(&3), Joined::Leader(_)));
    }
}
