//! Subscriber profiles: a background task fetches `first_name`, `last_name` and `profile_pic`
//! from the User Profile API and stores them as fields through the subscriber's own shard.
//!
//! A step never waits for the network: after a commit whose session has no fresh profile, the
//! shard asks the [`ProfileQueue`] (bounded, deduplicated, never blocking) for a fetch; the
//! fetch task gets the profile and submits a unit of work ([`crate::process::Work::Profile`])
//! that runs behind the subscriber's other work, so it never races a step's commit of the
//! whole session. A fetch is due when none succeeded in the last [`ProfileSettings::refresh`]
//! (default a day) and none failed in the last [`ProfileSettings::retry`] (default 5 minutes):
//! a failed fetch is logged and retried on a later event or timer of the subscriber.

use crate::clock::Clock;
use crate::dispatcher::PageClients;
use crate::metrics::RuntimeMetrics;
use crate::process::Work;
use crate::scheduler::Shards;
use botflow_messenger::Profile;
use botflow_storage::{PageId, ProfileFetch, Psid, Session};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;

/// The fields a profile fetch stores, in this order.
pub const PROFILE_FIELDS: [&str; 3] = ["first_name", "last_name", "profile_pic"];

/// When and how subscriber profiles are fetched; `Default` suits production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSettings {
    /// Whether profiles are fetched at all. Default true.
    pub enabled: bool,
    /// A successful fetch is repeated after this long. Default 24 hours.
    pub refresh: Duration,
    /// A failed fetch is retried (on a later event or timer) after this long. Default 5 minutes.
    pub retry: Duration,
    /// Subscribers waiting for a fetch at most; more are fetched on a later event. Default 1,024.
    pub queue_capacity: usize,
    /// Fetches in flight at once. Default 4.
    pub concurrency: usize,
}

impl Default for ProfileSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            refresh: Duration::from_secs(24 * 3600),
            retry: Duration::from_secs(300),
            queue_capacity: 1_024,
            concurrency: 4,
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl ProfileSettings {
    /// Whether `session` needs a fetch at `now_ms`: none succeeded within `refresh` and none
    /// failed within `retry`.
    pub fn fetch_due(&self, session: &Session, now_ms: u64) -> bool {
        if !self.enabled {
            return false;
        }
        let Some(fetch) = &session.profile else {
            return true;
        };
        let within = |at: Option<u64>, period: Duration| {
            at.is_some_and(|at| now_ms.saturating_sub(at) < millis(period))
        };
        !within(fetch.fetched_ms, self.refresh) && !within(fetch.failed_ms, self.retry)
    }
}

/// Stores a fetch's outcome in `session`. A profile value goes into its field unless a flow set
/// that field to something else since the last fetch (a field that is unset, empty or still
/// holds the last fetched value is overwritten; an empty profile value removes it). A failure
/// only records its time, keeping the fields as they are.
pub fn apply_profile(session: &mut Session, fetched: &Result<Profile, String>, now_ms: u64) {
    let Session {
        fields, profile, ..
    } = session;
    let record = profile.get_or_insert_with(ProfileFetch::default);
    let profile = match fetched {
        Ok(profile) => profile,
        Err(_) => {
            record.failed_ms = Some(now_ms);
            return;
        }
    };
    let values = [
        &profile.first_name,
        &profile.last_name,
        &profile.profile_pic,
    ];
    let mut stored = std::collections::BTreeMap::new();
    for (name, value) in PROFILE_FIELDS.into_iter().zip(values) {
        let ours = fields
            .get(name)
            .is_none_or(|current| current.is_empty() || record.values.get(name) == Some(current));
        if !ours {
            continue;
        }
        if value.is_empty() {
            fields.remove(name);
        } else {
            fields.insert(name.to_owned(), value.clone());
            stored.insert(name.to_owned(), value.clone());
        }
    }
    record.values = stored;
    record.fetched_ms = Some(now_ms);
    record.failed_ms = None;
}

type Subscriber = (PageId, Psid);

/// Subscribers waiting for a profile fetch: bounded, deduplicated, never blocking the caller.
#[derive(Debug)]
pub(crate) struct ProfileQueue {
    sender: mpsc::Sender<Subscriber>,
    /// Subscribers queued, fetching or waiting for their result to be stored, with when they
    /// were queued; an entry older than the retry period is taken as lost (its work failed).
    queued: Mutex<HashMap<Subscriber, u64>>,
    retry_ms: u64,
    capacity: usize,
}

impl ProfileQueue {
    /// A queue and the receiver the fetch task reads.
    pub(crate) fn new(settings: &ProfileSettings) -> (Arc<Self>, mpsc::Receiver<Subscriber>) {
        let capacity = settings.queue_capacity.max(1);
        let (sender, receiver) = mpsc::channel(capacity);
        let queue = Self {
            sender,
            queued: Mutex::new(HashMap::new()),
            retry_ms: millis(settings.retry),
            capacity,
        };
        (Arc::new(queue), receiver)
    }

    fn queued(&self) -> std::sync::MutexGuard<'_, HashMap<Subscriber, u64>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks for a fetch for the subscriber unless one is already on its way; when the queue is
    /// full the request is dropped (the next event of the subscriber asks again).
    pub(crate) fn request(&self, page: &PageId, psid: &Psid, now_ms: u64) {
        let key = (page.clone(), psid.clone());
        {
            let mut queued = self.queued();
            if queued
                .get(&key)
                .is_some_and(|at| now_ms.saturating_sub(*at) < self.retry_ms.max(1))
            {
                return;
            }
            if queued.len() >= self.capacity * 2 {
                // Only lost entries can pile up beyond the queue: forget them.
                let retry_ms = self.retry_ms;
                queued.retain(|_, at| now_ms.saturating_sub(*at) < retry_ms);
            }
            queued.insert(key.clone(), now_ms);
        }
        if self.sender.try_send(key.clone()).is_err() {
            tracing::debug!(%page, %psid, "profile queue full; fetched on a later event");
            self.queued().remove(&key);
        }
    }

    /// Records that the subscriber's fetch result was stored (or given up).
    pub(crate) fn release(&self, page: &PageId, psid: &Psid) {
        self.queued().remove(&(page.clone(), psid.clone()));
    }
}

/// Fetches queued profiles, at most `concurrency` at once, and submits each result as work of
/// its subscriber, until `stop` is notified (fetches in flight are then dropped).
pub(crate) async fn run_profile_fetches(
    mut receiver: mpsc::Receiver<Subscriber>,
    clients: PageClients,
    shards: Arc<Shards>,
    metrics: Arc<RuntimeMetrics>,
    clock: Arc<dyn Clock>,
    concurrency: usize,
    stop: Arc<Notify>,
) {
    let mut running = JoinSet::new();
    let concurrency = concurrency.max(1);
    loop {
        let next = tokio::select! {
            () = stop.notified() => break,
            Some(_) = running.join_next(), if !running.is_empty() => continue,
            next = receiver.recv(), if running.len() < concurrency => next,
        };
        let Some((page, psid)) = next else { break };
        let Some(client) = clients.for_page(&page).cloned() else {
            tracing::warn!(%page, "no Send API client for the Page; profile not fetched");
            continue;
        };
        let (shards, metrics, clock) = (
            Arc::clone(&shards),
            Arc::clone(&metrics),
            Arc::clone(&clock),
        );
        running.spawn(async move {
            let fetched = client
                .fetch_profile(psid.as_str())
                .await
                .map_err(|error| error.to_string());
            match &fetched {
                Ok(_) => metrics.profiles_fetched.inc(),
                Err(error) => {
                    metrics.profile_fetches_failed.inc();
                    tracing::warn!(%page, %psid, %error, "profile fetch failed; retried later");
                }
            }
            let work = Work::Profile {
                page,
                psid,
                fetched,
                at_ms: clock.now_ms(),
            };
            if shards.submit(work).await.is_err() {
                tracing::debug!("runtime shutting down; profile not stored");
            }
        });
    }
    running.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(first: &str) -> Result<Profile, String> {
        Ok(Profile {
            first_name: first.into(),
            last_name: "Doe".into(),
            profile_pic: String::new(),
        })
    }

    #[test]
    fn stores_names_and_keeps_a_field_the_flow_set() {
        let mut session = Session::default();
        apply_profile(&mut session, &profile("Ada"), 10);
        assert_eq!(session.fields["first_name"], "Ada");
        assert_eq!(session.fields["last_name"], "Doe");
        assert!(!session.fields.contains_key("profile_pic"));
        // A refresh updates what came from the profile...
        apply_profile(&mut session, &profile("Ana"), 20);
        assert_eq!(session.fields["first_name"], "Ana");
        // ...but not what a flow set itself since.
        session.fields.insert("first_name".into(), "Boss".into());
        apply_profile(&mut session, &profile("Eve"), 30);
        assert_eq!(session.fields["first_name"], "Boss");
        assert_eq!(session.profile.as_ref().unwrap().fetched_ms, Some(30));
    }

    #[test]
    fn a_failure_keeps_the_fields_and_backs_off() {
        let settings = ProfileSettings::default();
        let mut session = Session::default();
        assert!(settings.fetch_due(&session, 0));
        apply_profile(&mut session, &profile("Ada"), 0);
        let day = millis(settings.refresh);
        assert!(!settings.fetch_due(&session, day - 1));
        assert!(settings.fetch_due(&session, day));
        apply_profile(&mut session, &Err("down".into()), day);
        assert_eq!(session.fields["first_name"], "Ada");
        assert!(!settings.fetch_due(&session, day + 1));
        assert!(settings.fetch_due(&session, day + millis(settings.retry)));
        let disabled = ProfileSettings {
            enabled: false,
            ..settings
        };
        assert!(!disabled.fetch_due(&Session::default(), 0));
    }
}
