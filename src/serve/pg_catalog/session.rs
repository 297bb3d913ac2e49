//! Facts about the PostgreSQL session that catalog functions report (`current_user`),
//! kept in the session's config so every query of the connection sees them.

use datafusion::common::extensions_options;
use datafusion::config::{ConfigExtension, Extensions};
use datafusion::prelude::SessionContext;

use crate::sql::search_path::SearchPath;
use crate::warehouse::catalog::PUBLIC;

/// The role that owns every relation in the catalog (`pg_roles` oid 10).
pub const OWNER: &str = "strata";

extensions_options! {
    /// The PostgreSQL side of a session.
    pub struct PgSession {
        /// The role the client connected as.
        pub user: String, default = OWNER.to_string()
        /// The schemas unqualified names are searched in, as `SHOW search_path` prints them.
        pub search_path: String, default = PUBLIC.to_string()
    }
}

impl PgSession {
    pub fn search_path(&self) -> SearchPath {
        SearchPath::parse(&self.search_path)
    }
}

impl ConfigExtension for PgSession {
    const PREFIX: &'static str = "pg";
}

/// Sets the role `current_user`, `session_user` and `user` report for `ctx`.
pub fn set_user(ctx: &SessionContext, user: &str) {
    let state = ctx.state_ref();
    let mut state = state.write();
    session_of(&mut state.config_mut().options_mut().extensions).user = user.to_string();
}

/// Sets the search path `current_schema`, `current_schemas` and `pg_table_is_visible` read.
pub fn set_search_path(extensions: &mut Extensions, path: &SearchPath) {
    session_of(extensions).search_path = path.to_string();
}

fn session_of(extensions: &mut Extensions) -> &mut PgSession {
    if extensions.get::<PgSession>().is_none() {
        extensions.insert(PgSession::default());
    }
    extensions
        .get_mut::<PgSession>()
        .expect("the PgSession extension was just inserted")
}
