//! The server's catalog and dialect layer against what real clients send: psql's backslash
//! commands, SQLAlchemy's inspector, pgjdbc's DatabaseMetaData, node-postgres, Metabase and
//! Superset, run through `dialect::parse` and a session with `pg_catalog::register` over a
//! lake built by `strata build`. Query texts are in fixtures/serve/clients, captured from
//! the clients against a real PostgreSQL.

mod common;

use std::sync::{Arc, OnceLock};

use arrow::util::display::{ArrayFormatter, FormatOptions};
use common::{LakeKind, Project, repo};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as Ast;
use strata::config::Config;
use strata::serve::pg_catalog::{self, Descriptions};
use strata::sql::dialect;

/// The fixture warehouse, built once: `raw.raw_orders` (seed), `silver.recent_orders`
/// (view) and `gold.orders` (table, described in schema.yml).
fn warehouse() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| Project::warehouse(LakeKind::Local))
}

async fn session(project: &Project) -> SessionContext {
    let config = Config::load(project.dir.path(), None).unwrap();
    let ctx = strata::session::context(&config, &project.lake())
        .await
        .unwrap();
    let descriptions = Descriptions::load(&config).unwrap();
    pg_catalog::register(&ctx, Arc::new(descriptions)).unwrap();
    ctx
}

/// Runs every statement of `sql` as the server would; the rows of the last, as text.
async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let statements = dialect::parse(sql).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for statement in statements {
        // The server answers these itself.
        if matches!(statement, Ast::ShowVariable { .. } | Ast::Set(_)) {
            continue;
        }
        let state = ctx.state();
        let plan = state
            .statement_to_plan(Statement::Statement(Box::new(statement.clone())))
            .await
            .map_err(|e| format!("planning: {e}"))?;
        let batches = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| e.to_string())?
            .collect()
            .await
            .map_err(|e| format!("running: {e}"))?;
        rows.clear();
        for batch in batches {
            let options = FormatOptions::default().with_null("NULL");
            let columns: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for row in 0..batch.num_rows() {
                rows.push(columns.iter().map(|c| c.value(row).to_string()).collect());
            }
        }
    }
    Ok(rows)
}

async fn rows(ctx: &SessionContext, sql: &str) -> Vec<Vec<String>> {
    query(ctx, sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- in:\n{sql}"))
}

/// The queries of a fixture file: each follows a `-- <client> <what>` line.
fn client_queries(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("fixtures/serve/clients").join(file)).unwrap();
    text.split("\n-- ")
        .map(|chunk| chunk.trim_start_matches("-- "))
        .filter_map(|chunk| {
            let (label, sql) = chunk.split_once('\n')?;
            Some((label.to_string(), sql.trim().to_string()))
        })
        .collect()
}

async fn oid_of(ctx: &SessionContext, schema: &str, table: &str) -> String {
    rows(
        ctx,
        &format!(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relname = '{table}'"
        ),
    )
    .await[0][0]
        .clone()
}

#[tokio::test]
async fn every_captured_client_query_runs() {
    let ctx = session(warehouse()).await;
    let oid = oid_of(&ctx, "gold", "orders").await;
    let mut failures = Vec::new();
    for file in ["psql.sql", "sqlalchemy.sql"] {
        for (label, sql) in client_queries(file) {
            let sql = sql.replace("{oid}", &oid);
            if let Err(e) = query(&ctx, &sql).await {
                failures.push(format!("{label}: {e}\n{sql}\n"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
