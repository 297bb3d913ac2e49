//! The pgwire handlers of one connection: one value holding the connection's state, the
//! server it belongs to and its planner, whose startup (`startup.rs`) and query (`query.rs`)
//! handler impls answer the client.

use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{NoopHandler, PgWireServerHandlers};
use pgwire::messages::cancel::CancelRequest;

use super::auth::ScramExchange;
use super::connection::Connection;
use super::planner::Planner;
use super::server::{Place, Server};

/// Where a password exchange stands.
pub(super) enum Login {
    Started,
    ScramSent(ScramExchange),
}

/// What pgwire's handlers of one connection work with.
pub struct Handler {
    pub(super) conn: Arc<Connection>,
    pub(super) server: Arc<Server>,
    pub(super) planner: Arc<Planner>,
    /// Its place among the connections logging in, then among those logged in.
    pub(super) place: Mutex<Option<Place>>,
    pub(super) login: Mutex<Option<Login>>,
}

impl Handler {
    pub fn new(server: Arc<Server>, conn: Arc<Connection>, place: Place) -> Self {
        Self {
            conn,
            server,
            planner: Arc::default(),
            place: Mutex::new(Some(place)),
            login: Mutex::new(None),
        }
    }

    /// Gives the connection's place back (it has ended).
    pub(super) fn release_place(&self) {
        self.place.lock().take();
    }
}

/// pgwire's handlers for one connection.
pub struct Handlers(pub Arc<Handler>);

#[async_trait]
impl CancelHandler for Handler {
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
