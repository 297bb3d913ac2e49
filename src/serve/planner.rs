//! Planning a connection's statements in its DataFusion session: parsing (the PostgreSQL
//! dialect of [`crate::sql::dialect`]), the rewrites every statement gets, read-only checks
//! and parameter types. pgwire asks the planner (its `QueryParser`) at Parse time; the query
//! handlers ask it for each statement they run.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow::datatypes::{FieldRef, SchemaRef};
use async_trait::async_trait;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use parking_lot::Mutex;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::api::stmt::QueryParser;
use pgwire::api::{ClientInfo, Type};
use pgwire::error::{PgWireError, PgWireResult};
use tracing::Instrument;

use super::cursor::Cursors;
use super::encode;
use super::errors::{from_datafusion, from_time_travel, sqlstate, user_error};
use super::statement::ServerCommand;
use crate::lake::Lake;
use crate::sql::search_path::SearchPath;
use crate::sql::timetravel::Pins;
use crate::sql::{ResultNames, dialect, rewrite};
use crate::warehouse::LakeCatalog;

/// A parsed statement of the extended protocol: its command and, for queries, the plan made
/// at Parse time (parameter and result types come from it).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) sql: String,
    pub(super) command: ServerCommand,
    pub(super) plan: Option<LogicalPlan>,
    /// PostgreSQL's names for the result columns.
    pub(super) names: ResultNames,
    /// The rows' schema of a FETCH (the cursor's).
    fetched: Option<SchemaRef>,
}

/// Plans statements in the connection's session (pgwire asks the parser, not the handler).
#[derive(Default)]
pub struct Planner {
    session: OnceLock<(SessionContext, Lake)>,
    travel: Mutex<Travel>,
    pub(super) cursors: Cursors,
    /// When the catalog's table listing was last read (names are always looked up live; the
    /// listing feeds `pg_catalog` and `information_schema`).
    listed: Mutex<Option<Instant>>,
}

/// How stale a session's table listing may get before a statement re-reads it.
const LISTING_TTL: Duration = Duration::from_secs(1);

/// What name resolution and time travel need from the session's parameters.
#[derive(Debug, Default)]
struct Travel {
    path: SearchPath,
    pins: Option<Pins>,
}

impl Planner {
    pub(super) fn start(&self, ctx: SessionContext, lake: Lake) {
        let _ = self.session.set((ctx, lake));
    }

    pub(super) fn session(&self) -> PgWireResult<&SessionContext> {
        Ok(&self.parts()?.0)
    }

    fn parts(&self) -> PgWireResult<&(SessionContext, Lake)> {
        self.session.get().ok_or(PgWireError::NotReadyForQuery)
    }

    pub(super) fn lake(&self) -> PgWireResult<&Lake> {
        Ok(&self.parts()?.1)
    }

    /// Re-reads the lake's schemas and tables, so a build that committed since shows up.
    async fn refresh_listing(&self, ctx: &SessionContext) -> PgWireResult<()> {
        let stale = self
            .listed
            .lock()
            .is_none_or(|at| at.elapsed() > LISTING_TTL);
        if !stale {
            return Ok(());
        }
        if let Some(catalog) = ctx.catalog(crate::session::CATALOG)
            && let Some(lake) = catalog.downcast_ref::<LakeCatalog>()
        {
            lake.refresh().await.map_err(from_datafusion)?;
        }
        *self.listed.lock() = Some(Instant::now());
        Ok(())
    }

    /// The search path of unqualified names and, when given, new pins (`Some(None)` unpins).
    pub(super) fn update_travel(&self, path: SearchPath, pins: Option<Option<Pins>>) {
        let mut travel = self.travel.lock();
        travel.path = path;
        if let Some(pins) = pins {
            travel.pins = pins;
        }
    }

    pub(super) async fn plan(&self, statement: Statement) -> PgWireResult<LogicalPlan> {
        let mut statement = statement;
        let (ctx, lake) = self.parts()?;
        self.refresh_listing(ctx)
            .instrument(tracing::debug_span!("listing"))
            .await?;
        let (path, pins) = {
            let travel = self.travel.lock();
            (travel.path.clone(), travel.pins.clone())
        };
        rewrite::before_planning(ctx, lake, &mut statement, &path, pins.as_ref())
            .instrument(tracing::debug_span!("rewrite"))
            .await
            .map_err(from_time_travel)?;
        let state = ctx.state();
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(statement)))
            .instrument(tracing::debug_span!("logical plan"))
            .await
            .map_err(from_datafusion)?;
        refuse_writes(&plan)?;
        type_cast_parameters(plan)
    }
}

/// `$1::int2` gives the parameter its type, as in PostgreSQL (DataFusion infers parameter
/// types from comparisons only, and the client would otherwise be told `text`).
fn type_cast_parameters(plan: LogicalPlan) -> PgWireResult<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Cast, Expr, expr::Placeholder};
    plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|expr| {
            expr.transform_up(|e| match e {
                Expr::Cast(Cast { expr, field }) => {
                    let (inner, typed) = match *expr {
                        Expr::Placeholder(Placeholder { id, field: None }) => {
                            let typed = Placeholder::new_with_field(id, Some(Arc::clone(&field)));
                            (Expr::Placeholder(typed), true)
                        }
                        inner => (inner, false),
                    };
                    let cast = Expr::Cast(Cast::new_from_field(Box::new(inner), field));
                    Ok(if typed {
                        Transformed::yes(cast)
                    } else {
                        Transformed::no(cast)
                    })
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|t| t.data)
    .map_err(from_datafusion)
}

/// The plan-level check behind the statement-level one: nothing that writes gets through
/// (an `EXPLAIN ANALYZE INSERT …`, say). Temporary views live in the session only.
fn refuse_writes(plan: &LogicalPlan) -> PgWireResult<()> {
    use datafusion::logical_expr::DdlStatement;
    let mut refused = None;
    use datafusion::common::tree_node::TreeNode;
    plan.apply(|node| {
        let write = match node {
            LogicalPlan::Dml(_) | LogicalPlan::Copy(_) => true,
            LogicalPlan::Ddl(ddl) => {
                !matches!(ddl, DdlStatement::CreateView(_) | DdlStatement::DropView(_))
            }
            _ => false,
        };
        if write {
            refused = Some(node.display().to_string());
            return Ok(datafusion::common::tree_node::TreeNodeRecursion::Stop);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .map_err(from_datafusion)?;
    match refused {
        Some(what) => Err(read_only(&what)),
        None => Ok(()),
    }
}

pub(super) fn read_only(what: &str) -> PgWireError {
    user_error(
        sqlstate::READ_ONLY_TRANSACTION,
        format!(
            "cannot execute {what} in a read-only transaction: the warehouse is read-only (models write the lake)"
        ),
    )
}

#[async_trait]
impl QueryParser for Planner {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut statements = parse(sql)?;
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(user_error(
                sqlstate::SYNTAX_ERROR,
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let (statement, names) = statements.remove(0);
        let command = ServerCommand::of(statement);
        let plan = match &command {
            ServerCommand::Query(statement) => Some(
                self.plan(*statement.clone())
                    .instrument(tracing::debug_span!("parse"))
                    .await?,
            ),
            _ => None,
        };
        let fetched = match &command {
            ServerCommand::Fetch { name, .. } => Some(self.cursors.schema(name).await?),
            _ => None,
        };
        Ok(Some(Prepared {
            sql: sql.to_string(),
            command,
            plan,
            names,
            fetched,
        }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        let Some(plan) = &stmt.plan else {
            return Ok(Vec::new());
        };
        parameter_fields(plan)?
            .iter()
            .map(|field| encode::parameter_type(field.as_deref()))
            .collect()
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.unwrap_or(&Format::UnifiedText);
        match (&stmt.command, &stmt.plan) {
            (ServerCommand::Query(_), Some(plan)) if !matches!(plan, LogicalPlan::Ddl(_)) => {
                encode::fields(&stmt.names.rename(plan.schema().inner()), format, None)
            }
            (ServerCommand::Fetch { .. }, _) => match &stmt.fetched {
                Some(schema) => encode::fields(schema, format, None),
                None => Ok(Vec::new()),
            },
            (ServerCommand::Show { name }, _) => Ok(vec![text_field(name)]),
            (ServerCommand::ShowAll, _) => Ok(show_all_fields()),
            _ => Ok(Vec::new()),
        }
    }
}

/// The parameters' fields in `$1, $2, …` order (`None` where DataFusion cannot tell).
pub(super) fn parameter_fields(plan: &LogicalPlan) -> PgWireResult<Vec<Option<FieldRef>>> {
    let fields = plan.get_parameter_fields().map_err(from_datafusion)?;
    let mut numbered: Vec<(usize, Option<FieldRef>)> = fields
        .into_iter()
        .filter_map(|(name, f)| Some((name.trim_start_matches('$').parse().ok()?, f)))
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    Ok(numbered.into_iter().map(|(_, f)| f).collect())
}

/// The statements of `sql`, each with PostgreSQL's names for its result columns.
pub(super) fn parse(sql: &str) -> PgWireResult<Vec<(Statement, ResultNames)>> {
    dialect::parse_named(sql).map_err(|e| user_error(sqlstate::SYNTAX_ERROR, e.to_string()))
}

pub(super) fn text_field(name: &str) -> FieldInfo {
    FieldInfo::new(name.to_string(), None, None, Type::TEXT, FieldFormat::Text)
}

pub(super) fn show_all_fields() -> Vec<FieldInfo> {
    ["name", "setting", "description"]
        .into_iter()
        .map(text_field)
        .collect()
}
