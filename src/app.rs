//! Builds the server from a configuration and a bound listener, then serves until told to stop.
//! Binding happens before `build` returns, so a caller (a test, the bench) can connect to
//! [`App::addr`] at once, with no waiting.

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::ServingStatus;

use crate::audit::{
    layer::AuditLayer,
    writer::{AuditWriter, Sequencer},
};
use crate::auth::{Authenticator, ServiceKeys, keys::KeyError, registry::AuthRegistry};
use crate::config::Config;
use crate::feed::FeedHub;
use crate::grpc::{
    FILE_DESCRIPTOR_SET, agency_admin::AgencyAdminApi, audit::AuditApi, auth::AuthApi,
    compliance::ComplianceApi, employer::EmployerApi, feed::FeedApi, inspection::InspectionApi,
    referral::ReferralApi, sanction::SanctionApi,
};
use crate::middleware;
use crate::proto::{
    agency_admin_service_server::AgencyAdminServiceServer,
    audit_service_server::AuditServiceServer, auth_service_server::AuthServiceServer,
    compliance_service_server::ComplianceServiceServer,
    employer_service_server::EmployerServiceServer, feed_service_server::FeedServiceServer,
    inspection_service_server::InspectionServiceServer,
    referral_service_server::ReferralServiceServer, sanction_service_server::SanctionServiceServer,
};
use crate::store::{self, Store, StoreError};

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
}

pub struct App {
    config: Config,
    listener: TcpListener,
    addr: SocketAddr,
    store: Arc<dyn Store>,
    authenticator: Arc<Authenticator>,
}

impl App {
    /// Opens the database (migrating it unless the configuration says a separate step does),
    /// and takes over the listener.
    pub async fn build(config: Config, listener: TcpListener) -> Result<Self, StartupError> {
        let store = store::connect(&config).await?;
        if config.migrate_on_start {
            store.migrate().await?;
        }
        let keys = ServiceKeys::load(&config.auth, &config.data_dir)?;
        let registry = AuthRegistry::load(Arc::clone(&store)).await?;
        let authenticator = Arc::new(Authenticator::new(
            config.auth.clone(),
            keys,
            registry,
            Arc::clone(&store),
        )?);
        let addr = listener.local_addr()?;
        tracing::info!(%addr, backend = store.backend(), "sinergi ready");
        Ok(Self {
            config,
            listener,
            addr,
            store,
            authenticator,
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

    /// Serves until `shutdown` completes, then reports NOT_SERVING on the health service, stops
    /// accepting calls and lets in-flight calls finish within the configured grace period.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<EmployerServiceServer<EmployerApi>>()
            .await;
        health.set_serving::<AuthServiceServer<AuthApi>>().await;
        health
            .set_serving::<AgencyAdminServiceServer<AgencyAdminApi>>()
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

        let (writer, writer_task) = AuditWriter::start(Arc::clone(&self.store));
        let _writer = AbortOnDrop(writer_task);
        let _sequencer = AbortOnDrop(tokio::spawn(Sequencer::run(
            Arc::clone(&self.store),
            std::time::Duration::from_millis(self.config.audit.sequence_interval_ms.max(10)),
            Arc::clone(&feed),
        )));
        health.set_serving::<AuditServiceServer<AuditApi>>().await;
        health
            .set_serving::<ComplianceServiceServer<ComplianceApi>>()
            .await;
        health.set_serving::<FeedServiceServer<FeedApi>>().await;
        health
            .set_serving::<InspectionServiceServer<InspectionApi>>()
            .await;
        health
            .set_serving::<SanctionServiceServer<SanctionApi>>()
            .await;
        health
            .set_serving::<ReferralServiceServer<ReferralApi>>()
            .await;

        // Both reflection versions: grpcurl 1.8 and other older clients only speak v1alpha.
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Server::builder()
            .http2_max_header_list_size(self.config.limits.max_header_list_bytes)
            .layer(middleware::layers(
                AuditLayer::new(writer),
                Arc::clone(&self.authenticator),
            ))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(AuthServiceServer::new(AuthApi::new(Arc::clone(
                &self.authenticator,
            ))))
            .add_service(AgencyAdminServiceServer::new(AgencyAdminApi::new(
                Arc::clone(&self.store),
                Arc::clone(&registry),
            )))
            .add_service(ComplianceServiceServer::new(ComplianceApi::new(
                Arc::clone(&self.store),
            )))
            .add_service(FeedServiceServer::new(FeedApi::new(
                Arc::clone(&self.store),
                feed,
                registry,
                self.config.feed.clone(),
            )))
            .add_service(AuditServiceServer::new(AuditApi::new(
                Arc::clone(&self.store),
                Arc::clone(&self.authenticator),
                self.config.audit.origin.clone(),
            )))
            .add_service(InspectionServiceServer::new(InspectionApi::new(
                Arc::clone(&self.store),
            )))
            .add_service(SanctionServiceServer::new(SanctionApi::new(Arc::clone(
                &self.store,
            ))))
            .add_service(ReferralServiceServer::new(ReferralApi::new(Arc::clone(
                &self.store,
            ))))
            .add_service(EmployerServiceServer::new(EmployerApi::new(self.store)))
            .serve_with_incoming_shutdown(
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
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_not_serving::<EmployerServiceServer<EmployerApi>>()
            .await;
        health.set_not_serving::<AuthServiceServer<AuthApi>>().await;
        health
            .set_not_serving::<AuditServiceServer<AuditApi>>()
            .await;
        health
            .set_not_serving::<AgencyAdminServiceServer<AgencyAdminApi>>()
            .await;
        health
            .set_not_serving::<ComplianceServiceServer<ComplianceApi>>()
            .await;
        health.set_not_serving::<FeedServiceServer<FeedApi>>().await;
        health
            .set_not_serving::<InspectionServiceServer<InspectionApi>>()
            .await;
        health
            .set_not_serving::<SanctionServiceServer<SanctionApi>>()
            .await;
        health
            .set_not_serving::<ReferralServiceServer<ReferralApi>>()
            .await;
        let _ = stop_accepting.send(());
        match tokio::time::timeout(self.config.shutdown_grace(), &mut server).await {
            Ok(result) => result?,
            Err(_) => tracing::warn!("grace period over: abandoning calls still in flight"),
        }
        Ok(())
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

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
