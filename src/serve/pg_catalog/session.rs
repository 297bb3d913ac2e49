//! Facts about the PostgreSQL session that catalog functions report (`current_user`),
//! kept in the session's config so every query of the connection sees them.

use datafusion::common::extensions_options;
use datafusion::config::ConfigExtension;
use datafusion::prelude::SessionContext;

/// The role that owns every relation in the catalog (`pg_roles` oid 10).
pub const OWNER: &str = "strata";

extensions_options! {
    /// The PostgreSQL side of a session.
    pub struct PgSession {
        /// The role the client connected as.
        pub user: String, default = OWNER.to_string()
    }
}

impl ConfigExtension for PgSession {
    const PREFIX: &'static str = "pg";
}

/// Sets the role `current_user`, `session_user` and `user` report for `ctx`.
pub fn set_user(ctx: &SessionContext, user: &str) {
    let state = ctx.state_ref();
    let mut state = state.write();
    let extensions = &mut state.config_mut().options_mut().extensions;
    match extensions.get_mut::<PgSession>() {
        Some(session) => session.user = user.to_string(),
        None => extensions.insert(PgSession {
            user: user.to_string(),
        }),
    }
}
