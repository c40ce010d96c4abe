//! `sinergi.v1.FeedService`.
//!
//! Each stream is served by its own task that reads events after the stream's cursor from the
//! database and pushes the visible ones into a bounded queue. A client that reads slowly fills
//! the queue and holds the task back; one that stays stalled past the configured time gets the
//! queued events and then RESOURCE_EXHAUSTED naming its resume cursor, so no stream makes the
//! server hold more than one queue's worth of events.

pub mod convert;

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use time::OffsetDateTime;
use tokio::sync::{
    mpsc::{self, error::SendTimeoutError},
    watch,
};
use tokio::time::Instant;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::principal;
use crate::auth::AuthError;
use crate::auth::principal::Principal;
use crate::auth::registry::AuthRegistry;
use crate::config::FeedConfig;
use crate::domain::Violations;
use crate::domain::feed::{FeedEvent, FeedEventType};
use crate::domain::region::RegionCode;
use crate::domain::scope::{RegionScope, Scope};
use crate::error::ApiError;
use crate::proto::{self, feed_service_server::FeedService};
use crate::store::Store;
use crate::workers::feed::FeedHub;

/// Events read from the database per query.
const READ_BATCH: u32 = 500;

pub struct FeedApi {
    store: Arc<dyn Store>,
    hub: Arc<FeedHub>,
    registry: Arc<AuthRegistry>,
    config: FeedConfig,
}

impl FeedApi {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Arc<FeedHub>,
        registry: Arc<AuthRegistry>,
        config: FeedConfig,
    ) -> Self {
        Self {
            store,
            hub,
            registry,
            config,
        }
    }
}

type Item = Result<proto::WatchResponse, Status>;

/// What a stream was asked to carry.
struct Selection {
    types: Vec<FeedEventType>,
    region: Option<RegionCode>,
}

/// What the caller may read, judged afresh for every batch of events.
struct Rights {
    principal: Principal,
    feed: RegionScope,
    employers: Option<RegionScope>,
    compliance: Option<RegionScope>,
    inspections: Option<RegionScope>,
    sanctions: Option<RegionScope>,
    referrals: Option<RegionScope>,
}

impl Rights {
    fn judge(principal: &Principal, registry: &AuthRegistry) -> Result<Self, ApiError> {
        let principal = principal.refreshed(registry).ok_or_else(|| {
            AuthError::PermissionDenied("the agency or its key is no longer valid".into())
        })?;
        Ok(Self {
            feed: principal.require(Scope::FeedRead)?,
            employers: principal.require(Scope::EmployersRead).ok(),
            compliance: principal.require(Scope::ComplianceRead).ok(),
            inspections: principal.require(Scope::InspectionsRead).ok(),
            sanctions: principal.require(Scope::SanctionsRead).ok(),
            referrals: principal.require(Scope::ReferralsRead).ok(),
            principal,
        })
    }

    fn may_read(&self, event: &FeedEvent, region: &RegionCode) -> bool {
        let scope = match event.read_scope {
            Scope::EmployersRead => self.employers.as_ref(),
            Scope::ComplianceRead => self.compliance.as_ref(),
            Scope::InspectionsRead => self.inspections.as_ref(),
            Scope::SanctionsRead => self.sanctions.as_ref(),
            Scope::ReferralsRead => self.referrals.as_ref(),
            _ => None,
        };
        // A party to a case reads its events wherever its grants reach, as it reads the case.
        if event
            .parties
            .iter()
            .any(|party| party == self.principal.agency_id().as_str())
        {
            return scope.is_some();
        }
        let in_audience = if event.audience.is_empty() {
            event.parties.is_empty()
        } else {
            event.audience.contains(&self.principal.kind())
        };
        in_audience && self.feed.allows(region) && scope.is_some_and(|scope| scope.allows(region))
    }
}

impl Selection {
    fn wants(&self, event: &FeedEvent, region: &RegionCode) -> bool {
        (self.types.is_empty() || self.types.contains(&event.event_type))
            && self
                .region
                .as_ref()
                .is_none_or(|prefix| prefix.contains(region))
    }
}

/// One stream's producer.
struct Subscriber {
    store: Arc<dyn Store>,
    registry: Arc<AuthRegistry>,
    principal: Principal,
    selection: Selection,
    cursor: u64,
    queue: mpsc::Sender<Item>,
    ending: Arc<Mutex<Option<Status>>>,
    heartbeat: Duration,
    patience: Duration,
}

enum Sent {
    Queued,
    /// The client is gone or too slow; the stream is over.
    Stop,
}

impl Subscriber {
    fn end(&self, status: Status) {
        *self.ending.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    async fn send(&self, message: proto::watch_response::Message, resume_after: u64) -> Sent {
        let item = Ok(proto::WatchResponse {
            message: Some(message),
        });
        match self.queue.send_timeout(item, self.patience).await {
            Ok(()) => Sent::Queued,
            Err(SendTimeoutError::Timeout(_)) => {
                self.end(ApiError::SubscriberTooSlow { resume_after }.into());
                Sent::Stop
            }
            Err(SendTimeoutError::Closed(_)) => Sent::Stop,
        }
    }

    async fn send_heartbeat(&self) -> Sent {
        let heartbeat = proto::Heartbeat {
            cursor: self.cursor,
            time: Some(super::convert::timestamp(OffsetDateTime::now_utc())),
        };
        self.send(
            proto::watch_response::Message::Heartbeat(heartbeat),
            self.cursor,
        )
        .await
    }

    /// Streams events as `heads` (this stream's subscription to the feed's head) moves.
    async fn run(mut self, mut heads: watch::Receiver<u64>) {
        let mut last_sent = Instant::now();
        // A withdrawn grant, revoked key or disabled agency ends the stream as soon as this
        // replica's view of them changes, idle or not.
        let mut rights_changed = self.registry.changes();
        loop {
            rights_changed.mark_unchanged();
            let rights = match Rights::judge(&self.principal, &self.registry) {
                Ok(rights) => rights,
                Err(error) => return self.end(error.into()),
            };
            if *heads.borrow_and_update() <= self.cursor {
                tokio::select! {
                    changed = heads.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = rights_changed.changed() => {}
                    () = tokio::time::sleep_until(last_sent + self.heartbeat) => {
                        if let Sent::Stop = self.send_heartbeat().await {
                            return;
                        }
                        last_sent = Instant::now();
                    }
                }
                continue;
            }
            let events = match self.store.feed_events(self.cursor, READ_BATCH).await {
                Ok(events) => events,
                Err(error) => return self.end(ApiError::from(error).into()),
            };
            if events.is_empty() {
                // The head moved but the rows are not readable here yet: wait for the next
                // move rather than spin.
                if heads.changed().await.is_err() {
                    return;
                }
                continue;
            }
            for event in events {
                let seq = event.seq;
                let visible = RegionCode::parse(&event.region_code).is_ok_and(|region| {
                    self.selection.wants(&event, &region) && rights.may_read(&event, &region)
                });
                if visible {
                    let message = proto::watch_response::Message::Event(convert::feed_event(event));
                    if let Sent::Stop = self.send(message, seq - 1).await {
                        return;
                    }
                    last_sent = Instant::now();
                }
                self.cursor = seq;
            }
            if last_sent.elapsed() >= self.heartbeat {
                if let Sent::Stop = self.send_heartbeat().await {
                    return;
                }
                last_sent = Instant::now();
            }
        }
    }
}

/// The response stream: the queued events, then the status that ended the stream, if any.
/// Dropping it (the client went away) stops the producer.
pub struct Subscription {
    queue: mpsc::Receiver<Item>,
    ending: Arc<Mutex<Option<Status>>>,
    producer: tokio::task::JoinHandle<()>,
}

impl Stream for Subscription {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        match self.queue.poll_recv(cx) {
            Poll::Ready(None) => Poll::Ready(
                self.ending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .map(Err),
            ),
            other => other,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.producer.abort();
    }
}

#[tonic::async_trait]
impl FeedService for FeedApi {
    type WatchStream = Subscription;

    async fn watch(
        &self,
        request: Request<proto::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let principal = principal(&request)?;
        principal.require(Scope::FeedRead)?;
        let request = request.into_inner();

        let mut violations = Violations::new();
        let mut types = Vec::new();
        for (index, value) in request.types.iter().enumerate() {
            if let Some(event_type) =
                violations.check(&format!("types[{index}]"), convert::feed_event_type(*value))
            {
                types.push(event_type);
            }
        }
        let region = request
            .region_prefix
            .map(|region| region.code)
            .filter(|code| !code.trim().is_empty())
            .and_then(|code| violations.check("region_prefix.code", RegionCode::parse(&code)));
        violations.finish().map_err(ApiError::from)?;

        let head = self.store.feed_head().await.map_err(ApiError::from)?;
        self.hub.advance(head);
        let cursor = match request.after_cursor {
            None => head,
            Some(after) if after <= head => after,
            Some(after) => {
                return Err(ApiError::invalid(
                    "after_cursor",
                    format!("{after} is past the end of the feed ({head})"),
                )
                .into());
            }
        };

        let (queue, receiver) = mpsc::channel(self.config.subscriber_queue.max(1));
        let ending = Arc::new(Mutex::new(None));
        let subscriber = Subscriber {
            store: Arc::clone(&self.store),
            registry: Arc::clone(&self.registry),
            principal,
            selection: Selection { types, region },
            cursor,
            queue,
            ending: Arc::clone(&ending),
            heartbeat: Duration::from_millis(self.config.heartbeat_interval_ms.max(10)),
            patience: Duration::from_millis(self.config.slow_subscriber_timeout_ms.max(1)),
        };
        Ok(Response::new(Subscription {
            queue: receiver,
            ending,
            // Subscribed here rather than in the task, so the stream counts as a subscriber
            // from the moment it is answered.
            producer: tokio::spawn(subscriber.run(self.hub.subscribe())),
        }))
    }
}
