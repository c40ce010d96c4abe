//! `sinergi admin`: the first administrator, agencies, keys and grants.

use std::{collections::HashMap, path::PathBuf};

use anyhow::Context;
use clap::Subcommand;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use serde_json::{Value, json};
use sinergi::{
    auth::{bootstrap_admin, keys::public_key_from_text},
    domain::{agency::AgencyKind, scope::Scope},
    grpc::agency_admin::convert::{self, agency_kind_to_proto},
    proto::{self, agency_admin_service_client::AgencyAdminServiceClient},
    store,
};

use super::remote::{Authed, RemoteArgs};
use crate::ConfigArgs;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Create the first administrator agency directly in the database (only while none exists).
    Bootstrap {
        #[command(flatten)]
        config: ConfigArgs,
        /// Id of the administrator agency.
        #[arg(long, default_value = "sinergi-admin")]
        agency: String,
        #[arg(long, default_value = "Sinergi administrators")]
        display_name: String,
        /// Its key: a private key PEM (from keygen) or a public JWK JSON file.
        #[arg(long)]
        key: PathBuf,
    },
    /// Register an agency.
    CreateAgency {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = agency_kind())]
        kind: AgencyKind,
        #[arg(long)]
        display_name: String,
        /// Kemendagri code of the region it serves.
        #[arg(long)]
        home_region: Option<String>,
    },
    /// Show one agency.
    GetAgency {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
    },
    /// List agencies.
    ListAgencies {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long, value_parser = agency_kind())]
        kind: Option<AgencyKind>,
    },
    /// Disable an agency: its tokens stop working.
    DisableAgency {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
    },
    /// Register a public key: a JWK JSON file, a public key PEM (`openssl pkey -pubout`), or a
    /// private key PEM whose public half is sent.
    RegisterKey {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Revoke a key.
    RevokeKey {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
        #[arg(long)]
        kid: String,
    },
    /// List an agency's keys.
    ListKeys {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
    },
    /// Grant a scope, optionally limited to regions and programmes, until a time.
    Grant {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: String,
        #[arg(long)]
        scope: String,
        /// A region the grant is limited to (repeatable).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// A programme the grant is limited to (repeatable): JKN, JKK, JKM, JHT, JP, JKP.
        #[arg(long = "programme")]
        programmes: Vec<String>,
        /// Expiry, RFC 3339 (e.g. 2027-01-01T00:00:00Z).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Withdraw a grant.
    RevokeGrant {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        id: String,
    },
    /// List grants.
    ListGrants {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        agency_id: Option<String>,
        /// Include withdrawn and lapsed grants.
        #[arg(long)]
        include_inactive: bool,
        /// Only grants of a scope the agency's kind may not hold (given before that rule;
        /// they are not honoured): revoke them.
        #[arg(long)]
        violations: bool,
    },
}

/// An agency kind as the command line writes it (`bpjs-kesehatan`), the kinds listed in `--help`.
fn agency_kind() -> impl TypedValueParser<Value = AgencyKind> {
    let names = AgencyKind::ALL.map(|kind| kind.as_str().replace('_', "-"));
    PossibleValuesParser::new(names)
        .try_map(|name| AgencyKind::parse(&name.replace('-', "_")).ok_or("not an agency kind"))
}

/// The public JWK of the key in `path`: a JWK, a public key PEM, or the public half of a
/// private key PEM.
fn public_jwk_from_file(path: &PathBuf) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let key = public_key_from_text(&text).with_context(|| format!("{}", path.display()))?;
    Ok(key.canonical_json())
}

fn region(code: &str) -> proto::RegionCode {
    proto::RegionCode { code: code.into() }
}

fn timestamp_text(at: Option<&prost_types::Timestamp>) -> Value {
    at.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at.seconds).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

fn agency_json(agency: &proto::Agency) -> Value {
    json!({
        "id": agency.id,
        "kind": agency.kind().as_str_name(),
        "display_name": agency.display_name,
        "home_region": agency.home_region.as_ref().map(|r| r.code.clone()),
        "disabled": agency.disabled,
        "create_time": timestamp_text(agency.create_time.as_ref()),
    })
}

fn key_json(key: &proto::AgencyKey) -> Value {
    json!({
        "agency_id": key.agency_id,
        "kid": key.kid,
        "alg": key.public_key.as_ref().map(|k| k.alg.clone()),
        "create_time": timestamp_text(key.create_time.as_ref()),
        "revoke_time": timestamp_text(key.revoke_time.as_ref()),
    })
}

fn grant_json(grant: &proto::Grant) -> Value {
    json!({
        "id": grant.id,
        "agency_id": grant.agency_id,
        "scope": grant.scope,
        "regions": grant.regions.iter().map(|r| r.code.clone()).collect::<Vec<_>>(),
        "programmes": grant.programmes().map(|p| p.as_str_name()).collect::<Vec<_>>(),
        "expire_time": timestamp_text(grant.expire_time.as_ref()),
        "granted_by": grant.granted_by,
        "revoke_time": timestamp_text(grant.revoke_time.as_ref()),
    })
}

/// Every agency, or every one of `kind`, through as many pages as it takes.
async fn all_agencies(
    client: &mut AgencyAdminServiceClient<Authed>,
    kind: Option<proto::AgencyKind>,
) -> anyhow::Result<Vec<proto::Agency>> {
    let mut agencies = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_agencies(proto::ListAgenciesRequest {
                kind: kind.map_or(0, Into::into),
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        agencies.extend(page.agencies);
        if page.next_page_token.is_empty() {
            return Ok(agencies);
        }
        page_token = page.next_page_token;
    }
}

pub(crate) async fn admin(command: AdminCommand) -> anyhow::Result<()> {
    let printed = match command {
        AdminCommand::Bootstrap {
            config,
            agency,
            display_name,
            key,
        } => {
            let config = config.load()?;
            let store = store::connect(&config).await?;
            store.migrate().await?;
            let jwk = public_jwk_from_file(&key)?;
            let (agency, kid) = bootstrap_admin(store.as_ref(), &agency, &display_name, &jwk)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            json!({ "agency": agency.id.as_str(), "kid": kid, "scope": "admin" })
        }
        AdminCommand::CreateAgency {
            remote,
            id,
            kind,
            display_name,
            home_region,
        } => {
            let agency = proto::Agency {
                id,
                kind: agency_kind_to_proto(kind).into(),
                display_name,
                home_region: home_region.as_deref().map(region),
                ..Default::default()
            };
            let response = remote
                .client()
                .await?
                .create_agency(proto::CreateAgencyRequest {
                    agency: Some(agency),
                })
                .await?;
            agency_json(&response.into_inner().agency.unwrap_or_default())
        }
        AdminCommand::GetAgency { remote, id } => {
            let response = remote
                .client()
                .await?
                .get_agency(proto::GetAgencyRequest { id })
                .await?;
            agency_json(&response.into_inner().agency.unwrap_or_default())
        }
        AdminCommand::ListAgencies { remote, kind } => {
            let mut client = remote.client().await?;
            let kind = kind.map(agency_kind_to_proto);
            Value::Array(
                all_agencies(&mut client, kind)
                    .await?
                    .iter()
                    .map(agency_json)
                    .collect(),
            )
        }
        AdminCommand::DisableAgency { remote, id } => {
            let response = remote
                .client()
                .await?
                .disable_agency(proto::DisableAgencyRequest { id })
                .await?;
            agency_json(&response.into_inner().agency.unwrap_or_default())
        }
        AdminCommand::RegisterKey {
            remote,
            agency_id,
            public_key,
        } => {
            let public_jwk = public_jwk_from_file(&public_key)?;
            let response = remote
                .client()
                .await?
                .register_key(proto::RegisterKeyRequest {
                    agency_id,
                    public_jwk,
                })
                .await?;
            key_json(&response.into_inner().key.unwrap_or_default())
        }
        AdminCommand::RevokeKey {
            remote,
            agency_id,
            kid,
        } => {
            let response = remote
                .client()
                .await?
                .revoke_key(proto::RevokeKeyRequest { agency_id, kid })
                .await?;
            key_json(&response.into_inner().key.unwrap_or_default())
        }
        AdminCommand::ListKeys { remote, agency_id } => {
            let response = remote
                .client()
                .await?
                .list_keys(proto::ListKeysRequest { agency_id })
                .await?;
            Value::Array(response.into_inner().keys.iter().map(key_json).collect())
        }
        AdminCommand::Grant {
            remote,
            agency_id,
            scope,
            regions,
            programmes,
            expires,
        } => {
            let programmes = programmes
                .iter()
                .map(|name| {
                    proto::Programme::from_str_name(&format!("PROGRAMME_{}", name.to_uppercase()))
                        .map(i32::from)
                        .with_context(|| format!("{name} is not a programme"))
                })
                .collect::<anyhow::Result<_>>()?;
            let expire_time = expires
                .map(|text| {
                    time::OffsetDateTime::parse(
                        &text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map(|at| prost_types::Timestamp {
                        seconds: at.unix_timestamp(),
                        nanos: 0,
                    })
                    .with_context(|| format!("{text} is not an RFC 3339 time"))
                })
                .transpose()?;
            let response = remote
                .client()
                .await?
                .grant_scope(proto::GrantScopeRequest {
                    agency_id,
                    scope,
                    regions: regions.iter().map(|code| region(code)).collect(),
                    programmes,
                    expire_time,
                })
                .await?;
            grant_json(&response.into_inner().grant.unwrap_or_default())
        }
        AdminCommand::RevokeGrant { remote, id } => {
            let response = remote
                .client()
                .await?
                .revoke_grant(proto::RevokeGrantRequest { id })
                .await?;
            grant_json(&response.into_inner().grant.unwrap_or_default())
        }
        AdminCommand::ListGrants {
            remote,
            agency_id,
            include_inactive,
            violations,
        } => {
            let mut client = remote.client().await?;
            let kinds: HashMap<String, AgencyKind> = if violations {
                all_agencies(&mut client, None)
                    .await?
                    .into_iter()
                    .filter_map(|agency| {
                        let kind = convert::agency_kind(agency.kind).ok()?;
                        Some((agency.id, kind))
                    })
                    .collect()
            } else {
                HashMap::new()
            };
            let mut grants = Vec::new();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_grants(proto::ListGrantsRequest {
                        agency_id: agency_id.clone().unwrap_or_default(),
                        include_inactive,
                        page_size: 1000,
                        page_token,
                    })
                    .await?
                    .into_inner();
                for grant in &page.grants {
                    if !violations {
                        grants.push(grant_json(grant));
                        continue;
                    }
                    let refused = kinds.get(&grant.agency_id).and_then(|kind| {
                        let scope = Scope::parse(&grant.scope).ok()?;
                        kind.check_grant(scope).err()
                    });
                    if let Some(refused) = refused {
                        let mut listed = grant_json(grant);
                        listed["violation"] = Value::String(refused.to_string());
                        grants.push(listed);
                    }
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            Value::Array(grants)
        }
    };
    println!("{}", serde_json::to_string_pretty(&printed)?);
    Ok(())
}
