//! Builds the server from a configuration and a bound listener, then serves until told to stop.
//! Binding happens before `build` returns, so a caller (a test, the bench) can connect to
//! [`App::addr`] at once, with no waiting.

use std::{
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use super::audit_layer::AuditLayer;
use super::limits::DatabaseState;
use super::{middleware, tls};
use crate::auth::{Authenticator, ServiceKeys, keys::KeyError, registry::AuthRegistry};
use crate::config::{Config, HealthConfig};
use crate::grpc::{
    FILE_DESCRIPTOR_SET, agency_admin::AgencyAdminApi, audit::AuditApi, auth::AuthApi,
    compliance::ComplianceApi, employer::EmployerApi, feed::FeedApi, inspection::InspectionApi,
    referral::ReferralApi, sanction::SanctionApi, served_methods,
};
use crate::metrics::{self, Metrics};
use crate::proto::{
    agency_admin_service_server::AgencyAdminServiceServer,
    audit_service_server::AuditServiceServer, auth_service_server::AuthServiceServer,
    compliance_service_server::ComplianceServiceServer,
    employer_service_server::EmployerServiceServer, feed_service_server::FeedServiceServer,
    inspection_service_server::InspectionServiceServer,
    referral_service_server::ReferralServiceServer, sanction_service_server::SanctionServiceServer,
};
use crate::store::{self, Store, StoreError};
use crate::workers::audit_writer::AuditWriter;
use crate::workers::{
    AbortOnDrop,
    audit_index::index_audit_records,
    feed::FeedHub,
    retention::purge_idempotency_keys,
    sequencer::Sequencer,
    statuses::{LargeBatches, recompute_queued_statuses},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database")]
    Store(#[from] StoreError),
    #[error("cannot load Sinergi's signing keys")]
    Keys(#[from] KeyError),
    #[error("cannot use the listening socket")]
    Listener(#[from] std::io::Error),
    #[error("cannot publish the service descriptors for reflection")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the server failed")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot set up the HTTP/JSON door: {0}")]
    Http(#[from] crate::http::GatewayError),
}

pub struct App {
    config: Config,
    listener: TcpListener,
    addr: SocketAddr,
    metrics_listener: Option<TcpListener>,
    http_listener: Option<TcpListener>,
    probe_listener: Option<TcpListener>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    http_tls: Option<tls::HttpTls>,
    store: Arc<dyn Store>,
    authenticator: Arc<Authenticator>,
    metrics: Arc<Metrics>,
}

/// The health-service names of every service this server offers, besides the overall "".
const SERVICES: [&str; 9] = [
    <EmployerServiceServer<EmployerApi> as NamedService>::NAME,
    <AuthServiceServer<AuthApi> as NamedService>::NAME,
    <AgencyAdminServiceServer<AgencyAdminApi> as NamedService>::NAME,
    <AuditServiceServer<AuditApi> as NamedService>::NAME,
    <ComplianceServiceServer<ComplianceApi> as NamedService>::NAME,
    <FeedServiceServer<FeedApi> as NamedService>::NAME,
    <InspectionServiceServer<InspectionApi> as NamedService>::NAME,
    <SanctionServiceServer<SanctionApi> as NamedService>::NAME,
    <ReferralServiceServer<ReferralApi> as NamedService>::NAME,
];

/// A health-service name that reports only whether the process serves at all (NOT_SERVING
/// once shutdown starts), not whether the database answers: what a liveness probe should ask,
/// so a database outage makes replicas unready instead of restarting them all.
pub const LIVENESS: &str = "liveness";

impl App {
    /// Opens the database (migrating it unless the configuration says a separate step does),
    /// and takes over the listener. The metrics endpoint, when configured, is bound here too.
    pub async fn build(config: Config, listener: TcpListener) -> Result<Self, StartupError> {
        let store = store::connect(&config).await?;
        if config.migrate_on_start {
            store.migrate().await?;
        }
        let metrics = Arc::new(Metrics::new());
        let keys = ServiceKeys::load(&config.auth, &config.data_dir)?;
        let registry = AuthRegistry::load(Arc::clone(&store)).await?;
        let authenticator = Arc::new(Authenticator::new(
            config.auth.clone(),
            keys,
            registry,
            Arc::clone(&store),
            Arc::clone(&metrics),
        )?);
        // Certificates are read now, so a bad file stops the start instead of the first call.
        let tls = tls::server_config(&config.tls)?;
        let http_tls = tls::http_config(&config.tls)?;
        let metrics_listener = if config.metrics.enabled {
            Some(TcpListener::bind(config.metrics.listen).await?)
        } else {
            None
        };
        let http_listener = if config.http.enabled {
            Some(TcpListener::bind(config.http.listen).await?)
        } else {
            None
        };
        let probe_listener = match config.health.probe_listen {
            Some(address) => Some(TcpListener::bind(address).await?),
            None => None,
        };
        let addr = listener.local_addr()?;
        let address_of = |listener: &Option<TcpListener>| match listener {
            Some(listener) => listener
                .local_addr()
                .map_or_else(|error| error.to_string(), |addr| addr.to_string()),
            None => "off".into(),
        };
        tracing::info!(
            %addr,
            http = %address_of(&http_listener),
            metrics = %address_of(&metrics_listener),
            probe = %address_of(&probe_listener),
            backend = store.backend(),
            tls = config.tls.enabled(),
            "sinergi ready"
        );
        Ok(Self {
            config,
            listener,
            addr,
            metrics_listener,
            http_listener,
            probe_listener,
            tls,
            http_tls,
            store,
            authenticator,
            metrics,
        })
    }

    /// The token checker, for in-process measurements.
    pub fn authenticator(&self) -> Arc<Authenticator> {
        Arc::clone(&self.authenticator)
    }

    /// The address the server answers on (the real port when the configuration asked for 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the plaintext health port, if it is on.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.probe_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The address of the HTTP/JSON door, if it is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// The address of the Prometheus endpoint, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then reports NOT_SERVING on the health service, stops
    /// accepting calls and lets in-flight calls finish within the configured grace period.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, ServingStatus::Serving).await;
        health
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;

        let registry = Arc::clone(self.authenticator.registry());
        let follower =
            tokio::spawn(Arc::clone(&registry).follow(self.config.auth.refresh_interval()));
        // Stops following when serving ends, however it ends.
        let _follower = AbortOnDrop(follower);

        let feed = FeedHub::new(self.store.feed_head().await?);
        let _feed_follower = AbortOnDrop(tokio::spawn(Arc::clone(&feed).follow(
            Arc::clone(&self.store),
            std::time::Duration::from_millis(self.config.feed.poll_interval_ms.max(10)),
        )));

        let (writer, writer_task) =
            AuditWriter::start(Arc::clone(&self.store), Arc::clone(&self.metrics));
        let _writer = AbortOnDrop(writer_task);
        let _sequencer = AbortOnDrop(tokio::spawn(Sequencer::run(
            Arc::clone(&self.store),
            std::time::Duration::from_millis(self.config.audit.sequence_interval_ms.max(10)),
            Arc::clone(&feed),
        )));
        let large_batches = LargeBatches::default();
        let status_interval = self.config.compliance.status_interval_ms;
        // A worker spends half of each round on its own computing and waiting for answers, so
        // on PostgreSQL two share the queue (each passes over what the other holds); SQLite
        // writes one transaction at a time, so a second would only queue behind the first.
        let status_workers = match (status_interval, self.store.backend()) {
            (0, _) => 0,
            (_, "postgres") => 2,
            _ => 1,
        };
        let _status_workers: Vec<_> = (0..status_workers)
            .map(|_| {
                AbortOnDrop(tokio::spawn(recompute_queued_statuses(
                    Arc::clone(&self.store),
                    large_batches.clone(),
                    std::time::Duration::from_millis(status_interval.max(10)),
                )))
            })
            .collect();
        let _record_indexer =
            AbortOnDrop(tokio::spawn(index_audit_records(Arc::clone(&self.store))));

        let _purge = AbortOnDrop(tokio::spawn(purge_idempotency_keys(
            Arc::clone(&self.store),
            self.config.database.idempotency_retention(),
        )));

        let database = DatabaseState::up();
        let database_watch = AbortOnDrop(tokio::spawn(watch_database(
            Arc::clone(&self.store),
            database.clone(),
            health.clone(),
            self.config.health.clone(),
        )));

        let _metrics_endpoint = self.metrics_listener.map(|listener| {
            let metrics = Arc::clone(&self.metrics);
            let store = Arc::clone(&self.store);
            let feed = Arc::clone(&feed);
            let database = database.clone();
            let render = Arc::new(move || {
                metrics.render(feed.subscribers(), database.is_up(), &store.pool_usage())
            });
            AbortOnDrop(tokio::spawn(metrics::serve(listener, render)))
        });

        let _probe_endpoint = self.probe_listener.map(|listener| {
            let health_service = health_service.clone();
            AbortOnDrop(tokio::spawn(async move {
                let served = Server::builder()
                    .add_service(health_service)
                    .serve_with_incoming(TcpIncoming::from(listener))
                    .await;
                if let Err(error) = served {
                    tracing::error!(%error, "the health probe port failed");
                }
            }))
        });

        // Both reflection versions: grpcurl 1.8 and other older clients only speak v1alpha.
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let limits = &self.config.limits;
        let max_message = limits.max_message_bytes;
        let mut builder = Server::builder()
            .http2_max_header_list_size(limits.max_header_list_bytes)
            .max_concurrent_streams(limits.max_concurrent_streams_per_connection)
            .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
            .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
            .http2_keepalive_interval(Some(Duration::from_secs(
                limits.keepalive_interval_secs.max(1),
            )))
            .http2_keepalive_timeout(Some(Duration::from_secs(
                limits.keepalive_timeout_secs.max(1),
            )))
            .tcp_keepalive(Some(Duration::from_secs(
                limits.keepalive_interval_secs.max(1),
            )))
            .max_connection_age(Duration::from_secs(limits.max_connection_age_secs.max(1)))
            .max_connection_age_grace(Duration::from_secs(limits.max_connection_age_grace_secs))
            // Browsers send gRPC-Web over HTTP/1.1 unless TLS negotiates HTTP/2.
            .accept_http1(self.config.grpc_web.enabled);
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls)?;
        }
        let mut routes = tonic::service::RoutesBuilder::default();
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                AuthServiceServer::new(AuthApi::new(Arc::clone(&self.authenticator)))
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                AgencyAdminServiceServer::new(AgencyAdminApi::new(
                    Arc::clone(&self.store),
                    Arc::clone(&registry),
                ))
                .max_decoding_message_size(max_message),
            )
            .add_service(
                ComplianceServiceServer::new(ComplianceApi::new(
                    Arc::clone(&self.store),
                    large_batches,
                ))
                .max_decoding_message_size(max_message),
            )
            .add_service(
                FeedServiceServer::new(FeedApi::new(
                    Arc::clone(&self.store),
                    Arc::clone(&feed),
                    registry,
                    self.config.feed.clone(),
                ))
                .max_decoding_message_size(max_message),
            )
            .add_service(
                AuditServiceServer::new(AuditApi::new(
                    Arc::clone(&self.store),
                    Arc::clone(&self.authenticator),
                    self.config.audit.origin.clone(),
                ))
                .max_decoding_message_size(max_message),
            )
            .add_service(
                InspectionServiceServer::new(InspectionApi::new(Arc::clone(&self.store)))
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                SanctionServiceServer::new(SanctionApi::new(Arc::clone(&self.store)))
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                ReferralServiceServer::new(ReferralApi::new(Arc::clone(&self.store)))
                    .max_decoding_message_size(max_message),
            )
            .add_service(
                EmployerServiceServer::new(EmployerApi::new(Arc::clone(&self.store)))
                    .max_decoding_message_size(max_message),
            );
        // One stack, so both doors share one set of limits, one audit writer and one set of
        // rate buckets: a call counts the same whichever door it came through.
        let calls: middleware::Calls = middleware::layers(
            middleware::Parts {
                audit: AuditLayer::new(writer),
                authenticator: Arc::clone(&self.authenticator),
                metrics: Arc::clone(&self.metrics),
                database,
                methods: served_methods(),
            },
            limits,
            &self.config.grpc_web,
        )
        .service(routes.routes().prepare());

        let (stop_http, http_stopped) = tokio::sync::watch::channel(false);
        let http_door = match self.http_listener {
            Some(listener) => {
                let gateway = crate::http::Gateway::new(
                    calls.clone(),
                    max_message,
                    limits.request_timeout(),
                )?;
                let grace = self.config.shutdown_grace();
                let mut stopped = http_stopped;
                Some(tokio::spawn(gateway.serve(
                    listener,
                    self.http_tls,
                    async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    },
                    grace,
                )))
            }
            None => None,
        };
        let mut http_door = http_door.map(AbortOnDrop);

        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = builder.serve_with_incoming_shutdown(
            calls,
            TcpIncoming::from(self.listener).with_nodelay(Some(true)),
            async {
                let _ = stopped.await;
            },
        );
        tokio::pin!(server);

        tokio::select! {
            result = &mut server => return Ok(result?),
            () = shutdown => {}
        }
        tracing::info!("shutting down: finishing in-flight calls");
        // The database watch must not turn health back to SERVING from here on.
        drop(database_watch);
        set_health(&health, ServingStatus::NotServing).await;
        health
            .set_service_status(LIVENESS, ServingStatus::NotServing)
            .await;
        let _ = stop_accepting.send(());
        let _ = stop_http.send(true);
        let http_finished = async {
            if let Some(door) = http_door.as_mut() {
                let _ = (&mut door.0).await;
            }
        };
        let (served, ()) = tokio::join!(
            tokio::time::timeout(self.config.shutdown_grace(), &mut server),
            http_finished
        );
        match served {
            Ok(result) => result?,
            Err(_) => tracing::warn!("grace period over: abandoning calls still in flight"),
        }
        Ok(())
    }
}

/// Sets the overall status ("") and that of every service.
async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for service in SERVICES {
        health.set_service_status(service, status).await;
    }
}

/// Pings the database every interval; health (and the gate that refuses calls at once) follow
/// its answers, so an orchestrator stops routing to a replica that cannot serve, and routes to
/// it again as soon as it can, without a restart.
async fn watch_database(
    store: Arc<dyn Store>,
    state: DatabaseState,
    health: HealthReporter,
    config: HealthConfig,
) {
    let mut ticker = tokio::time::interval(config.check_interval());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down_since = None;
    loop {
        ticker.tick().await;
        let up = matches!(
            tokio::time::timeout(config.check_timeout(), store.ping()).await,
            Ok(Ok(()))
        );
        if !state.set(up) {
            continue;
        }
        if up {
            let outage = down_since.take().map(|since: Instant| since.elapsed());
            tracing::warn!(?outage, "database reachable again: serving");
            set_health(&health, ServingStatus::Serving).await;
        } else {
            down_since = Some(Instant::now());
            tracing::error!("database unreachable: NOT_SERVING, refusing calls UNAVAILABLE");
            set_health(&health, ServingStatus::NotServing).await;
        }
    }
}

/// Reflection publishing every service this server offers, including both reflection versions.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // google.rpc error details, so tools can decode the details of an error status.
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}
