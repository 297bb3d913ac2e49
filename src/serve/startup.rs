//! A connection's startup: limits and the TLS requirement, the database name, the password
//! exchange (SCRAM-SHA-256), then its session and the parameters clients read.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, METADATA_DATABASE, METADATA_USER, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::auth::{AuthError, AuthPolicy, ScramExchange};
use super::errors::{fatal, sqlstate};
use super::handler::{Handler, Login};
use super::settings::{REPORTED, SERVER_VERSION, Settings};
use super::{apply, current_setting, pg_catalog};
use crate::sql::search_path::SearchPath;

/// The database name clients connect to.
pub const DATABASE: &str = "strata";

impl Handler {
    /// The startup packet: limits and requirements first, then the password exchange.
    async fn on_startup_packet<C>(
        &self,
        client: &mut C,
        startup: &pgwire::messages::startup::Startup,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        if self.server.options.tls_required && !client.is_secure() {
            return Err(fatal(
                sqlstate::INVALID_AUTHORIZATION,
                "this server requires SSL: connect with sslmode=require",
            ));
        }
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let database = client
            .metadata()
            .get(METADATA_DATABASE)
            .cloned()
            .unwrap_or_else(|| user.clone());
        if database != DATABASE {
            return Err(fatal(
                sqlstate::UNDEFINED_DATABASE,
                format!("database \"{database}\" does not exist (the warehouse is \"{DATABASE}\")"),
            ));
        }
        let _ = self.conn.user.set(user);
        client.set_state(PgWireConnectionState::AuthenticationInProgress);
        if matches!(self.server.auth, AuthPolicy::Scram(_)) {
            *self.login.lock() = Some(Login::Started);
            client
                .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                    vec!["SCRAM-SHA-256".to_string()],
                )))
                .await?;
            Ok(())
        } else {
            self.logged_in(client).await
        }
    }

    /// SCRAM-SHA-256: client-first, then client-final.
    async fn on_password<C>(
        &self,
        client: &mut C,
        message: PasswordMessageFamily,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // A malformed SCRAM message is a protocol violation (08P01), a wrong proof a failed
        // password (28P01), as PostgreSQL reports them.
        let refused = |error: AuthError| {
            self.server.metrics.connection_refused();
            let message = match error {
                AuthError::Failed => format!(
                    "password authentication failed for user \"{}\"",
                    self.conn.user_name()
                ),
                AuthError::Protocol(_) => error.to_string(),
            };
            fatal(error.sqlstate(), message)
        };
        let state = self.login.lock().take();
        match state {
            Some(Login::Started) => {
                let initial = message.into_sasl_initial_response()?;
                if initial.auth_method != "SCRAM-SHA-256" {
                    return Err(refused(AuthError::Failed));
                }
                let data = initial.data.unwrap_or_default();
                let AuthPolicy::Scram(users) = &self.server.auth else {
                    return Err(refused(AuthError::Failed));
                };
                let verifier = users.verifier(self.conn.user_name());
                let (server_first, awaiting) =
                    ScramExchange::start(&verifier, &data).map_err(refused)?;
                *self.login.lock() = Some(Login::ScramSent(awaiting));
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(server_first.into()),
                    ))
                    .await?;
                Ok(())
            }
            Some(Login::ScramSent(awaiting)) => {
                let response = message.into_sasl_response()?;
                let server_final = awaiting.finish(&response.data).map_err(refused)?;
                client
                    .feed(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into()),
                    ))
                    .await?;
                self.logged_in(client).await
            }
            None => Err(refused(AuthError::Failed)),
        }
    }

    /// After authentication: a place within `max_connections` (only logged-in connections
    /// count), the session, the cancel key, the parameters clients read.
    async fn logged_in<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.conn.set_authenticated();
        let Some(place) = self.server.login_place() else {
            self.server.metrics.connection_refused();
            return Err(fatal(
                sqlstate::TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            ));
        };
        *self.place.lock() = Some(place);
        let ctx = self.server.new_session().await.map_err(|e| {
            fatal(
                sqlstate::INTERNAL_ERROR,
                format!("cannot open the lake: {e}"),
            )
        })?;
        let startup: Vec<(String, String)> = client
            .metadata()
            .iter()
            .filter(|(k, _)| k.as_str() != METADATA_USER && k.as_str() != METADATA_DATABASE)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let path = SearchPath::of_catalog(&ctx, crate::session::DEFAULT_SCHEMA);
        let settings = Settings::new(&self.server.options, &path, &startup);
        apply::session_settings(&ctx, &settings)
            .map_err(|e| fatal(sqlstate::INVALID_PARAMETER_VALUE, e.to_string()))?;
        pg_catalog::set_user(&ctx, self.conn.user_name());
        current_setting::register(&ctx, Arc::clone(&self.conn));
        self.planner.start(ctx, self.server.lake().clone());
        self.planner.update_travel(settings.search_path(), None);
        let (pid, secret) = self.server.register(client, &self.conn);
        self.conn.touch();
        client.set_pid_and_secret_key(pid, secret);
        let parameters = Reported(settings.clone());
        *self.conn.settings.lock() = Some(settings);
        finish_authentication(client, &parameters).await
    }
}

/// The parameters sent at startup (PostgreSQL's GUC_REPORT ones).
struct Reported(Settings);

impl ServerParameterProvider for Reported {
    fn server_parameters<C>(&self, client: &C) -> Option<HashMap<String, String>>
    where
        C: ClientInfo,
    {
        let mut params: HashMap<String, String> = REPORTED
            .iter()
            .filter_map(|name| Some((name.to_string(), self.0.get(name)?.to_string())))
            .collect();
        params.insert("server_version".to_string(), SERVER_VERSION.to_string());
        params.insert("in_hot_standby".to_string(), "off".to_string());
        if let Some(user) = client.metadata().get(METADATA_USER) {
            params.insert("session_authorization".to_string(), user.clone());
        }
        Some(params)
    }
}

#[async_trait]
impl StartupHandler for Handler {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                self.on_startup_packet(client, startup).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                self.on_password(client, message).await
            }
            _ => Ok(()),
        }
    }
}
