//! Every replica's in-memory view of agencies, keys and grants, so checking a call is a memory
//! lookup. Each change in the database increments `auth_version`; a background task polls that
//! single row (cheap on both backends) and reloads the view when it moves, and a replica that
//! made the change itself reloads at once. A revocation therefore bites within one poll
//! interval on every replica, without a message bus.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use jsonwebtoken::DecodingKey;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::jwk::PublicJwk;
use crate::domain::agency::{Agency, AgencyKey, Grant};
use crate::store::{AuthState, Store, StoreError};

/// A registered key ready to check signatures with.
pub struct RegisteredKey {
    pub key: AgencyKey,
    pub decoding: DecodingKey,
}

/// One consistent view of agencies, keys and current grants.
#[derive(Default)]
pub struct AuthSnapshot {
    pub version: i64,
    agencies: HashMap<String, Agency>,
    keys: HashMap<String, HashMap<String, RegisteredKey>>,
    grants: HashMap<String, Vec<Grant>>,
}

impl AuthSnapshot {
    fn build(state: AuthState) -> Self {
        let mut snapshot = AuthSnapshot {
            version: state.version,
            ..Default::default()
        };
        for agency in state.agencies {
            snapshot
                .agencies
                .insert(agency.id.as_str().to_owned(), agency);
        }
        for key in state.keys {
            let decoding = match PublicJwk::parse(&key.public_jwk)
                .and_then(|jwk| jwk.decoding_key())
            {
                Ok(decoding) => decoding,
                Err(error) => {
                    tracing::error!(agency = %key.agency_id, kid = %key.kid, %error, "unusable stored key skipped");
                    continue;
                }
            };
            snapshot
                .keys
                .entry(key.agency_id.as_str().to_owned())
                .or_default()
                .insert(key.kid.clone(), RegisteredKey { key, decoding });
        }
        for grant in state.grants {
            // A grant stored before its kind's row excluded the scope (`sinergi admin
            // list-grants --violations` lists them) is kept in the database but never honoured.
            let kind = snapshot
                .agencies
                .get(grant.agency_id.as_str())
                .map(|a| a.kind);
            if let Some(kind) = kind
                && let Err(refused) = kind.check_grant(grant.scope)
            {
                tracing::warn!(grant = %grant.id, agency = %grant.agency_id, %refused, "grant not honoured");
                continue;
            }
            snapshot
                .grants
                .entry(grant.agency_id.as_str().to_owned())
                .or_default()
                .push(grant);
        }
        snapshot
    }

    /// The agency, if it exists and is not disabled.
    pub fn enabled_agency(&self, id: &str) -> Option<&Agency> {
        self.agencies
            .get(id)
            .filter(|agency| agency.disabled_at.is_none())
    }

    /// The agency's key, if it exists and is not revoked.
    pub fn valid_key(&self, agency: &str, kid: &str) -> Option<&RegisteredKey> {
        self.keys
            .get(agency)?
            .get(kid)
            .filter(|registered| registered.key.revoked_at.is_none())
    }

    /// The agency's grants in force at `now`.
    pub fn active_grants(&self, agency: &str, now: OffsetDateTime) -> impl Iterator<Item = &Grant> {
        self.grants
            .get(agency)
            .into_iter()
            .flatten()
            .filter(move |grant| grant.is_active(now))
    }
}

pub struct AuthRegistry {
    store: Arc<dyn Store>,
    current: RwLock<Arc<AuthSnapshot>>,
    /// The version of the view in use, for calls that outlive a change (feed streams).
    changes: watch::Sender<i64>,
}

impl AuthRegistry {
    pub async fn load(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let snapshot = AuthSnapshot::build(store.load_auth_state().await?);
        let (changes, _) = watch::channel(snapshot.version);
        Ok(Arc::new(Self {
            store,
            current: RwLock::new(Arc::new(snapshot)),
            changes,
        }))
    }

    /// Tells of every new view, so a long call can judge its caller again at once.
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.changes.subscribe()
    }

    pub fn snapshot(&self) -> Arc<AuthSnapshot> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the Arc inside is
        // still whole.
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reloads the view if the database has moved on.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let version = self.store.auth_version().await?;
        if version == self.snapshot().version {
            return Ok(());
        }
        let snapshot = Arc::new(AuthSnapshot::build(self.store.load_auth_state().await?));
        let version = snapshot.version;
        {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            if version < current.version {
                return Ok(());
            }
            *current = snapshot;
        }
        self.changes.send_replace(version);
        Ok(())
    }

    /// Polls for changes every `interval` until the task is dropped.
    pub async fn follow(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "cannot refresh agencies, keys and grants");
            }
        }
    }
}
