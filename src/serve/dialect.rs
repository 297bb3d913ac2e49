//! PostgreSQL SQL as clients send it, parsed into statements DataFusion plans.
//!
//! Parsing is datafusion-pg-catalog's PostgreSQL compatibility parser (which replaces a few
//! whole client queries DataFusion cannot run and rewrites `= ANY`, `OPERATOR(pg_catalog.~)`,
//! `COLLATE`, `pg_catalog.` function names, `'x'::regclass`, ...), followed by the rules
//! here for what it leaves that real clients send.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArgumentClause, GroupByExpr, OrderByKind, Query, Select, SelectItem, SetExpr, ValueWithSpan, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, Statement, Value, VisitMut, VisitorMut, visit_expressions,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;

static COMPATIBILITY: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// SQL that does not parse: PostgreSQL's `42601 syntax_error`.
#[derive(Debug, thiserror::Error)]
#[error("syntax error: {message}")]
pub struct DialectError {
    pub message: String,
    /// 1-based line and column of the offending token, when known.
    pub position: Option<(u64, u64)>,
}

impl DialectError {
    /// The SQLSTATE to report.
    pub const SQLSTATE: &'static str = "42601";

    fn new(error: ParserError) -> Self {
        let message = match error {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
            ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
        };
        let position = position_of(&message);
        Self { message, position }
    }

    /// The 1-based character offset of the error in `sql` (PostgreSQL's `P` field).
    pub fn offset_in(&self, sql: &str) -> Option<usize> {
        let (line, column) = self.position?;
        let start: usize = sql
            .split_inclusive('\n')
            .take(usize::try_from(line).ok()?.checked_sub(1)?)
            .map(|l| l.chars().count())
            .sum();
        Some(start + usize::try_from(column).ok()?)
    }
}

/// sqlparser ends its messages with "at Line: L, Column: C".
fn position_of(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.rfind("Line: ")? + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

/// Parses `sql` (one or more statements) as PostgreSQL, rewritten so DataFusion can plan
/// what clients send. Statements DataFusion does not plan (SET, SHOW, BEGIN, COPY, ...) are
/// parsed, not interpreted.
pub fn parse(sql: &str) -> Result<Vec<Statement>, DialectError> {
    let statements = COMPATIBILITY.parse(sql).map_err(|e| {
        // The compatibility parser drops token positions; the plain parser reports the same
        // error with them.
        match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
            Err(positioned) => DialectError::new(positioned),
            Ok(_) => DialectError::new(e),
        }
    })?;
    Ok(statements.into_iter().map(rewrite).collect())
}

/// The SQL text of a statement, as DataFusion's own parser reads it back.
pub fn sql_of(statement: &Statement) -> String {
    statement.to_string()
}

fn rewrite(mut statement: Statement) -> Statement {
    let _ = statement.visit(&mut Rules);
    statement
}

struct Rules;

impl VisitorMut for Rules {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let rewritten = match expr {
            Expr::Function(f) => generate_subscripts(f).or_else(|| array_of_subquery(f)),
            Expr::Subquery(query) => {
                aggregate_scalar_subquery(query);
                None
            }
            Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } => {
                translate_like_escape(pattern, escape_char);
                None
            }
            _ => None,
        };
        if let Some(rewritten) = rewritten {
            *expr = rewritten;
        }
        ControlFlow::Continue(())
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

fn plain_args(f: &Function) -> Option<Vec<&Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// `generate_subscripts(a, d)` (SQLAlchemy's key reflection, next to `unnest(a)`) is the
/// set `1..array_length(a, d)`: unnest that series, which zips with the other unnest.
fn generate_subscripts(f: &Function) -> Option<Expr> {
    if !f.name.to_string().eq_ignore_ascii_case("generate_subscripts") {
        return None;
    }
    let [array, dimension] = plain_args(f)?[..] else {
        return None;
    };
    let one = Expr::value(Value::Number("1".into(), false));
    let length = call("array_length", vec![array.clone(), dimension.clone()]);
    Some(call("unnest", vec![call("generate_series", vec![one, length])]))
}

/// DataFusion's LIKE escapes with backslash only: `p ESCAPE 'c'` becomes PostgreSQL's
/// `like_escape(p, 'c')`, which rewrites the pattern to backslash escapes (the pattern may
/// be a bound parameter, so this happens when the query runs).
fn translate_like_escape(pattern: &mut Box<Expr>, escape_char: &mut Option<ValueWithSpan>) {
    let Some(escape) = escape_char.take_if(|e| !matches!(&e.value, Value::SingleQuotedString(c) if c == "\\"))
    else {
        return;
    };
    let original = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
    **pattern = call("like_escape", vec![original, Expr::Value(escape)]);
}

/// The select of a query that is one plain `SELECT` of one expression.
fn single_select(query: &mut Query) -> Option<&mut Select> {
    match query.body.as_mut() {
        SetExpr::Select(select) if select.projection.len() == 1 && select.distinct.is_none() => {
            Some(select)
        }
        _ => None,
    }
}

fn projected(select: &mut Select) -> Option<&mut Expr> {
    match select.projection.first_mut()? {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// `ARRAY(SELECT e FROM … ORDER BY o)` (psql) is `(SELECT array_agg(e ORDER BY o) FROM …)`.
fn array_of_subquery(f: &Function) -> Option<Expr> {
    if !f.name.to_string().eq_ignore_ascii_case("array") {
        return None;
    }
    let FunctionArguments::Subquery(query) = &f.args else {
        return None;
    };
    let mut query = query.clone();
    let order_by = query.order_by.take();
    let item = projected(single_select(&mut query)?)?;
    let mut agg = call("array_agg", vec![item.clone()]);
    if let (Expr::Function(agg), Some(order_by)) = (&mut agg, order_by)
        && let FunctionArguments::List(list) = &mut agg.args
        && let OrderByKind::Expressions(exprs) = order_by.kind
    {
        list.clauses
            .push(FunctionArgumentClause::OrderBy(exprs));
    }
    *item = agg;
    Some(Expr::Subquery(query))
}

/// Aggregates DataFusion knows, which make a scalar subquery return one row already.
const AGGREGATES: &[&str] = &[
    "count", "sum", "min", "max", "avg", "array_agg", "string_agg", "bool_and", "bool_or",
    "every", "first_value", "last_value", "json_agg",
];

/// PostgreSQL runs a correlated scalar subquery per row and requires at most one row;
/// DataFusion decorrelates only aggregates. `first_value(e)` of the (single) row is the
/// same value, so non-aggregate scalar subqueries are wrapped in it.
fn aggregate_scalar_subquery(query: &mut Query) -> Option<()> {
    if query.limit_clause.is_some() && query.order_by.is_some() {
        return None;
    }
    let select = single_select(query)?;
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.from.is_empty() || select.having.is_some() {
        return None;
    }
    let item = projected(select)?;
    let aggregated = visit_expressions(item, |e| match e {
        Expr::Function(f)
            if AGGREGATES
                .iter()
                .any(|a| f.name.to_string().eq_ignore_ascii_case(a)) =>
        {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    });
    if aggregated.is_break() {
        return None;
    }
    *item = call("first_value", vec![item.clone()]);
    // One row now; a `LIMIT 1` would stop DataFusion decorrelating it.
    query.limit_clause = None;
    Some(())
}
