//! Errors as PostgreSQL reports them: an SQLSTATE that drivers and tools branch on, never the
//! catch-all XX000 for a mistake the user made.

use arrow::error::ArrowError;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::sql::timetravel::TimeTravelError;

/// SQLSTATE codes Strata sends (PostgreSQL's appendix A).
pub mod sqlstate {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const GROUPING_ERROR: &str = "42803";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const NUMERIC_OUT_OF_RANGE: &str = "22003";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const QUERY_CANCELED: &str = "57014";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const READ_ONLY_TRANSACTION: &str = "25006";
    pub const IN_FAILED_TRANSACTION: &str = "25P02";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const UNDEFINED_DATABASE: &str = "3D000";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const INTERNAL_ERROR: &str = "XX000";
}

/// An error for the client: severity ERROR, the code, the message.
pub fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        message.into(),
    )))
}

/// A connection-ending error (startup refusals).
pub fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_string(),
        code.to_string(),
        message.into(),
    )))
}

/// A time travel error as the client sees it.
pub fn from_time_travel(error: TimeTravelError) -> PgWireError {
    match error {
        TimeTravelError::Register(e) => from_datafusion(e),
        other => user_error(other.sqlstate(), other.to_string()),
    }
}

/// A DataFusion error as the client sees it.
pub fn from_datafusion(error: DataFusionError) -> PgWireError {
    let code = classify(&error);
    user_error(code, message(&error))
}

/// The message without DataFusion's wrapping ("Error during planning: " and contexts that
/// repeat what the client just sent).
fn message(error: &DataFusionError) -> String {
    match error.find_root() {
        DataFusionError::Plan(m) | DataFusionError::Execution(m) => m.clone(),
        DataFusionError::SchemaError(e, _) => e.to_string(),
        DataFusionError::SQL(e, _) => e.to_string(),
        DataFusionError::ArrowError(e, _) => arrow_message(e),
        DataFusionError::External(e) => e.to_string(),
        _ => error.strip_backtrace(),
    }
}

fn arrow_message(error: &ArrowError) -> String {
    match error {
        ArrowError::DivideByZero => "division by zero".to_string(),
        ArrowError::CastError(m)
        | ArrowError::ParseError(m)
        | ArrowError::ComputeError(m)
        | ArrowError::ArithmeticOverflow(m)
        | ArrowError::InvalidArgumentError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The SQLSTATE for an error, from its root cause.
pub fn classify(error: &DataFusionError) -> &'static str {
    use sqlstate::*;
    match error.find_root() {
        DataFusionError::SQL(..) => SYNTAX_ERROR,
        DataFusionError::SchemaError(e, _) => match e.as_ref() {
            SchemaError::FieldNotFound { .. } => UNDEFINED_COLUMN,
            SchemaError::AmbiguousReference { .. } => AMBIGUOUS_COLUMN,
            SchemaError::DuplicateQualifiedField { .. }
            | SchemaError::DuplicateUnqualifiedField { .. } => DUPLICATE_OBJECT,
        },
        DataFusionError::ArrowError(e, _) => arrow_state(e),
        DataFusionError::ResourcesExhausted(_) => OUT_OF_MEMORY,
        DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
        DataFusionError::Plan(m) => plan_state(m),
        DataFusionError::Execution(m) => execution_state(m),
        DataFusionError::External(e) => execution_state(&e.to_string()),
        _ => INTERNAL_ERROR,
    }
}

fn arrow_state(error: &ArrowError) -> &'static str {
    use sqlstate::*;
    match error {
        ArrowError::DivideByZero => DIVISION_BY_ZERO,
        // A number beyond the target type (`CAST(4000000000 AS int4)`, int4 arithmetic).
        ArrowError::CastError(m) if m.starts_with("Can't cast value") => NUMERIC_OUT_OF_RANGE,
        ArrowError::CastError(_) | ArrowError::ParseError(_) => INVALID_TEXT_REPRESENTATION,
        ArrowError::ArithmeticOverflow(_) => NUMERIC_OUT_OF_RANGE,
        ArrowError::ComputeError(_) | ArrowError::InvalidArgumentError(_) => DATA_EXCEPTION,
        ArrowError::MemoryError(_) => OUT_OF_MEMORY,
        _ => INTERNAL_ERROR,
    }
}

/// Planning errors carry their kind only in the text; these are DataFusion 55's wordings.
fn plan_state(message: &str) -> &'static str {
    use sqlstate::*;
    let m = message.to_ascii_lowercase();
    if (m.starts_with("table '") || m.contains("table or view")) && m.contains("not found") {
        UNDEFINED_TABLE
    } else if m.contains("no field named") || m.contains("column") && m.contains("not found") {
        UNDEFINED_COLUMN
    } else if m.contains("invalid function") || m.contains("no function matches") {
        UNDEFINED_FUNCTION
    } else if m.contains("cannot coerce")
        || m.contains("cannot infer common")
        || m.contains("not supported for")
        || m.contains("type mismatch")
    {
        DATATYPE_MISMATCH
    } else if m.contains("must appear in the group by") || m.contains("while grouping") {
        GROUPING_ERROR
    } else if m.contains("schema") && m.contains("not found") {
        UNDEFINED_OBJECT
    } else if m.contains("sql error") || m.contains("parsererror") {
        SYNTAX_ERROR
    } else {
        // A planning error is a problem with the statement, not the server.
        DATATYPE_MISMATCH
    }
}

fn execution_state(message: &str) -> &'static str {
    use sqlstate::*;
    let m = message.to_ascii_lowercase();
    if m.contains("outside the lake") || m.contains("refusing to read") {
        INSUFFICIENT_PRIVILEGE
    } else if m.contains("divide by zero") || m.contains("division by zero") {
        DIVISION_BY_ZERO
    } else if m.contains("can't cast value") {
        NUMERIC_OUT_OF_RANGE
    } else if m.contains("cast error") || m.contains("cannot cast") || m.contains("invalid") {
        INVALID_TEXT_REPRESENTATION
    } else if m.contains("overflow") {
        NUMERIC_OUT_OF_RANGE
    } else {
        INTERNAL_ERROR
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn state_of(sql: &str) -> &'static str {
        let ctx = SessionContext::new();
        let err = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.unwrap_err(),
            Err(e) => e,
        };
        classify(&err)
    }

    #[tokio::test]
    async fn user_mistakes_get_their_own_codes() {
        assert_eq!(state_of("SELECT * FROM nowhere").await, "42P01");
        assert_eq!(state_of("SELECT nope FROM (SELECT 1 AS a)").await, "42703");
        assert_eq!(state_of("SELEC 1").await, "42601");
        assert_eq!(state_of("SELECT no_such_fn(1)").await, "42883");
        assert_eq!(state_of("SELECT 1 / 0").await, "22012");
        assert_eq!(state_of("SELECT CAST('x' AS INT)").await, "22P02");
    }
}
