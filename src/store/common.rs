//! The part of the [`Store`](super::Store) implementation that is identical on both backends,
//! instantiated once per backend by `sql_store_common!(StoreType, DatabaseType)`. The store type
//! provides `writer()` and `reader()` pools and a `MIGRATOR`.

use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use crate::domain::employer::{Employer, SizeClass};
use crate::domain::region::{RegionCode, RegionLevel};

/// Rows per multi-row statement where a row has many columns: keeps every statement under
/// SQLite's limit of bound parameters.
pub(super) const ROWS_PER_STATEMENT: usize = 1000;

/// Figures above `i64::MAX` cannot occur in practice; clamp rather than fail a write.
pub(super) fn db_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An employer row as both backends return it.
#[derive(sqlx::FromRow, Clone)]
pub(super) struct EmployerRow {
    pub(super) id: Uuid,
    pub(super) npwp: String,
    pub(super) nib: Option<String>,
    pub(super) bpjs_tk_npp: String,
    pub(super) bpjs_kes_code: Option<String>,
    pub(super) name: String,
    pub(super) address: Option<String>,
    pub(super) region_code: String,
    pub(super) kbli: Option<String>,
    pub(super) size_class: Option<String>,
    pub(super) workforce_declared: Option<i64>,
    pub(super) created_at: OffsetDateTime,
    pub(super) updated_at: OffsetDateTime,
    pub(super) revision: i64,
}

pub(super) const EMPLOYER_COLUMNS: &str = "id, npwp, nib, bpjs_tk_npp, bpjs_kes_code, name, address, \
     region_code, kbli, size_class, workforce_declared, created_at, updated_at, revision";

impl TryFrom<EmployerRow> for Employer {
    type Error = StoreError;

    fn try_from(row: EmployerRow) -> Result<Self, StoreError> {
        let size_class = match row.size_class.as_deref() {
            None => None,
            Some(text) => Some(SizeClass::from_stored(text).ok_or_else(|| {
                StoreError::Corrupt(format!("employer {}: size class {text:?}", row.id))
            })?),
        };
        let workforce_declared = row
            .workforce_declared
            .map(u32::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt(format!("employer {}: workforce", row.id)))?;
        Ok(Employer {
            id: row.id,
            npwp: row.npwp,
            nib: row.nib,
            bpjs_tk_npp: row
                .bpjs_tk_npp
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            bpjs_kes_code: row.bpjs_kes_code,
            name: row.name,
            address: row.address,
            region_code: row.region_code,
            kbli: row.kbli,
            size_class,
            workforce_declared,
            created_at: row.created_at,
            updated_at: row.updated_at,
            revision: row.revision,
        })
    }
}

/// The current time at the precision both databases keep (microseconds), so a value read back
/// equals the value written.
pub(super) fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Appends ` AND (…)` limiting rows to `regions` (provinces by their code, regencies and
/// cities exactly).
pub(super) fn push_within<'args, DB: sqlx::Database>(
    query: &mut sqlx::QueryBuilder<'args, DB>,
    regions: &[RegionCode],
) where
    &'static str: sqlx::Encode<'args, DB> + sqlx::Type<DB>,
{
    query.push(" AND (1 = 0");
    for region in regions {
        match region.level() {
            RegionLevel::Province => query.push(" OR province_code = "),
            RegionLevel::RegencyOrCity => query.push(" OR region_code = "),
        };
        query.push_bind(region.as_str());
    }
    query.push(")");
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a `LIKE … ESCAPE '\'` pattern.
pub(super) fn like_contains(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

macro_rules! sql_store_common {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The stored result of an earlier call with this idempotency key, or
            /// [`RequestIdReused`](crate::store::StoreError::RequestIdReused) when the key was
            /// used for a different request.
            async fn replay<T: serde::de::DeserializeOwned>(
                tx: &mut sqlx::Transaction<'_, $db>,
                key: &$crate::store::IdempotencyKey,
            ) -> Result<Option<T>, $crate::store::StoreError> {
                use $crate::store::StoreError;

                let previous: Option<(String, Vec<u8>, String)> = sqlx::query_as(
                    "SELECT method, request_digest, response FROM idempotency_keys \
                     WHERE caller = $1 AND request_id = $2",
                )
                .bind(&key.caller)
                .bind(&key.request_id)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((method, digest, response)) = previous else {
                    return Ok(None);
                };
                if method != key.method || digest != key.request_digest {
                    return Err(StoreError::RequestIdReused);
                }
                serde_json::from_str(&response)
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt(format!("idempotency record: {e}")))
            }

            /// Records the result of a call with an idempotency key, in the call's transaction.
            async fn remember<T: serde::Serialize>(
                tx: &mut sqlx::Transaction<'_, $db>,
                key: &$crate::store::IdempotencyKey,
                outcome: &T,
                now: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                let response = serde_json::to_string(outcome).map_err(|e| {
                    $crate::store::StoreError::Corrupt(format!("idempotency record: {e}"))
                })?;
                sqlx::query(
                    "INSERT INTO idempotency_keys \
                     (caller, request_id, method, request_digest, response, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&key.caller)
                .bind(&key.request_id)
                .bind(key.method)
                .bind(&key.request_digest)
                .bind(response)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// The outcome of an idempotent write from its `attempt`: when a concurrent call
            /// with the same request id committed first (this one then failed as a duplicate
            /// request), that call's result, as a retry after it would have been answered.
            async fn answered_once<T: $crate::store::Replayable>(
                &self,
                attempt: Result<T, $crate::store::StoreError>,
                key: Option<&$crate::store::IdempotencyKey>,
            ) -> Result<T, $crate::store::StoreError> {
                use $crate::store::{Replayable, StoreError};

                match (attempt, key) {
                    (Err(StoreError::Duplicate { resource: "request", .. }), Some(key)) => {
                        let mut tx = self.begin_write().await?;
                        let first: Option<T> = Self::replay(&mut tx, key).await?;
                        first.map(Replayable::replayed).ok_or(StoreError::RequestIdReused)
                    }
                    (outcome, _) => outcome,
                }
            }

            /// One attempt at an upsert inside a single write transaction: the idempotency
            /// record, the precondition checks and the write commit together or not at all.
            async fn try_upsert_employer(
                &self,
                command: &$crate::store::UpsertEmployer,
            ) -> Result<$crate::store::UpsertOutcome, $crate::store::StoreError> {
                use $crate::domain::employer::{Employer, etag_of, fold_name};
                use $crate::store::{StoreError, UpsertOutcome, now_micros};

                let mut tx = self.begin_write().await?;

                if let Some(key) = &command.idempotency
                    && let Some(first) = Self::replay::<UpsertOutcome>(&mut tx, key).await?
                {
                    return Ok($crate::store::Replayable::replayed(first));
                }

                let draft = &command.draft;
                let id = draft.id.unwrap_or_else(uuid::Uuid::now_v7);
                let existing: Option<(i64, time::OffsetDateTime, String)> = sqlx::query_as(
                    "SELECT revision, created_at, region_code FROM employers WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((_, _, region)) = &existing {
                    let allowed = $crate::domain::region::RegionCode::parse(region)
                        .is_ok_and(|region| command.writable.allows(&region));
                    if !allowed {
                        return Err(StoreError::OutsideRegion(region.clone()));
                    }
                }
                if let Some(expected) = &command.expected_etag {
                    match &existing {
                        None => return Err(StoreError::NotFound("employer")),
                        Some((revision, _, _)) if etag_of(*revision) != *expected => {
                            return Err(StoreError::EtagMismatch {
                                current: etag_of(*revision),
                            });
                        }
                        Some(_) => {}
                    }
                }

                let fields = &draft.fields;
                let holder = |sql: &'static str, value: String| {
                    sqlx::query_scalar::<_, uuid::Uuid>(sql).bind(value).bind(id)
                };
                let duplicates = [
                    (
                        "npwp",
                        Some(fields.npwp.as_str().to_owned()),
                        "SELECT id FROM employers WHERE npwp = $1 AND id <> $2",
                    ),
                    (
                        "nib",
                        fields.nib.as_ref().map(|nib| nib.as_str().to_owned()),
                        "SELECT id FROM employers WHERE nib = $1 AND id <> $2",
                    ),
                ];
                for (field, value, sql) in duplicates {
                    if let Some(value) = value
                        && let Some(other) = holder(sql, value).fetch_optional(&mut *tx).await?
                    {
                        return Err(StoreError::Duplicate {
                            resource: "employer",
                            field,
                            holder: Some(other.to_string()),
                        });
                    }
                }
                for npp in &fields.bpjs_tk_npp {
                    if let Some(other) = holder(
                        "SELECT employer_id FROM employer_npp WHERE npp = $1 AND employer_id <> $2",
                        npp.as_str().to_owned(),
                    )
                    .fetch_optional(&mut *tx)
                    .await?
                    {
                        return Err(StoreError::Duplicate {
                            resource: "employer",
                            field: "bpjs_tk_npp",
                            holder: Some(other.to_string()),
                        });
                    }
                }

                let now = now_micros();
                let (revision, created_at) = match existing {
                    Some((revision, created_at, _)) => (revision + 1, created_at),
                    None => (1, now),
                };
                let npp_text = fields
                    .bpjs_tk_npp
                    .iter()
                    .map(|npp| npp.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let write_sql = if existing.is_some() {
                    // The revision guard turns a concurrent update that slipped in after the read
                    // above into an etag mismatch instead of a lost update.
                    "UPDATE employers SET npwp = $2, nib = $3, bpjs_tk_npp = $4, \
                     bpjs_kes_code = $5, name = $6, name_folded = $7, address = $8, \
                     region_code = $9, province_code = $10, kbli = $11, size_class = $12, \
                     workforce_declared = $13, created_at = $14, updated_at = $15, \
                     revision = $16 WHERE id = $1 AND revision = $16 - 1"
                } else {
                    "INSERT INTO employers (id, npwp, nib, bpjs_tk_npp, bpjs_kes_code, name, \
                     name_folded, address, region_code, province_code, kbli, size_class, \
                     workforce_declared, created_at, updated_at, revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
                };
                let written = sqlx::query(write_sql)
                    .bind(id)
                    .bind(fields.npwp.as_str())
                    .bind(fields.nib.as_ref().map(|nib| nib.as_str()))
                    .bind(&npp_text)
                    .bind(fields.bpjs_kes_code.as_deref())
                    .bind(&fields.name)
                    .bind(fold_name(&fields.name))
                    .bind(fields.address.as_deref())
                    .bind(fields.region.as_str())
                    .bind(fields.region.province().as_str())
                    .bind(fields.kbli.as_ref().map(|kbli| kbli.as_str()))
                    .bind(fields.size_class.map(|class| class.as_str()))
                    .bind(fields.workforce_declared.map(i64::from))
                    .bind(created_at)
                    .bind(now)
                    .bind(revision)
                    .execute(&mut *tx)
                    .await?;
                if written.rows_affected() == 0 {
                    return Err(StoreError::EtagMismatch {
                        current: etag_of(revision),
                    });
                }

                sqlx::query("DELETE FROM employer_npp WHERE employer_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for npp in &fields.bpjs_tk_npp {
                    sqlx::query("INSERT INTO employer_npp (npp, employer_id) VALUES ($1, $2)")
                        .bind(npp.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }

                let outcome = UpsertOutcome {
                    employer: Employer {
                        id,
                        npwp: fields.npwp.as_str().to_owned(),
                        nib: fields.nib.as_ref().map(|nib| nib.as_str().to_owned()),
                        bpjs_tk_npp: fields
                            .bpjs_tk_npp
                            .iter()
                            .map(|npp| npp.as_str().to_owned())
                            .collect(),
                        bpjs_kes_code: fields.bpjs_kes_code.clone(),
                        name: fields.name.clone(),
                        address: fields.address.clone(),
                        region_code: fields.region.as_str().to_owned(),
                        kbli: fields.kbli.as_ref().map(|kbli| kbli.as_str().to_owned()),
                        size_class: fields.size_class,
                        workforce_declared: fields.workforce_declared,
                        created_at,
                        updated_at: now,
                        revision,
                    },
                    created: existing.is_none(),
                    replayed: false,
                };

                // The change goes to the feed, and statuses follow the employer's region and size.
                let source = command.audit.agency.as_str();
                let mut events = vec![$crate::domain::feed::FeedEvent::new(
                    $crate::domain::feed::FeedEventType::EmployerUpserted,
                    (now.unix_timestamp_nanos() / 1_000) as i64,
                    fields.region.as_str(),
                    source,
                    $crate::domain::feed::FeedPayload::Employer(outcome.employer.clone()),
                )];
                if !outcome.created {
                    let facts = $crate::store::reports::EmployerFactsRow {
                        id,
                        npwp: fields.npwp.as_str().to_owned(),
                        region_code: fields.region.as_str().to_owned(),
                        province_code: fields.region.province().as_str().to_owned(),
                        size_class: fields.size_class.map(|class| class.as_str().to_owned()),
                    };
                    let mut current = $crate::store::reports::CurrentReports::new();
                    Self::current_reports(&mut *tx, &[id], None, &mut current).await?;
                    Self::refresh_statuses(&mut tx, &[&facts], &current, now, source, &mut events)
                        .await?;
                }
                Self::insert_feed_events(&mut tx, &events).await?;

                Self::insert_audit_entries(&mut tx, std::slice::from_ref(&command.audit)).await?;

                if let Some(key) = &command.idempotency {
                    Self::remember(&mut tx, key, &outcome, now).await?;
                }

                tx.commit().await?;
                Ok(outcome)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            async fn migrate(&self) -> Result<(), $crate::store::StoreError> {
                Self::MIGRATOR.run(self.writer()).await.map_err(|error| {
                    $crate::store::StoreError::Internal(sqlx::Error::Migrate(Box::new(error)))
                })
            }

            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn purge_idempotency_keys(
                &self,
                before: time::OffsetDateTime,
            ) -> Result<u64, $crate::store::StoreError> {
                // In slices, so no purge holds the write lock long enough to be felt by calls.
                const SLICE: i64 = 5_000;
                let mut purged = 0;
                loop {
                    let mut tx = self.begin_write().await?;
                    let deleted = sqlx::query(
                        "DELETE FROM idempotency_keys WHERE (caller, request_id) IN \
                         (SELECT caller, request_id FROM idempotency_keys \
                          WHERE created_at < $1 LIMIT $2)",
                    )
                    .bind(before)
                    .bind(SLICE)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    purged += deleted;
                    if deleted < SLICE as u64 {
                        return Ok(purged);
                    }
                }
            }

            fn pool_usage(&self) -> Vec<$crate::metrics::PoolUsage> {
                let mut usage = if std::ptr::eq(self.writer(), self.reader()) {
                    vec![$crate::store::pool_usage("shared", self.writer())]
                } else {
                    vec![
                        $crate::store::pool_usage("writer", self.writer()),
                        $crate::store::pool_usage("reader", self.reader()),
                    ]
                };
                usage.push($crate::store::pool_usage("lookups", self.lookups()));
                usage
            }
        }

        impl $store {
            /// The employers `query` selects (`EMPLOYER_COLUMNS` of `employers`).
            async fn fetch_employers(
                &self,
                mut query: sqlx::QueryBuilder<'_, $db>,
            ) -> Result<Vec<$crate::domain::employer::Employer>, $crate::store::StoreError> {
                let rows: Vec<$crate::store::EmployerRow> =
                    query.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter()
                    .map($crate::domain::employer::Employer::try_from)
                    .collect()
            }

            /// Starts the shared lookups of single employers (`employer_reads`) on `pool`,
            /// which serves nothing else (they keep its connections), `concurrency` queries
            /// at a time.
            fn start_employer_reads(
                pool: sqlx::Pool<$db>,
                concurrency: usize,
            ) -> $crate::store::employer_reads::EmployerReads {
                use $crate::store::EmployerRow;

                let connections = std::sync::Arc::new(
                    $crate::store::kept_connections::KeptConnections::new(pool),
                );
                $crate::store::employer_reads::EmployerReads::start(concurrency, move |keys| {
                    let connections = std::sync::Arc::clone(&connections);
                    async move {
                        // A lookup changes nothing, so one that failed on a broken connection
                        // (idle while the database restarted, say) is tried again on another;
                        // the broken one is dropped, and the pool closes it as it takes it
                        // back. Every connection may be broken, hence one attempt more than
                        // the pool holds.
                        let mut attempts_left = connections.capacity() + 1;
                        loop {
                            attempts_left -= 1;
                            let (mut connection, taken) = connections.take().await?;
                            match Self::lookup_employers(&keys)
                                .build_query_as::<EmployerRow>()
                                .fetch_all(&mut *connection)
                                .await
                            {
                                Ok(rows) => {
                                    connections.keep(connection, taken);
                                    return Ok(rows);
                                }
                                Err(sqlx::Error::Io(_)) if attempts_left > 0 => continue,
                                Err(error) => return Err(error.into()),
                            }
                        }
                    }
                })
            }

            /// The employers matching any of `keys`.
            fn lookup_employers(
                keys: &$crate::store::employer_reads::EmployerKeys,
            ) -> sqlx::QueryBuilder<'_, $db> {
                use $crate::store::EMPLOYER_COLUMNS;

                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {EMPLOYER_COLUMNS} FROM employers WHERE "
                ));
                // A batch holds at least one key, so at least one column is matched.
                let mut matched_before = false;
                let mut match_column = |query: &mut sqlx::QueryBuilder<'_, $db>, column: &str| {
                    if matched_before {
                        query.push(" OR ");
                    }
                    matched_before = true;
                    query.push(column);
                };
                if !keys.ids.is_empty() {
                    match_column(&mut query, "id");
                    Self::push_in(&mut query, &keys.ids);
                }
                if !keys.npwps.is_empty() {
                    match_column(&mut query, "npwp");
                    Self::push_in(&mut query, &keys.npwps);
                }
                if !keys.nibs.is_empty() {
                    match_column(&mut query, "nib");
                    Self::push_in(&mut query, &keys.nibs);
                }
                query
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::EmployerStore for $store {
            async fn upsert_employer(
                &self,
                command: &$crate::store::UpsertEmployer,
            ) -> Result<$crate::store::UpsertOutcome, $crate::store::StoreError> {
                match self.try_upsert_employer(command).await {
                    // A concurrent request with the same request_id may have committed while
                    // this one ran, so its write now looks like a duplicate: running again
                    // finds its record and answers with it (or fails the same way if it was a
                    // genuine duplicate).
                    Err($crate::store::StoreError::Duplicate { .. })
                        if command.idempotency.is_some() =>
                    {
                        self.try_upsert_employer(command).await
                    }
                    outcome => outcome,
                }
            }

            async fn find_employer(
                &self,
                key: &$crate::domain::employer::EmployerKey,
            ) -> Result<Option<$crate::domain::employer::Employer>, $crate::store::StoreError>
            {
                self.employer_reads.find(key).await
            }

            async fn list_employers(
                &self,
                filter: &$crate::domain::employer::EmployerFilter,
                after: Option<uuid::Uuid>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::employer::Employer>, $crate::store::StoreError> {
                use $crate::domain::region::RegionLevel;
                use $crate::store::EMPLOYER_COLUMNS;

                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {EMPLOYER_COLUMNS} FROM employers WHERE 1 = 1"
                ));
                if let Some(region) = &filter.region {
                    match region.level() {
                        RegionLevel::Province => query.push(" AND province_code = "),
                        RegionLevel::RegencyOrCity => query.push(" AND region_code = "),
                    };
                    query.push_bind(region.as_str());
                }
                if let Some(size_class) = filter.size_class {
                    query.push(" AND size_class = ").push_bind(size_class.as_str());
                }
                if let Some(kbli) = &filter.kbli {
                    query.push(" AND kbli = ").push_bind(kbli.as_str().to_owned());
                }
                if let Some(within) = &filter.within {
                    $crate::store::push_within(&mut query, within);
                }
                if let Some(after) = after {
                    query.push(" AND id > ").push_bind(after);
                }
                query
                    .push(" ORDER BY id LIMIT ")
                    .push_bind(i64::from(limit));
                self.fetch_employers(query).await
            }

            async fn search_employers(
                &self,
                query_text: &$crate::domain::employer::NameQuery,
                within: Option<&[$crate::domain::region::RegionCode]>,
                after: Option<&$crate::store::NameCursor>,
                limit: u32,
            ) -> Result<Vec<$crate::domain::employer::Employer>, $crate::store::StoreError> {
                use $crate::store::{EMPLOYER_COLUMNS, like_contains};

                let mut query = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {EMPLOYER_COLUMNS} FROM employers WHERE name_folded LIKE "
                ));
                query
                    .push_bind(like_contains(query_text.folded()))
                    .push(" ESCAPE '\\'");
                if let Some(within) = within {
                    $crate::store::push_within(&mut query, within);
                }
                if let Some(after) = after {
                    query
                        .push(" AND (name_folded > ")
                        .push_bind(after.name_folded.clone())
                        .push(" OR (name_folded = ")
                        .push_bind(after.name_folded.clone())
                        .push(" AND id > ")
                        .push_bind(after.id)
                        .push("))");
                }
                query
                    .push(" ORDER BY name_folded, id LIMIT ")
                    .push_bind(i64::from(limit));
                self.fetch_employers(query).await
            }
        }
    };
}
