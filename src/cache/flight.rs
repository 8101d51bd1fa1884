//! Single flight: one piece of work per key at a time; later callers follow it and share its result.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::sync::LockExt;

/// Why a flight gave no result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlightError {
    #[error("waited longer than the flight wait")]
    Timeout,
    #[error("the leading task failed: {0}")]
    Lost(String),
}

type Outcome<T, E> = Shared<BoxFuture<'static, Result<T, E>>>;
type Map<K, T, E> = Arc<Mutex<HashMap<K, Outcome<T, E>>>>;

/// Flights in progress, by key. Cloning shares them.
pub struct Flights<K, T, E> {
    map: Map<K, T, E>,
    wait: Duration,
}

impl<K, T, E> Clone for Flights<K, T, E> {
    fn clone(&self) -> Self {
        Self { map: self.map.clone(), wait: self.wait }
    }
}

/// What `join` made of the caller: the first one leads (does the work), later ones follow.
pub enum Flight<K: Hash + Eq, T, E> {
    Lead(Leader<K, T, E>),
    Follow(Follower<T, E>),
}

/// The right to do a key's work. Dropped without `run`, it ends the flight (followers get `Lost`).
pub struct Leader<K: Hash + Eq, T, E> {
    tx: oneshot::Sender<Result<T, E>>,
    outcome: Outcome<T, E>,
    wait: Duration,
    _landing: Landing<K, T, E>,
}

/// A place in another caller's flight.
pub struct Follower<T, E> {
    outcome: Outcome<T, E>,
    wait: Duration,
    // Held while waiting: the waiter gauge drops even if this request is cancelled.
    _waiter: crate::telemetry::metrics::FlightWaiter,
}

/// Takes the key off the map when the leading work ends, however it ends (a panic included).
struct Landing<K: Hash + Eq, T, E> {
    map: Map<K, T, E>,
    key: Option<K>,
}

impl<K: Hash + Eq, T, E> Drop for Landing<K, T, E> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.map.locked().remove(&key);
        }
    }
}

impl<K, T, E> Flights<K, T, E>
where
    K: Hash + Eq + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + From<FlightError> + Send + Sync + 'static,
{
    /// Nobody waits for a flight longer than `wait` (the leader included).
    pub fn new(wait: Duration) -> Self {
        Self { map: Arc::default(), wait }
    }

    /// Keys being worked on right now.
    pub fn in_flight(&self) -> usize {
        self.map.locked().len()
    }

    /// Lead the flight of `key`, or follow the one already under way.
    pub fn join(&self, key: &K) -> Flight<K, T, E> {
        let mut map = self.map.locked();
        if let Some(outcome) = map.get(key) {
            return Flight::Follow(Follower {
                outcome: outcome.clone(),
                wait: self.wait,
                _waiter: crate::telemetry::metrics::flight_joined(),
            });
        }
        let (tx, rx) = oneshot::channel();
        let outcome = async move {
            rx.await.unwrap_or_else(|_| Err(FlightError::Lost("it stopped before answering".into()).into()))
        }
        .boxed()
        .shared();
        map.insert(key.clone(), outcome.clone());
        let landing = Landing { map: self.map.clone(), key: Some(key.clone()) };
        Flight::Lead(Leader { tx, outcome, wait: self.wait, _landing: landing })
    }
}

impl<K, T, E> Leader<K, T, E>
where
    K: Hash + Eq + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + From<FlightError> + Send + Sync + 'static,
{
    /// Run `work` in a task of its own (a caller that gives up does not cancel it for the
    /// followers), hand its result to every follower, and return it (waiting at most the flight
    /// wait). The work runs in the caller's tracing span.
    ///
    /// Not an `async fn`: `work` is spawned when this is called, so it is never part of the
    /// caller's future. As an argument of an `async fn` it was: the whole miss path (fetch,
    /// decode, render) sat in the state of every request's future, a hit's included, and was
    /// copied on each move of it (50 KB per preview request, profiled).
    pub fn run<F>(self, work: F) -> impl Future<Output = Result<T, E>>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Leader { tx, outcome, wait, _landing: landing } = self;
        tokio::spawn(
            async move {
                let result = work.await;
                // Off the map before the answer: a caller arriving now finds the stored entry.
                drop(landing);
                let _ = tx.send(result);
            }
            .instrument(tracing::Span::current()),
        );
        bounded(wait, outcome)
    }
}

impl<T, E> Follower<T, E>
where
    T: Clone,
    E: Clone + From<FlightError>,
{
    /// The leader's result, or `Timeout` after the flight wait.
    pub async fn wait(self) -> Result<T, E> {
        bounded(self.wait, self.outcome).await
    }
}

async fn bounded<T: Clone, E: Clone + From<FlightError>>(
    wait: Duration,
    outcome: Outcome<T, E>,
) -> Result<T, E> {
    tokio::time::timeout(wait, outcome).await.unwrap_or_else(|_| Err(FlightError::Timeout.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Test = Flights<u32, u32, FlightError>;

    #[tokio::test]
    async fn followers_share_the_leaders_work() {
        let flights = Test::new(Duration::from_secs(5));
        let runs = Arc::new(AtomicUsize::new(0));
        let Flight::Lead(lead) = flights.join(&1) else { panic!("first caller leads") };
        let Flight::Follow(follow) = flights.join(&1) else { panic!("second caller follows") };
        assert_eq!(flights.in_flight(), 1);
        let r = runs.clone();
        let led = lead.run(async move {
            r.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(7)
        });
        let (led, followed) = tokio::join!(led, follow.wait());
        assert_eq!((led.unwrap(), followed.unwrap()), (7, 7));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0, "the key lands with the work");
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_cancel_the_work() {
        let flights = Test::new(Duration::from_secs(5));
        let Flight::Lead(lead) = flights.join(&1) else { panic!("leads") };
        let Flight::Follow(follow) = flights.join(&1) else { panic!("follows") };
        let led = tokio::spawn(lead.run(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(3)
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
        led.abort();
        assert_eq!(follow.wait().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn waits_are_bounded_and_a_dropped_leader_ends_the_flight() {
        let flights = Test::new(Duration::from_millis(30));
        let Flight::Lead(lead) = flights.join(&1) else { panic!("leads") };
        let Flight::Follow(follow) = flights.join(&1) else { panic!("follows") };
        let slow = lead.run(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(1)
        });
        let (a, b) = tokio::join!(slow, follow.wait());
        assert!(matches!(a, Err(FlightError::Timeout)) && matches!(b, Err(FlightError::Timeout)));

        let Flight::Lead(lead) = flights.join(&2) else { panic!("leads") };
        let Flight::Follow(follow) = flights.join(&2) else { panic!("follows") };
        drop(lead);
        assert!(matches!(follow.wait().await, Err(FlightError::Lost(_))));
        assert!(matches!(flights.join(&2), Flight::Lead(_)), "a new caller leads again");
    }
}
