//! Answering statements, over the simple protocol (a string of statements) and the extended
//! one (Parse/Bind/Describe/Execute, with parameters and per-column formats).

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, FieldRef, SchemaRef};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_PORTAL};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::ParameterStatus;
use pgwire::types::format::FormatOptions;

use super::connection::{Connection, REPORTED};
use super::cursor::Cursors;
use super::errors::{from_datafusion, sqlstate, user_error};
use super::interrupt::Guard;
use super::log::QueryLog;
use super::settings::{AS_OF_RUN, Settings};
use super::statement::Command;
use super::timetravel::{self, Pins};
use super::{apply, dialect, encode, results};
use crate::lake::Lake;
use crate::warehouse::LakeCatalog;
use parking_lot::Mutex;

/// A parsed statement of the extended protocol: its command and, for queries, the plan made
/// at Parse time (parameter and result types come from it).
#[derive(Debug, Clone)]
pub struct Prepared {
    sql: String,
    command: Command,
    plan: Option<LogicalPlan>,
    /// The rows' schema of a FETCH (the cursor's).
    fetched: Option<SchemaRef>,
}

/// Plans statements in the connection's session (pgwire asks the parser, not the handler).
#[derive(Default)]
pub struct Planner {
    session: OnceLock<(SessionContext, Lake)>,
    travel: Mutex<Travel>,
    cursors: Cursors,
    /// When the catalog's table listing was last read (names are always looked up live; the
    /// listing feeds `pg_catalog` and `information_schema`).
    listed: Mutex<Option<Instant>>,
}

/// How stale a session's table listing may get before a statement re-reads it.
const LISTING_TTL: Duration = Duration::from_secs(1);

/// What time travel needs from the session's parameters.
#[derive(Debug, Default)]
struct Travel {
    default_schema: String,
    pins: Option<Pins>,
}

/// The schema unqualified names resolve in.
pub(super) fn default_schema_of(settings: &Settings) -> String {
    settings
        .first_schema()
        .unwrap_or_else(|| crate::warehouse::catalog::PUBLIC.to_string())
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

    /// The schema of unqualified names and, when given, new pins (`Some(None)` unpins).
    pub(super) fn update_travel(&self, default_schema: String, pins: Option<Option<Pins>>) {
        let mut travel = self.travel.lock();
        travel.default_schema = default_schema;
        if let Some(pins) = pins {
            travel.pins = pins;
        }
    }

    async fn plan(&self, statement: Statement) -> PgWireResult<LogicalPlan> {
        let mut statement = statement;
        crate::sql::rewrite::named_args(&mut statement);
        let (ctx, lake) = self.parts()?;
        self.refresh_listing(ctx).await?;
        let (default_schema, pins) = {
            let travel = self.travel.lock();
            (travel.default_schema.clone(), travel.pins.clone())
        };
        timetravel::rewrite(ctx, lake, &mut statement, &default_schema, pins.as_ref()).await?;
        let state = ctx.state();
        let plan = state
            .statement_to_plan(DFStatement::Statement(Box::new(statement)))
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

fn read_only(what: &str) -> PgWireError {
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
        let command = Command::of(statements.remove(0));
        let plan = match &command {
            Command::Query(statement) => Some(self.plan(*statement.clone()).await?),
            _ => None,
        };
        let fetched = match &command {
            Command::Fetch { name, .. } => Some(self.cursors.schema(name).await?),
            _ => None,
        };
        Ok(Some(Prepared {
            sql: sql.to_string(),
            command,
            plan,
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
            (Command::Query(_), Some(plan)) if !matches!(plan, LogicalPlan::Ddl(_)) => {
                encode::fields(plan.schema().as_arrow(), format, None)
            }
            (Command::Fetch { .. }, _) => match &stmt.fetched {
                Some(schema) => encode::fields(schema, format, None),
                None => Ok(Vec::new()),
            },
            (Command::Show { name }, _) => Ok(vec![text_field(name)]),
            (Command::ShowAll, _) => Ok(show_all_fields()),
            _ => Ok(Vec::new()),
        }
    }
}

/// The parameters' fields in `$1, $2, …` order (`None` where DataFusion cannot tell).
fn parameter_fields(plan: &LogicalPlan) -> PgWireResult<Vec<Option<FieldRef>>> {
    let fields = plan.get_parameter_fields().map_err(from_datafusion)?;
    let mut numbered: Vec<(usize, Option<FieldRef>)> = fields
        .into_iter()
        .filter_map(|(name, f)| Some((name.trim_start_matches('$').parse().ok()?, f)))
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    Ok(numbered.into_iter().map(|(_, f)| f).collect())
}

fn parse(sql: &str) -> PgWireResult<Vec<Statement>> {
    dialect::parse(sql).map_err(|e| user_error(sqlstate::SYNTAX_ERROR, e.to_string()))
}

fn text_field(name: &str) -> FieldInfo {
    FieldInfo::new(name.to_string(), None, None, Type::TEXT, FieldFormat::Text)
}

fn show_all_fields() -> Vec<FieldInfo> {
    ["name", "setting", "description"]
        .into_iter()
        .map(text_field)
        .collect()
}

/// Rows of text values, for SHOW.
fn text_rows(fields: Vec<FieldInfo>, rows: Vec<Vec<String>>) -> Response {
    let fields = Arc::new(fields);
    let encode_fields = Arc::clone(&fields);
    let rows = rows.into_iter().map(move |row| {
        let mut encoder = DataRowEncoder::new(Arc::clone(&encode_fields));
        for value in row {
            encoder.encode_field(&Some(value))?;
        }
        Ok(encoder.take_row())
    });
    Response::Query(QueryResponse::new(
        fields,
        stream::iter(rows.collect::<Vec<_>>()),
    ))
}

impl Connection {
    /// Answers one statement. `plan` is the statement's plan when the extended protocol
    /// made it at Parse time (with `params` bound).
    async fn answer<C>(
        &self,
        client: &mut C,
        sql: &str,
        command: Command,
        planned: Option<(LogicalPlan, Option<ParamValues>)>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.touch();
        if client.transaction_status() == TransactionStatus::Error
            && !matches!(command, Command::Commit | Command::Rollback)
        {
            return Err(user_error(
                sqlstate::IN_FAILED_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        match command {
            Command::Query(statement) => {
                let plan = match planned {
                    Some((plan, params)) => bind(plan, params)?,
                    None => self.planner.plan(*statement).await?,
                };
                self.run(sql, plan, Output::Rows(format)).await
            }
            Command::CopyOut { query, csv, header } => {
                let plan = self.planner.plan(*query).await?;
                self.run(sql, plan, Output::Copy { csv, header }).await
            }
            Command::Declare { name, query } => {
                let plan = self.planner.plan(*query).await?;
                self.run(sql, plan, Output::Cursor(&name)).await
            }
            Command::Fetch { name, count } => self.fetch(sql, &name, count, format).await,
            Command::Close { name } => {
                self.planner.cursors.close(name.as_deref()).await?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
            Command::Set { name, value } => self.set(client, &name, value.as_deref()).await,
            Command::Reset { name } => match name {
                Some(name) => self.set(client, &name, None).await,
                None => {
                    self.with_settings(|s| {
                        s.reset_all();
                        Ok(())
                    })?;
                    Ok(Response::Execution(Tag::new("RESET")))
                }
            },
            Command::Show { name } => {
                let (name, value) = self.with_settings(|s| {
                    s.show(&name)
                        .map_err(|e| user_error(e.sqlstate(), e.to_string()))
                })?;
                Ok(text_rows(vec![text_field(&name)], vec![vec![value]]))
            }
            Command::ShowAll => {
                let rows = self.with_settings(|s| {
                    Ok(s.all().into_iter().map(|(n, v, d)| vec![n, v, d]).collect())
                })?;
                Ok(text_rows(show_all_fields(), rows))
            }
            Command::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Command::Commit => {
                self.planner.cursors.close(None).await?;
                let tag = if client.transaction_status() == TransactionStatus::Error {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                };
                Ok(Response::TransactionEnd(Tag::new(tag)))
            }
            Command::Rollback => {
                self.planner.cursors.close(None).await?;
                Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
            }
            Command::Ignored { tag } => Ok(Response::Execution(Tag::new(tag))),
            Command::Write { what } => Err(read_only(&what)),
            Command::Unsupported { what } => Err(user_error(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("{what} is not supported by Strata"),
            )),
        }
    }

    fn with_settings<T>(
        &self,
        f: impl FnOnce(&mut Settings) -> PgWireResult<T>,
    ) -> PgWireResult<T> {
        let mut settings = self.settings.lock();
        let settings = settings.as_mut().ok_or(PgWireError::NotReadyForQuery)?;
        f(settings)
    }

    async fn set<C>(
        &self,
        client: &mut C,
        name: &str,
        value: Option<&str>,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ctx = self.planner.session()?;
        if name.to_ascii_lowercase().starts_with("datafusion.") {
            let value = value.ok_or_else(|| {
                user_error(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "RESET of datafusion options",
                )
            })?;
            apply::datafusion_option(ctx, &name.to_ascii_lowercase(), value)
                .map_err(|e| user_error(sqlstate::INVALID_PARAMETER_VALUE, e.to_string()))?;
            return Ok(Response::Execution(Tag::new("SET")));
        }
        // A run to pin to is looked up before the parameter changes, so a bad id leaves the
        // session as it was (like any invalid SET).
        let new_pins = if name.eq_ignore_ascii_case(AS_OF_RUN) {
            match value.filter(|v| !v.is_empty()) {
                Some(run) => Some(Some(
                    timetravel::pins_of_run(self.planner.lake()?, run).await?,
                )),
                None => Some(None),
            }
        } else {
            None
        };
        let (canonical, shown, default_schema) = self.with_settings(|s| {
            s.set(name, value)
                .map_err(|e| user_error(e.sqlstate(), e.to_string()))?;
            apply::session_settings(ctx, s)
                .map_err(|e| user_error(sqlstate::INVALID_PARAMETER_VALUE, e.to_string()))?;
            let (canonical, shown) = s
                .show(name)
                .map_err(|e| user_error(e.sqlstate(), e.to_string()))?;
            Ok((canonical, shown, default_schema_of(s)))
        })?;
        self.planner.update_travel(default_schema, new_pins);
        if REPORTED.contains(&canonical.as_str()) {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    canonical, shown,
                )))
                .await?;
        }
        Ok(Response::Execution(Tag::new("SET")))
    }

    /// The session's timeout and value formats, a log line and an interrupt guard for a
    /// statement about to run.
    fn begin(&self, sql: &str) -> PgWireResult<(Guard, QueryLog, Arc<FormatOptions>)> {
        let (timeout, options) =
            self.with_settings(|s| Ok((s.statement_timeout(), results::format_options(s))))?;
        let log = QueryLog::start(
            self.peer,
            self.user_name(),
            sql,
            Arc::clone(&self.server.metrics),
        );
        let guard = self
            .interrupts
            .start(timeout, Some(Arc::clone(&self.probe)));
        Ok((guard, log, options))
    }

    /// Runs a planned query; its rows (COPY data, or a cursor's) flow to the client as they
    /// come.
    async fn run(
        &self,
        sql: &str,
        plan: LogicalPlan,
        output: Output<'_>,
    ) -> PgWireResult<Response> {
        let ctx = self.planner.session()?;
        let (guard, mut log, options) = self.begin(sql)?;
        let ddl_tag = match &plan {
            LogicalPlan::Ddl(ddl) => Some(match ddl {
                datafusion::logical_expr::DdlStatement::DropView(_) => "DROP VIEW",
                _ => "CREATE VIEW",
            }),
            _ => None,
        };
        let started = guard
            .run(async {
                let frame = ctx
                    .execute_logical_plan(plan)
                    .await
                    .map_err(from_datafusion)?;
                self.server
                    .executor
                    .start(frame, guard.stop_token())
                    .await
                    .map_err(from_datafusion)
            })
            .await;
        let (physical, stream) = match started {
            Ok(started) => started,
            Err(e) => {
                log.finish(Some(&e));
                return Err(e);
            }
        };
        log.running(physical);
        if let Some(tag) = ddl_tag {
            log.finish(None);
            return Ok(Response::Execution(Tag::new(tag)));
        }
        let fields = |format: &Format| -> PgWireResult<Arc<Vec<FieldInfo>>> {
            Ok(Arc::new(results::fields(
                &stream.schema(),
                format,
                options.clone(),
            )?))
        };
        Ok(match output {
            Output::Rows(format) => {
                let fields = fields(format)?;
                Response::Query(results::query_response(stream, fields, guard, log))
            }
            Output::Copy { csv, header } => {
                let fields = fields(&Format::UnifiedText)?;
                Response::CopyOut(results::copy_response(
                    stream, fields, csv, header, guard, log,
                ))
            }
            Output::Cursor(name) => {
                self.planner.cursors.declare(name, stream).await?;
                log.finish(None);
                Response::Execution(Tag::new("DECLARE CURSOR"))
            }
        })
    }

    /// The next rows of a cursor.
    async fn fetch(
        &self,
        sql: &str,
        name: &str,
        count: Option<u64>,
        format: &Format,
    ) -> PgWireResult<Response> {
        let (guard, mut log, options) = self.begin(sql)?;
        let fetched = guard.run(self.planner.cursors.fetch(name, count)).await;
        let (schema, batches) = match fetched {
            Ok(fetched) => fetched,
            Err(e) => {
                log.finish(Some(&e));
                return Err(e);
            }
        };
        let fields = Arc::new(results::fields(&schema, format, options)?);
        let stream = MemoryStream::try_new(batches, schema, None).map_err(from_datafusion)?;
        let mut response = results::query_response(Box::pin(stream), fields, guard, log);
        response.command_tag = "FETCH".to_string();
        Ok(Response::Query(response))
    }
}

/// Where a query's rows go.
enum Output<'a> {
    Rows(&'a Format),
    Copy { csv: bool, header: bool },
    Cursor(&'a str),
}

/// Decodes a portal's parameters as the plan's fields say. arrow-pg decodes numerics through
/// rust_decimal, which loses digits beyond its 28 (and `numeric` is decimal(38, 10) here),
/// and reads uuid and json only as text: binary numeric, uuid and jsonb values are turned
/// into their text first, uuid and json are read as text, and numerics are decoded as sent
/// and then cast.
fn parameters(portal: &Portal<Prepared>, fields: &[Option<FieldRef>]) -> PgWireResult<ParamValues> {
    let stored = &portal.statement;
    let mut declared = Vec::with_capacity(portal.parameters.len());
    let mut server_types = Vec::with_capacity(portal.parameters.len());
    let mut formats = Vec::with_capacity(portal.parameters.len());
    let mut values = Vec::with_capacity(portal.parameters.len());
    // Whether the portal must be rebuilt (a value turned into text, a declared type read as
    // another): usually not, and rebuilding clones the prepared statement.
    let mut rewritten = false;
    for (i, value) in portal.parameters.iter().enumerate() {
        let hint = stored.parameter_types.get(i).cloned().flatten();
        let server = encode::parameter_type(fields.get(i).and_then(|f| f.as_deref()))?;
        let ty = hint.clone().unwrap_or_else(|| server.clone());
        let binary = portal.parameter_format.is_binary(i);
        let (value, binary) = match value {
            Some(bytes) if binary && encode::sent_as_text(&ty) => {
                rewritten = true;
                (Some(encode::binary_to_text(&ty, bytes)?), false)
            }
            other => (other.clone(), binary),
        };
        let read = hint.as_ref().map(encode::read_as);
        rewritten |= read != hint;
        declared.push(read);
        server_types.push(encode::read_as(&server));
        formats.push(i16::from(binary));
        values.push(value);
    }
    let rebuilt;
    let portal = if rewritten {
        let statement = StoredStatement::new(stored.id.clone(), stored.statement.clone(), declared);
        let mut copy = Portal::new_cursor(portal.name.clone(), Arc::new(statement));
        copy.parameter_format = Format::Individual(formats);
        copy.parameters = values;
        rebuilt = copy;
        &rebuilt
    } else {
        portal
    };
    let as_sent: Vec<Option<&DataType>> = fields
        .iter()
        .map(|f| {
            f.as_deref()
                .map(|f| f.data_type())
                .filter(|t| !matches!(t, DataType::Decimal128(..)))
        })
        .collect();
    let server_types: Vec<Option<&Type>> = server_types.iter().map(Some).collect();
    let decoded = arrow_pg::datatypes::df::deserialize_parameters_with_server_types(
        portal,
        &as_sent,
        &server_types,
    )?;
    let mut values = match decoded {
        ParamValues::List(values) => values,
        named => return Ok(named),
    };
    for (value, field) in values.iter_mut().zip(fields) {
        if let Some(wanted @ DataType::Decimal128(..)) = field.as_deref().map(|f| f.data_type()) {
            value.value = value.value.cast_to(wanted).map_err(from_datafusion)?;
        }
    }
    Ok(ParamValues::List(values))
}

/// Binds parameter values into a plan made at Parse time.
fn bind(plan: LogicalPlan, params: Option<ParamValues>) -> PgWireResult<LogicalPlan> {
    match params {
        Some(params) => plan
            .replace_params_with_values(&params)
            .map_err(from_datafusion),
        None => Ok(plan),
    }
}

fn error_info(error: PgWireError) -> ErrorInfo {
    error.into()
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = parse(query)?;
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let sql = statement.to_string();
            match self
                .answer(
                    client,
                    &sql,
                    Command::of(statement),
                    None,
                    &Format::UnifiedText,
                )
                .await
            {
                Ok(response) => responses.push(response),
                // PostgreSQL stops at the first failing statement of a query string.
                Err(e) => {
                    responses.push(Response::Error(Box::new(error_info(e))));
                    break;
                }
            }
        }
        if responses.is_empty() {
            responses.push(Response::EmptyQuery);
        }
        Ok(responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = Planner;

    fn query_parser(&self) -> Arc<Planner> {
        Arc::clone(&self.planner)
    }

    /// A cursor is a portal too: drivers describe it by name after DECLARE (psycopg's named
    /// cursors do).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
            && let Ok(schema) = self.planner.cursors.schema(name).await
        {
            let fields = encode::fields(&schema, &Format::UnifiedText, None)?;
            return send_describe_response(client, &DescribePortalResponse::new(fields)).await;
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let planned = match &prepared.plan {
            Some(plan) => {
                let fields = parameter_fields(plan)?;
                Some((plan.clone(), Some(parameters(portal, &fields)?)))
            }
            None => None,
        };
        self.answer(
            client,
            &prepared.sql,
            prepared.command.clone(),
            planned,
            &portal.result_column_format,
        )
        .await
    }
}
