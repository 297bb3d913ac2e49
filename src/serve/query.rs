//! Answering statements, over the simple protocol (a string of statements) and the extended
//! one (Parse/Bind/Describe/Execute, with parameters and per-column formats): session
//! commands, and queries run with the connection's limits, their rows streamed to the client.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::memory::MemoryStream;
use futures::{Sink, SinkExt, stream};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::StoredStatement;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_PORTAL};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::startup::ParameterStatus;
use pgwire::types::format::FormatOptions;
use tracing::Instrument;

use super::errors::{from_datafusion, from_time_travel, sqlstate, user_error};
use super::handler::Handler;
use super::interrupt::Guard;
use super::log::QueryLog;
use super::planner::{
    Planner, Prepared, parameter_fields, parse, read_only, show_all_fields, text_field,
};
use super::settings::{REPORTED, Settings};
use super::statement::ServerCommand;
use super::{apply, encode, results};
use crate::sql::ResultNames;
use crate::sql::timetravel::{self, AS_OF_RUN};

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

impl Handler {
    /// Answers one statement. `plan` is the statement's plan when the extended protocol
    /// made it at Parse time (with `params` bound).
    async fn answer<C>(
        &self,
        client: &mut C,
        sql: &str,
        command: ServerCommand,
        names: &ResultNames,
        planned: Option<(LogicalPlan, Option<ParamValues>)>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.conn.touch();
        if self.conn.take_settings_changed() {
            self.apply_settings()?;
        }
        if client.transaction_status() == TransactionStatus::Error
            && !matches!(command, ServerCommand::Commit | ServerCommand::Rollback)
        {
            return Err(user_error(
                sqlstate::IN_FAILED_TRANSACTION,
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        match command {
            ServerCommand::Query(statement) => {
                let plan = match planned {
                    Some((plan, params)) => bind(plan, params)?,
                    None => self.planner.plan(*statement).await?,
                };
                self.run(sql, plan, names, Output::Rows(format)).await
            }
            ServerCommand::CopyOut { query, csv, header } => {
                let plan = self.planner.plan(*query).await?;
                self.run(sql, plan, names, Output::Copy { csv, header })
                    .await
            }
            ServerCommand::Declare { name, query } => {
                let plan = self.planner.plan(*query).await?;
                self.run(sql, plan, names, Output::Cursor(&name)).await
            }
            ServerCommand::Fetch { name, count } => self.fetch(sql, &name, count, format).await,
            ServerCommand::Close { name } => {
                self.planner.cursors.close(name.as_deref()).await?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
            ServerCommand::Set { name, value } => self.set(client, &name, value.as_deref()).await,
            ServerCommand::Reset { name } => match name {
                Some(name) => self.set(client, &name, None).await,
                None => {
                    self.with_settings(|s| {
                        s.reset_all();
                        Ok(())
                    })?;
                    self.apply_settings()?;
                    Ok(Response::Execution(Tag::new("RESET")))
                }
            },
            ServerCommand::Show { name } => {
                let (name, value) = self.with_settings(|s| {
                    s.show(&name)
                        .map_err(|e| user_error(e.sqlstate(), e.to_string()))
                })?;
                Ok(text_rows(vec![text_field(&name)], vec![vec![value]]))
            }
            ServerCommand::ShowAll => {
                let rows = self.with_settings(|s| {
                    Ok(s.all().into_iter().map(|(n, v, d)| vec![n, v, d]).collect())
                })?;
                Ok(text_rows(show_all_fields(), rows))
            }
            ServerCommand::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            ServerCommand::Commit => {
                self.planner.cursors.close(None).await?;
                let tag = if client.transaction_status() == TransactionStatus::Error {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                };
                Ok(Response::TransactionEnd(Tag::new(tag)))
            }
            ServerCommand::Rollback => {
                self.planner.cursors.close(None).await?;
                Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
            }
            ServerCommand::Ignored { tag } => Ok(Response::Execution(Tag::new(tag))),
            ServerCommand::Write { what } => Err(read_only(&what)),
            ServerCommand::Unsupported { what } => Err(user_error(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!("{what} is not supported by Strata"),
            )),
        }
    }

    /// Applies the session's parameters to its planning (after a RESET ALL, or a
    /// `set_config` in an earlier query).
    fn apply_settings(&self) -> PgWireResult<()> {
        let ctx = self.planner.session()?;
        let path = self.with_settings(|s| {
            apply::session_settings(ctx, s)
                .map_err(|e| user_error(sqlstate::INVALID_PARAMETER_VALUE, e.to_string()))?;
            Ok(s.search_path())
        })?;
        self.planner.update_travel(path, None);
        Ok(())
    }

    fn with_settings<T>(
        &self,
        f: impl FnOnce(&mut Settings) -> PgWireResult<T>,
    ) -> PgWireResult<T> {
        let mut settings = self.conn.settings.lock();
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
                    timetravel::pins_of_run(self.planner.lake()?, run)
                        .await
                        .map_err(from_time_travel)?,
                )),
                None => Some(None),
            }
        } else {
            None
        };
        let (canonical, shown, path) = self.with_settings(|s| {
            s.set(name, value)
                .map_err(|e| user_error(e.sqlstate(), e.to_string()))?;
            apply::session_settings(ctx, s)
                .map_err(|e| user_error(sqlstate::INVALID_PARAMETER_VALUE, e.to_string()))?;
            let (canonical, shown) = s
                .show(name)
                .map_err(|e| user_error(e.sqlstate(), e.to_string()))?;
            Ok((canonical, shown, s.search_path()))
        })?;
        self.planner.update_travel(path, new_pins);
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
            self.conn.peer,
            self.conn.user_name(),
            sql,
            Arc::clone(&self.server.metrics),
        );
        let guard = self
            .conn
            .interrupts
            .start(timeout, Some(Arc::clone(&self.conn.probe)));
        Ok((guard, log, options))
    }

    /// Runs a planned query; its rows (COPY data, or a cursor's) flow to the client as they
    /// come, under PostgreSQL's column names.
    async fn run(
        &self,
        sql: &str,
        plan: LogicalPlan,
        names: &ResultNames,
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
        let stream = names.stream(stream);
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
        // Decimals beyond rust_decimal's digits, and lists whose elements the plan marks
        // (`oid[]`), are decoded as their plain types first.
        if let Some(wanted @ (DataType::Decimal128(..) | DataType::List(_))) =
            field.as_deref().map(|f| f.data_type())
            && value.value.data_type() != *wanted
        {
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
impl SimpleQueryHandler for Handler {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = parse(query)?;
        let mut responses = Vec::with_capacity(statements.len());
        for (statement, names) in statements {
            let sql = statement.to_string();
            match self
                .answer(
                    client,
                    &sql,
                    ServerCommand::of(statement),
                    &names,
                    None,
                    &Format::UnifiedText,
                )
                .instrument(tracing::debug_span!("statement"))
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
impl ExtendedQueryHandler for Handler {
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
            &prepared.names,
            planned,
            &portal.result_column_format,
        )
        .instrument(tracing::debug_span!("statement"))
        .await
    }
}
