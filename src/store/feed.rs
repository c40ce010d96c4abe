//! The change feed: events queued in the transaction of the change they announce, one by one or
//! as a report batch's bundles, numbered by the sequencer, and read back in order. Instantiated
//! by `sql_store_feed!(StoreType, DatabaseType)`; the store type provides `LOCK_FEED_HEAD` (the
//! sequencer's lock, like the audit log's).

use std::collections::HashMap;

use uuid::Uuid;

use super::StoreError;
use crate::domain::compliance::Report;
use crate::domain::feed::{FeedEvent, FeedEventType, FeedPayload};
use crate::domain::scope::Scope;

/// Marks an agency (rather than an agency kind) in a feed event's stored audience.
const PARTY_PREFIX: &str = "agency:";

#[derive(sqlx::FromRow)]
pub(super) struct FeedRow {
    seq: i64,
    event_type: String,
    time_us: i64,
    employer_id: String,
    region_code: String,
    read_scope: String,
    audience: String,
    source_agency: String,
    payload: String,
}

impl TryFrom<FeedRow> for FeedEvent {
    type Error = StoreError;

    fn try_from(row: FeedRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("feed event {}: {what}", row.seq));
        Ok(FeedEvent {
            seq: u64::try_from(row.seq).map_err(|_| corrupt("seq"))?,
            event_type: FeedEventType::from_stored(&row.event_type)
                .ok_or_else(|| corrupt("type"))?,
            time_us: row.time_us,
            employer_id: Uuid::parse_str(&row.employer_id).map_err(|_| corrupt("employer"))?,
            region_code: row.region_code,
            read_scope: Scope::parse(&row.read_scope).map_err(|_| corrupt("scope"))?,
            audience: row
                .audience
                .split_whitespace()
                .filter(|token| !token.starts_with(PARTY_PREFIX))
                .map(|kind| {
                    crate::domain::agency::AgencyKind::parse(kind)
                        .ok_or_else(|| corrupt("audience"))
                })
                .collect::<Result<_, _>>()?,
            parties: row
                .audience
                .split_whitespace()
                .filter_map(|token| token.strip_prefix(PARTY_PREFIX))
                .map(str::to_owned)
                .collect(),
            source_agency: row.source_agency,
            payload: serde_json::from_str::<FeedPayload>(&row.payload)
                .map_err(|_| corrupt("payload"))?,
        })
    }
}

/// A feed event to write: queued in `feed_pending`, or numbered into `feed_events`.
pub(super) struct FeedInsert {
    pub event_type: &'static str,
    pub time_us: i64,
    pub employer_id: String,
    pub region_code: String,
    pub read_scope: &'static str,
    pub audience: String,
    pub source_agency: String,
    pub payload: String,
}

impl FeedInsert {
    pub fn new(event: &FeedEvent) -> Result<Self, StoreError> {
        Ok(Self {
            event_type: event.event_type.as_str(),
            time_us: event.time_us,
            employer_id: event.employer_id.to_string(),
            region_code: event.region_code.clone(),
            read_scope: event.read_scope.as_str(),
            audience: event
                .audience
                .iter()
                .map(|kind| kind.as_str().to_owned())
                .chain(
                    event
                        .parties
                        .iter()
                        .map(|agency| format!("{PARTY_PREFIX}{agency}")),
                )
                .collect::<Vec<_>>()
                .join(" "),
            source_agency: event.source_agency.clone(),
            payload: serde_json::to_string(&event.payload)
                .map_err(|e| StoreError::Corrupt(format!("feed payload: {e}")))?,
        })
    }
}

/// The feed events of one chunk of a report batch, queued as one `feed_pending` row (see
/// `migrations/*/0011_feed_bundles.sql`): which report each event carries, not the report, so
/// that the batch writes a few bytes per event. The sequencer reads the reports back by id and
/// numbers the events in this order. A stored report never changes but for being superseded,
/// which the event's type says it was or was not when the event happened.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct FeedBundle {
    #[prost(int64, tag = "1")]
    pub time_us: i64,
    #[prost(string, tag = "2")]
    pub source_agency: String,
    #[prost(message, repeated, tag = "3")]
    pub events: Vec<BundledEvent>,
}

/// A report event of a [`FeedBundle`].
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct BundledEvent {
    /// REPORT_SUPERSEDED rather than REPORT_SUBMITTED.
    #[prost(bool, tag = "1")]
    pub superseded: bool,
    /// The report's id, 16 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub report_id: Vec<u8>,
    /// The employer's region when the event happened.
    #[prost(string, tag = "3")]
    pub region_code: String,
}

impl FeedBundle {
    /// The bundle of a chunk's report events, all of one time and source.
    pub fn of(events: &[FeedEvent]) -> Result<Self, StoreError> {
        let first = events
            .first()
            .ok_or_else(|| StoreError::Corrupt("a feed bundle of no events".to_owned()))?;
        let events = events
            .iter()
            .map(|event| match (&event.event_type, &event.payload) {
                (
                    kind @ (FeedEventType::ReportSubmitted | FeedEventType::ReportSuperseded),
                    FeedPayload::Report(report),
                ) => Ok(BundledEvent {
                    superseded: *kind == FeedEventType::ReportSuperseded,
                    report_id: report.id.as_bytes().to_vec(),
                    region_code: event.region_code.clone(),
                }),
                _ => Err(StoreError::Corrupt(format!(
                    "a {} event cannot be bundled",
                    event.event_type.as_str()
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            time_us: first.time_us,
            source_agency: first.source_agency.clone(),
            events,
        })
    }

    pub fn decode_stored(id: i64, stored: &[u8]) -> Result<Self, StoreError> {
        <Self as prost::Message>::decode(stored)
            .map_err(|e| StoreError::Corrupt(format!("queued feed bundle {id}: {e}")))
    }

    /// The ids of the reports the events carry.
    pub fn report_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        self.events
            .iter()
            .map(|event| {
                Uuid::from_slice(&event.report_id).map_err(|_| {
                    StoreError::Corrupt("queued feed bundle: a report id is not 16 bytes".into())
                })
            })
            .collect()
    }

    /// The bundle's events, given the [`Self::report_ids`] and the reports read back by them.
    pub fn unpack(
        &self,
        ids: &[Uuid],
        reports: &HashMap<Uuid, Report>,
    ) -> Result<Vec<FeedInsert>, StoreError> {
        ids.iter()
            .zip(&self.events)
            .map(|(id, event)| {
                let mut report = reports.get(id).cloned().ok_or_else(|| {
                    StoreError::Corrupt(format!("queued feed bundle: report {id} is missing"))
                })?;
                report.superseded = event.superseded;
                let event_type = if event.superseded {
                    FeedEventType::ReportSuperseded
                } else {
                    FeedEventType::ReportSubmitted
                };
                FeedInsert::new(&FeedEvent::new(
                    event_type,
                    self.time_us,
                    &event.region_code,
                    &self.source_agency,
                    FeedPayload::Report(report),
                ))
            })
            .collect()
    }
}

/// A `feed_pending` row a sequencing round takes: one event, or a bundle of `events`.
#[derive(sqlx::FromRow)]
pub(super) struct PendingFeed {
    pub id: i64,
    pub events: i64,
    pub bundled: bool,
}

/// The rows of one sequencing round out of `rows`, in queue order: rows are taken while fewer
/// than `limit` events are, so a round ends within one bundle of `limit`. Whether rows were
/// left over tells the caller the queue is not drained.
pub(super) fn sequencing_round<T>(
    rows: Vec<T>,
    limit: u32,
    events: impl Fn(&T) -> i64,
) -> (Vec<T>, bool) {
    let fetched = rows.len();
    let mut taken_events = 0;
    let round: Vec<T> = rows
        .into_iter()
        .take_while(|row| {
            let take = taken_events < i64::from(limit);
            taken_events += events(row);
            take
        })
        .collect();
    let left_over = round.len() < fetched;
    (round, left_over)
}

/// The columns of a feed event, in `feed_pending` and, after `seq`, in `feed_events`.
pub(super) const FEED_COLUMNS: &str =
    "event_type, time_us, employer_id, region_code, read_scope, audience, source_agency, payload";

/// The start of a multi-row insert of feed events: queued in `feed_pending`, or `numbered`
/// into `feed_events` (their sequence numbers first).
pub(super) fn feed_insert(numbered: bool) -> String {
    if numbered {
        format!("INSERT INTO feed_events (seq, {FEED_COLUMNS}) ")
    } else {
        format!("INSERT INTO feed_pending ({FEED_COLUMNS}) ")
    }
}

macro_rules! sql_store_feed {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Queues feed events for the sequencer, inside the change's transaction.
            async fn insert_feed_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[$crate::domain::feed::FeedEvent],
            ) -> Result<(), $crate::store::StoreError> {
                let rows = events
                    .iter()
                    .map($crate::store::feed::FeedInsert::new)
                    .collect::<Result<Vec<_>, _>>()?;
                for chunk in rows.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                    Self::write_feed_rows(tx, None, chunk).await?;
                }
                Ok(())
            }

            /// Queues a chunk's report events for the sequencer as one bundle (one
            /// `feed_pending` row).
            async fn insert_feed_bundle(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[$crate::domain::feed::FeedEvent],
            ) -> Result<(), $crate::store::StoreError> {
                use prost::Message;

                let bundle = $crate::store::feed::FeedBundle::of(events)?;
                sqlx::query("INSERT INTO feed_pending (events, bundle) VALUES ($1, $2)")
                    .bind(bundle.events.len() as i64)
                    .bind(bundle.encode_to_vec())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            /// The events of a queued bundle, with the reports they carry read back.
            async fn unpack_feed_bundle(
                tx: &mut sqlx::Transaction<'_, $db>,
                id: i64,
                stored: &[u8],
            ) -> Result<Vec<$crate::store::feed::FeedInsert>, $crate::store::StoreError> {
                let bundle = $crate::store::feed::FeedBundle::decode_stored(id, stored)?;
                let ids = bundle.report_ids()?;
                let reports = Self::reports_where(&mut **tx, "id", &ids, None)
                    .await?
                    .into_iter()
                    .map(|report| (report.id, report))
                    .collect();
                bundle.unpack(&ids, &reports)
            }

            /// Copies the single queued events `ids` into the feed, numbered in id order after
            /// `head`.
            async fn number_single_feed_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                head: i64,
                ids: &[i64],
            ) -> Result<(), $crate::store::StoreError> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut insert =
                    sqlx::QueryBuilder::<$db>::new($crate::store::feed::feed_insert(true));
                insert.push("SELECT ");
                insert.push_bind(head).push(format!(
                    " + ROW_NUMBER() OVER (ORDER BY id), {} FROM feed_pending WHERE id",
                    $crate::store::feed::FEED_COLUMNS
                ));
                Self::push_in(&mut insert, ids);
                insert.build().execute(&mut **tx).await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::FeedStore for $store {
            async fn sequence_feed(
                &self,
                limit: u32,
            ) -> Result<(u64, u64), $crate::store::StoreError> {
                if !self.feed_waiting().await? {
                    return Ok((0, 0));
                }
                let mut tx = self.begin_sequencing().await?;
                let head: i64 = sqlx::query_scalar(Self::LOCK_FEED_HEAD)
                    .fetch_one(&mut *tx)
                    .await?;
                let (pending, mark) = self.take_pending_feed(&mut tx, limit).await?;
                if pending.is_empty() {
                    self.feed_moved(mark);
                    return Ok((0, head.max(0) as u64));
                }
                let bundled: Vec<i64> =
                    pending.iter().filter(|p| p.bundled).map(|p| p.id).collect();
                let mut bundles = std::collections::HashMap::new();
                if !bundled.is_empty() {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "SELECT id, bundle FROM feed_pending WHERE id",
                    );
                    Self::push_in(&mut query, &bundled);
                    let rows: Vec<(i64, Vec<u8>)> =
                        query.build_query_as().fetch_all(&mut *tx).await?;
                    bundles.extend(rows);
                }
                // Events are numbered in queue order, a bundle's in its own order. Single
                // events move inside the database, only their ids travelling; a bundle is
                // unpacked here.
                let mut numbered = head;
                let mut singles: Vec<i64> = Vec::new();
                for entry in &pending {
                    if !entry.bundled {
                        singles.push(entry.id);
                        continue;
                    }
                    Self::number_single_feed_events(&mut tx, numbered, &singles).await?;
                    numbered += singles.len() as i64;
                    singles.clear();
                    let stored = bundles.remove(&entry.id).ok_or_else(|| {
                        $crate::store::StoreError::Corrupt(format!(
                            "queued feed bundle {} vanished while its round held the feed",
                            entry.id
                        ))
                    })?;
                    let events = Self::unpack_feed_bundle(&mut tx, entry.id, &stored).await?;
                    for chunk in events.chunks($crate::store::common::ROWS_PER_STATEMENT) {
                        Self::write_feed_rows(&mut tx, Some(numbered + 1), chunk).await?;
                        numbered += chunk.len() as i64;
                    }
                }
                Self::number_single_feed_events(&mut tx, numbered, &singles).await?;
                numbered += singles.len() as i64;

                let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
                let mut delete =
                    sqlx::QueryBuilder::<$db>::new("DELETE FROM feed_pending WHERE id");
                Self::push_in(&mut delete, &ids);
                delete.build().execute(&mut *tx).await?;
                sqlx::query("UPDATE feed_head SET size = $1 WHERE id = 1")
                    .bind(numbered)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.feed_moved(mark);
                Ok(((numbered - head) as u64, numbered as u64))
            }

            async fn feed_head(&self) -> Result<u64, $crate::store::StoreError> {
                let head: i64 = sqlx::query_scalar("SELECT size FROM feed_head WHERE id = 1")
                    .fetch_one(self.reader())
                    .await?;
                Ok(head.max(0) as u64)
            }

            async fn feed_events(
                &self,
                after: u64,
                limit: u32,
            ) -> Result<Vec<$crate::domain::feed::FeedEvent>, $crate::store::StoreError> {
                let rows: Vec<$crate::store::feed::FeedRow> = sqlx::query_as(
                    "SELECT seq, event_type, time_us, employer_id, region_code, read_scope, \
                     audience, source_agency, payload FROM feed_events WHERE seq > $1 \
                     ORDER BY seq LIMIT $2",
                )
                .bind($crate::store::common::db_int(after))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?;
                rows.into_iter()
                    .map($crate::domain::feed::FeedEvent::try_from)
                    .collect()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::sequencing_round;

    #[test]
    fn a_round_takes_rows_until_it_holds_the_limit() {
        let events = |row: &i64| *row;
        assert_eq!(
            sequencing_round(vec![1, 1, 1], 10, events),
            (vec![1, 1, 1], false)
        );
        // The row that reaches the limit is the round's last; the rest wait.
        assert_eq!(
            sequencing_round(vec![4, 5, 3, 1], 10, events),
            (vec![4, 5, 3], true)
        );
        // A bundle larger than the limit still makes a round of its own.
        assert_eq!(sequencing_round(vec![25, 1], 10, events), (vec![25], true));
        assert_eq!(
            sequencing_round(Vec::new(), 10, events),
            (Vec::new(), false)
        );
    }
}
