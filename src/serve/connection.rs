//! One client connection: its startup (limits, TLS requirement, database name, password),
//! its DataFusion session and parameters, and the pgwire handlers that answer it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{
    ClientInfo, METADATA_DATABASE, METADATA_USER, NoopHandler, PgWireConnectionState,
    PgWireServerHandlers,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::{Authentication, PasswordMessageFamily, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::auth::{AuthPolicy, ScramExchange};
use super::errors::{fatal, sqlstate};
use super::interrupt::{Interrupts, Probe};
use super::query::Planner;
use super::server::{Place, Server};
use super::settings::{SERVER_VERSION, Settings};

/// The database name clients connect to.
pub const DATABASE: &str = "strata";

/// Where a password exchange stands.
enum Login {
    Started,
    ScramSent(ScramExchange),
}

/// A client connection's state; pgwire's handlers for it are all this one value.
pub struct Connection {
    pub(super) server: Arc<Server>,
    pub(super) peer: SocketAddr,
    pub(super) probe: Arc<Probe>,
    pub(super) interrupts: Arc<Interrupts>,
    /// Its place among the connections logging in, then among those logged in.
    place: Mutex<Option<Place>>,
    /// Whether the client has authenticated (the login deadline no longer applies).
    authenticated: AtomicBool,
    login: Mutex<Option<Login>>,
    pub(super) planner: Arc<Planner>,
    pub(super) settings: Mutex<Option<Settings>>,
    pub(super) user: OnceLock<String>,
    pub(super) cancel_key: OnceLock<(i32, SecretKey)>,
    last_active: Mutex<Instant>,
}

impl Connection {
    pub fn new(server: Arc<Server>, peer: SocketAddr, probe: Arc<Probe>, place: Place) -> Self {
        Self {
            server,
            peer,
            probe,
            interrupts: Arc::default(),
            place: Mutex::new(Some(place)),
            authenticated: AtomicBool::new(false),
            login: Mutex::new(None),
            planner: Arc::default(),
            settings: Mutex::new(None),
            user: OnceLock::new(),
            cancel_key: OnceLock::new(),
            last_active: Mutex::new(Instant::now()),
        }
    }

    pub(super) fn authenticated(&self) -> bool {
        self.authenticated.load(Ordering::SeqCst)
    }

    /// Gives the connection's place back (it has ended).
    pub(super) fn release_place(&self) {
        self.place.lock().take();
    }

    pub fn interrupts(&self) -> &Arc<Interrupts> {
        &self.interrupts
    }

    pub fn probe(&self) -> &Arc<Probe> {
        &self.probe
    }

    /// Marks the session active now (each statement answered).
    pub(super) fn touch(&self) {
        *self.last_active.lock() = Instant::now();
    }

    pub(super) fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .elapsed()
            .min(self.interrupts.since_last_query())
    }

    /// The session's `idle_session_timeout`; before login, the startup deadline applies.
    pub(super) fn idle_timeout(&self) -> Option<Duration> {
        self.settings.lock().as_ref()?.idle_session_timeout()
    }

    pub(super) fn user_name(&self) -> &str {
        self.user.get().map(String::as_str).unwrap_or("")
    }

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
        let _ = self.user.set(user);
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
        let refused = || {
            self.server.metrics.connection_refused();
            fatal(
                sqlstate::INVALID_PASSWORD,
                format!(
                    "password authentication failed for user \"{}\"",
                    self.user_name()
                ),
            )
        };
        let state = self.login.lock().take();
        match state {
            Some(Login::Started) => {
                let initial = message.into_sasl_initial_response()?;
                if initial.auth_method != "SCRAM-SHA-256" {
                    return Err(refused());
                }
                let data = initial.data.unwrap_or_default();
                let AuthPolicy::Scram(users) = &self.server.auth else {
                    return Err(refused());
                };
                let verifier = users.verifier(self.user_name());
                let (server_first, awaiting) =
                    ScramExchange::start(&verifier, &data).map_err(|_| refused())?;
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
                let server_final = awaiting.finish(&response.data).map_err(|_| refused())?;
                client
                    .feed(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into()),
                    ))
                    .await?;
                self.logged_in(client).await
            }
            None => Err(refused()),
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
        self.authenticated.store(true, Ordering::SeqCst);
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
        let settings = Settings::new(&self.server.options, &startup);
        super::apply::session_settings(&ctx, &settings)
            .map_err(|e| fatal(sqlstate::INVALID_PARAMETER_VALUE, e.to_string()))?;
        super::pg_catalog::set_user(&ctx, self.user_name());
        self.planner.start(ctx, self.server.lake().clone());
        self.planner
            .update_travel(super::query::default_schema_of(&settings), None);
        let (pid, secret) = self.server.register(client, self);
        self.touch();
        client.set_pid_and_secret_key(pid, secret);
        let parameters = Reported(settings.clone());
        *self.settings.lock() = Some(settings);
        finish_authentication(client, &parameters).await
    }
}

/// The parameters sent at startup (PostgreSQL's GUC_REPORT ones).
struct Reported(Settings);

/// Parameters PostgreSQL reports to clients at startup and whenever they change.
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "standard_conforming_strings",
    "TimeZone",
];

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

/// pgwire's handlers for one connection.
pub struct Handlers(pub Arc<Connection>);

#[async_trait]
impl StartupHandler for Connection {
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

#[async_trait]
impl CancelHandler for Connection {
    async fn on_cancel_request(&self, request: CancelRequest) {
        self.server.cancel(request.pid, &request.secret_key);
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        Arc::clone(&self.0)
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::clone(&self.0)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.0)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.0)
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        Arc::new(NoopHandler)
    }
}
