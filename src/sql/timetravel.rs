//! Reading lake tables as they were: `FROM t VERSION AS OF 3` / `TIMESTAMP AS OF '…'`
//! (Delta's own syntax) and `SET strata.as_of_run = '<run id>'`, which pins every model
//! table of a session to the version a run left it at. Each pinned reference is rewritten to
//! a session table registered at that snapshot. The server, `strata sql` and the REPL's
//! embedded backend all read tables at a version through here.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Statement, TableFactor, TableVersion, Value, VisitMut,
    VisitorMut,
};
use deltalake::{DeltaTableBuilder, DeltaTableError};

use crate::lake::{Lake, delta, layout};
use crate::meta::{MetaError, RunLog};
use crate::warehouse::catalog::{BRONZE, META, PUBLIC};

/// Strata's own session parameter pinning model tables to the versions a run produced.
pub const AS_OF_RUN: &str = "strata.as_of_run";

/// Why a table cannot be read at the snapshot asked for.
#[derive(Debug, thiserror::Error)]
pub enum TimeTravelError {
    #[error(transparent)]
    RunLog(#[from] MetaError),
    #[error("no run \"{run_id}\" in _strata.runs")]
    NoRun { run_id: String },
    #[error("{clause} (use VERSION AS OF n or TIMESTAMP AS OF '…')")]
    UnsupportedClause { clause: String },
    #[error("{schema}.{table} has no versions: time travel reads model tables")]
    Unversioned { schema: String, table: String },
    #[error("VERSION AS OF takes a version number, not {expr}")]
    NotAVersion { expr: String },
    #[error("TIMESTAMP AS OF takes a timestamp literal like '2026-11-21 10:00:00', not {expr}")]
    NotATimestamp { expr: String },
    #[error("relation \"{schema}.{table}\" does not exist (or is not a Delta table)")]
    NoTable { schema: String, table: String },
    #[error("{schema}.{table} has no version {version}: the latest is {latest}")]
    PastLatest {
        schema: String,
        table: String,
        version: u64,
        latest: u64,
    },
    #[error("{schema}.{table} has no version {at}: {source}")]
    NoVersion {
        schema: String,
        table: String,
        at: String,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error("{schema}.{table} at {at}: {source}")]
    Load {
        schema: String,
        table: String,
        at: String,
        #[source]
        source: Box<DeltaTableError>,
    },
    #[error(transparent)]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Delta(Box<DeltaTableError>),
    /// Registering the snapshot in the session failed.
    #[error(transparent)]
    Register(#[from] DataFusionError),
}

impl TimeTravelError {
    /// The SQLSTATE a PostgreSQL client is told (a mistake in the statement is never
    /// XX000). `Register` carries a DataFusion error, which the caller classifies.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::NoRun { .. }
            | Self::NotAVersion { .. }
            | Self::NotATimestamp { .. }
            | Self::PastLatest { .. }
            | Self::NoVersion { .. }
            | Self::Load { .. } => "22023",
            Self::UnsupportedClause { .. } | Self::Unversioned { .. } => "0A000",
            Self::NoTable { .. } => "42P01",
            Self::RunLog(_) | Self::Store(_) | Self::Delta(_) | Self::Register(_) => "XX000",
        }
    }
}

/// The snapshot a reference asks for.
#[derive(Debug, Clone, PartialEq)]
enum At {
    Version(u64),
    Timestamp(DateTime<Utc>),
}

/// Model tables' versions as a run left them: `schema.table` → Delta version.
pub type Pins = BTreeMap<(String, String), u64>;

/// The versions of every table written at or before run `run_id` (the latest such write of
/// each), from `_strata.runs`.
pub async fn pins_of_run(lake: &Lake, run_id: &str) -> Result<Pins, TimeTravelError> {
    let records = RunLog::new().records(lake).await?;
    let Some(end) = records
        .iter()
        .filter(|r| r.run_id == run_id)
        .map(|r| r.started_at)
        .max()
    else {
        return Err(TimeTravelError::NoRun {
            run_id: run_id.to_string(),
        });
    };
    let mut latest: BTreeMap<(String, String), (DateTime<Utc>, u64)> = BTreeMap::new();
    for record in records.iter().filter(|r| r.started_at <= end) {
        let (Some(version), Some((schema, table))) =
            (record.delta_version, record.relation.split_once('.'))
        else {
            continue;
        };
        let key = (schema.to_string(), table.to_string());
        if latest
            .get(&key)
            .is_none_or(|(at, _)| *at <= record.started_at)
        {
            latest.insert(key, (record.started_at, version));
        }
    }
    Ok(latest.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

/// A table reference to rewrite: where it points and the snapshot.
struct Reference {
    schema: String,
    table: String,
    at: At,
}

/// Rewrites the statement's versioned references (explicit, or pinned by `pins`) to session
/// tables registered at those snapshots.
pub async fn rewrite(
    ctx: &SessionContext,
    lake: &Lake,
    statement: &mut Statement,
    default_schema: &str,
    pins: Option<&Pins>,
) -> Result<(), TimeTravelError> {
    let references = collect(statement, default_schema, pins)?;
    let mut names = Vec::with_capacity(references.len());
    for reference in &references {
        names.push(register(ctx, lake, reference).await?);
    }
    let mut names = names.into_iter();
    let _ = statement.visit(&mut Replace {
        default_schema,
        pins,
        names: &mut names,
    });
    Ok(())
}

/// Visits table references in order; `collect` and `Replace` see the same ones.
fn versioned(
    name: &ObjectName,
    version: &Option<TableVersion>,
    default_schema: &str,
    pins: Option<&Pins>,
) -> Result<Option<Reference>, TimeTravelError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect();
    let (schema, table) = match parts.as_slice() {
        [table] => (default_schema.to_string(), table.clone()),
        [schema, table] | [_, schema, table] => (schema.clone(), table.clone()),
        _ => return Ok(None),
    };
    let at = match version {
        Some(TableVersion::VersionAsOf(expr)) => At::Version(version_number(expr)?),
        Some(TableVersion::TimestampAsOf(expr)) => At::Timestamp(timestamp(expr)?),
        Some(other) => {
            return Err(TimeTravelError::UnsupportedClause {
                clause: other.to_string(),
            });
        }
        None => match pins.and_then(|p| p.get(&(schema.clone(), table.clone()))) {
            Some(v) => At::Version(*v),
            None => return Ok(None),
        },
    };
    if [BRONZE, PUBLIC, META].contains(&schema.as_str()) && version.is_some() {
        return Err(TimeTravelError::Unversioned { schema, table });
    }
    Ok(Some(Reference { schema, table, at }))
}

fn collect(
    statement: &mut Statement,
    default_schema: &str,
    pins: Option<&Pins>,
) -> Result<Vec<Reference>, TimeTravelError> {
    struct Collect<'a> {
        default_schema: &'a str,
        pins: Option<&'a Pins>,
        found: Vec<Reference>,
    }
    impl VisitorMut for Collect<'_> {
        type Break = TimeTravelError;
        fn pre_visit_table_factor(
            &mut self,
            factor: &mut TableFactor,
        ) -> ControlFlow<TimeTravelError> {
            if let TableFactor::Table {
                name,
                version,
                args: None,
                ..
            } = factor
            {
                match versioned(name, version, self.default_schema, self.pins) {
                    Ok(Some(r)) => self.found.push(r),
                    Ok(None) => {}
                    Err(e) => return ControlFlow::Break(e),
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut visitor = Collect {
        default_schema,
        pins,
        found: Vec::new(),
    };
    match statement.visit(&mut visitor) {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(visitor.found),
    }
}

struct Replace<'a, I> {
    default_schema: &'a str,
    pins: Option<&'a Pins>,
    names: &'a mut I,
}

impl<I: Iterator<Item = String>> VisitorMut for Replace<'_, I> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            version,
            args: None,
            alias,
            ..
        } = factor
            && let Ok(Some(reference)) = versioned(name, version, self.default_schema, self.pins)
            && let Some(registered) = self.names.next()
        {
            // Keep the reference's name visible to the rest of the query (`t.col`).
            if alias.is_none() {
                *alias = Some(datafusion::sql::sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::new(reference.table),
                    columns: vec![],
                    at: None,
                });
            }
            *name = ObjectName(vec![
                ObjectNamePart::Identifier(Ident::new(PUBLIC)),
                ObjectNamePart::Identifier(Ident::new(registered)),
            ]);
            *version = None;
        }
        ControlFlow::Continue(())
    }
}

/// Registers the snapshot as a session table; its name.
async fn register(
    ctx: &SessionContext,
    lake: &Lake,
    reference: &Reference,
) -> Result<String, TimeTravelError> {
    let label = match &reference.at {
        At::Version(v) => format!("v{v}"),
        At::Timestamp(t) => format!("t{}", t.timestamp_micros()),
    };
    let name = format!("__{}_{}_{label}", reference.schema, reference.table);
    if ctx
        .table_exist(format!("{PUBLIC}.{name}").as_str())
        .unwrap_or(false)
    {
        return Ok(name);
    }
    let path = layout::model_table(&reference.schema, &reference.table);
    let (schema, table) = (reference.schema.clone(), reference.table.clone());
    let Some(latest) = delta::latest_version(lake, &path).await? else {
        return Err(TimeTravelError::NoTable { schema, table });
    };
    // Asked for past the latest, the Delta kernel's own message is about log segments.
    if let At::Version(v) = reference.at
        && v > latest
    {
        return Err(TimeTravelError::PastLatest {
            schema,
            table,
            version: v,
            latest,
        });
    }
    let builder = DeltaTableBuilder::from_url(lake.url_of(&path))
        .map_err(|e| TimeTravelError::Delta(Box::new(e)))?;
    let builder = match reference.at {
        At::Version(v) => builder.with_version(v),
        At::Timestamp(t) => builder.with_timestamp(t),
    };
    let at = describe(&reference.at);
    let loaded = builder.load().await.map_err(|source| match source {
        DeltaTableError::InvalidVersion(_) | DeltaTableError::NotATable(_) => {
            TimeTravelError::NoVersion {
                schema,
                table,
                at,
                source: Box::new(source),
            }
        }
        source => TimeTravelError::Load {
            schema,
            table,
            at,
            source: Box::new(source),
        },
    })?;
    crate::lake::context::register_delta(ctx, &format!("{PUBLIC}.{name}"), &loaded).await?;
    Ok(name)
}

fn describe(at: &At) -> String {
    match at {
        At::Version(v) => format!("version {v}"),
        At::Timestamp(t) => format!("timestamp {t}"),
    }
}

fn version_number(expr: &Expr) -> Result<u64, TimeTravelError> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
    .ok_or_else(|| TimeTravelError::NotAVersion {
        expr: expr.to_string(),
    })
}

fn timestamp(expr: &Expr) -> Result<DateTime<Utc>, TimeTravelError> {
    let text = match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        Expr::TypedString(typed) => match &typed.value.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    text.and_then(|t| parse_timestamp(&t))
        .ok_or_else(|| TimeTravelError::NotATimestamp {
            expr: expr.to_string(),
        })
}

/// RFC 3339, PostgreSQL's `YYYY-MM-DD HH:MM:SS[.f]+HH[:MM]`, or `YYYY-MM-DD[ HH:MM:SS[.f]]`
/// taken as UTC.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}
