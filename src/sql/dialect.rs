//! The SQL Strata reads, parsed into statements DataFusion plans.
//!
//! [`parse`] reads PostgreSQL as the server's clients send it: datafusion-pg-catalog's
//! PostgreSQL compatibility parser (which replaces a few whole client queries DataFusion
//! cannot run and rewrites `= ANY`, `OPERATOR(pg_catalog.~)`, `COLLATE`, `pg_catalog.`
//! function names, `'x'::regclass`, ...), followed by the rules here for what it leaves that
//! real clients send (they call functions the server's `pg_catalog` registers), and
//! [`client_queries`] answers a few more whole client queries by equivalents.
//! [`parse_datafusion`] reads DataFusion's own statements for `strata sql` and the REPL.
//! Both accept Delta's `VERSION AS OF` / `TIMESTAMP AS OF` the same way: with
//! `TimeTravelDialect`, for a statement that fails without it.

use std::ops::ControlFlow;
use std::sync::LazyLock;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CaseWhen, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident,
    ObjectName, OrderByKind, Query, Select, SelectItem, SetExpr, Statement, Subscript, TableFactor,
    Value, ValueWithSpan, VisitMut, VisitorMut, visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::{Dialect, GenericDialect, PostgreSqlDialect, Precedence};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

use super::client_queries;
use super::names::ResultNames;
use super::position::{self, LineColumn};

static COMPATIBILITY: LazyLock<PostgresCompatibilityParser> =
    LazyLock::new(PostgresCompatibilityParser::new);

/// SQL that does not parse: PostgreSQL's `42601 syntax_error`.
#[derive(Debug, thiserror::Error)]
#[error("syntax error: {message}")]
pub struct DialectError {
    pub message: String,
    /// Line and column of the offending token, when known.
    pub position: Option<LineColumn>,
}

impl DialectError {
    /// The SQLSTATE to report.
    pub const SQLSTATE: &'static str = "42601";

    fn new(error: ParserError) -> Self {
        let message = match error {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
            ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
        };
        let position = position::in_message(&message);
        Self { message, position }
    }

    /// The 1-based character offset of the error in `sql` (PostgreSQL's `P` field).
    pub fn offset_in(&self, sql: &str) -> Option<usize> {
        let LineColumn { line, column } = self.position?;
        let start: usize = sql
            .split_inclusive('\n')
            .take(line.checked_sub(1)?)
            .map(|l| l.chars().count())
            .sum();
        Some(start + column)
    }
}

/// Parses `sql` (one or more statements) as PostgreSQL, rewritten so DataFusion can plan
/// what clients send. Statements DataFusion does not plan (SET, SHOW, BEGIN, COPY, ...) are
/// parsed, not interpreted.
pub fn parse(sql: &str) -> Result<Vec<Statement>, DialectError> {
    let named = name_session_values(sql);
    let statements = match COMPATIBILITY.parse(named.as_deref().unwrap_or(sql)) {
        Ok(statements) => statements,
        // Delta's `VERSION AS OF` / `TIMESTAMP AS OF` are not PostgreSQL: only a statement
        // that fails as PostgreSQL is tried with them.
        Err(e) => match Parser::parse_sql(&TimeTravelDialect, sql) {
            Ok(statements) if statements.iter().any(travels) => statements
                .into_iter()
                .map(|s| COMPATIBILITY.rewrite(s))
                .collect(),
            // The compatibility parser drops token positions; the plain parser reports the
            // same error with them.
            _ => match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
                Err(positioned) => return Err(DialectError::new(positioned)),
                Ok(_) => return Err(DialectError::new(e)),
            },
        },
    };
    statements
        .into_iter()
        .map(|statement| match client_queries::replacement(&statement) {
            Some(equivalent) => {
                let mut replaced = COMPATIBILITY.parse(equivalent).map_err(DialectError::new)?;
                Ok(rewrite(replaced.remove(0)))
            }
            None => Ok(rewrite(statement)),
        })
        .collect()
}

/// [`parse`], each statement with the names PostgreSQL gives its result columns. They are
/// read from the SQL as written: the rewrites for DataFusion change expressions (`'\x01'::bytea`
/// becomes a `decode` call), not what PostgreSQL names them.
pub fn parse_named(sql: &str) -> Result<Vec<(Statement, ResultNames)>, DialectError> {
    let statements = parse(sql)?;
    let written = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .or_else(|_| Parser::parse_sql(&TimeTravelDialect, sql))
        .ok()
        .filter(|written| written.len() == statements.len());
    Ok(statements
        .into_iter()
        .enumerate()
        .map(|(i, statement)| {
            let names = ResultNames::of(written.as_ref().map_or(&statement, |w| &w[i]));
            (statement, names)
        })
        .collect())
}

/// Parses `sql` (one or more statements) with DataFusion's parser, as `strata sql` and the
/// REPL read it; a statement reading a table at a version is read as [`parse`] reads it.
pub fn parse_datafusion(sql: &str) -> Result<Vec<DFStatement>, DataFusionError> {
    match DFParser::parse_sql_with_dialect(sql, &GenericDialect {}) {
        Ok(statements) => Ok(statements.into_iter().collect()),
        Err(e) => match DFParser::parse_sql_with_dialect(sql, &TimeTravelDialect) {
            Ok(statements)
                if statements
                    .iter()
                    .any(|s| matches!(s, DFStatement::Statement(s) if travels(s))) =>
            {
                Ok(statements.into_iter().collect())
            }
            _ => Err(e),
        },
    }
}

/// SQL's session value functions, which PostgreSQL names each column after.
const SESSION_VALUES: &[&str] = &["current_user", "session_user", "user", "current_role"];

/// `SELECT current_user, session_user`: the compatibility parser turns both into the same
/// function call, so the columns are named first, as PostgreSQL names them. `None` when
/// the SQL has none of them unnamed (or does not parse: the caller reports that).
fn name_session_values(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !SESSION_VALUES.iter().any(|name| lower.contains(name)) {
        return None;
    }
    struct Name(bool);
    impl VisitorMut for Name {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let SetExpr::Select(select) = query.body.as_mut() else {
                return ControlFlow::Continue(());
            };
            for item in &mut select.projection {
                let SelectItem::UnnamedExpr(Expr::Function(f)) = item else {
                    continue;
                };
                let name = f.name.to_string().to_ascii_lowercase();
                if matches!(f.args, FunctionArguments::None)
                    && SESSION_VALUES.contains(&name.as_str())
                {
                    *item = SelectItem::ExprWithAlias {
                        expr: Expr::Function(f.clone()),
                        alias: Ident::with_quote('"', name),
                    };
                    self.0 = true;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut named = Name(false);
    let _ = statements.visit(&mut named);
    named.0.then(|| {
        statements
            .iter()
            .map(Statement::to_string)
            .collect::<Vec<_>>()
            .join(";\n")
    })
}

/// Whether a statement reads a table at a version.
fn travels(statement: &Statement) -> bool {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Versioned;
    impl Visitor for Versioned {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            match factor {
                TableFactor::Table {
                    version: Some(_), ..
                } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    statement.visit(&mut Versioned).is_break()
}

/// PostgreSQL with Delta's table versions (`FROM t VERSION AS OF 3`).
#[derive(Debug)]
struct TimeTravelDialect;

/// Forwards each method to PostgreSQL's dialect.
macro_rules! postgres {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> $ret {
            PostgreSqlDialect {}.$name($($arg),*)
        })*
    };
}

impl Dialect for TimeTravelDialect {
    fn supports_table_versioning(&self) -> bool {
        true
    }

    postgres! {
        identifier_quote_style(identifier: &str) -> Option<char>;
        is_delimited_identifier_start(ch: char) -> bool;
        is_identifier_start(ch: char) -> bool;
        is_identifier_part(ch: char) -> bool;
        supports_unicode_string_literal() -> bool;
        is_reserved_for_identifier(kw: Keyword) -> bool;
        is_custom_operator_part(ch: char) -> bool;
        get_next_precedence(parser: &Parser) -> Option<Result<u8, ParserError>>;
        supports_filter_during_aggregation() -> bool;
        supports_group_by_expr() -> bool;
        prec_value(prec: Precedence) -> u8;
        allow_extract_custom() -> bool;
        allow_extract_single_quotes() -> bool;
        supports_factorial_operator() -> bool;
        supports_bitwise_shift_operators() -> bool;
        supports_named_fn_args_with_colon_operator() -> bool;
        supports_named_fn_args_with_expr_name() -> bool;
        supports_empty_projections() -> bool;
        supports_nested_comments() -> bool;
        supports_string_escape_constant() -> bool;
        supports_numeric_literal_underscores() -> bool;
        supports_array_typedef_with_brackets() -> bool;
        supports_geometric_types() -> bool;
        supports_notnull_operator() -> bool;
        supports_interval_options() -> bool;
        supports_select_wildcard_with_alias() -> bool;
        supports_comma_separated_trim() -> bool;
    }
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

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        catalog_first_regclass(query);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let rewritten = match expr {
            Expr::Function(f) => generate_subscripts(f)
                .or_else(|| array_of_subquery(f))
                .or_else(|| set_returning(f)),
            Expr::CompoundFieldAccess { root, access_chain } => {
                record_fields(root, access_chain);
                None
            }
            Expr::Subquery(query) => scalar_subquery(query),
            Expr::Cast {
                data_type: DataType::Bytea,
                expr,
                ..
            } => hex_bytea(expr),
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

/// `'pg_class'::regclass` becomes a lookup in the current schema (datafusion-pg-catalog's
/// rewrite: pg_class joined with `(SELECT parse_ident('pg_class'::TEXT) AS parts)` where
/// `n.nspname = current_schema()`); PostgreSQL searches `pg_catalog` first, and pgjdbc's
/// getTables joins table descriptions on `classoid = 'pg_class'::regclass`.
fn catalog_first_regclass(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let looks_up_parts = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .any(|factor| matches!(factor, TableFactor::Derived { subquery, .. } if parses_ident(subquery)));
    let Some(selection) = select.selection.as_mut().filter(|_| looks_up_parts) else {
        return;
    };
    let _ = visit_expressions_mut(selection, |e| {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = e
            && matches!(left.as_ref(), Expr::CompoundIdentifier(parts)
                if parts.last().is_some_and(|p| p.value == "nspname"))
            && matches!(right.as_ref(), Expr::Function(f)
                if f.name.to_string().eq_ignore_ascii_case("current_schema"))
        {
            *e = Expr::InList {
                expr: left.clone(),
                list: vec![
                    Expr::value(Value::SingleQuotedString("pg_catalog".to_string())),
                    *right.clone(),
                ],
                negated: false,
            };
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `(SELECT parse_ident(…) AS parts)`.
fn parses_ident(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    matches!(select.projection.as_slice(), [SelectItem::ExprWithAlias { expr: Expr::Function(f), alias }]
        if alias.value == "parts" && f.name.to_string().eq_ignore_ascii_case("parse_ident"))
}

/// `'\x0102ff'::bytea` is PostgreSQL's hex input for bytes; DataFusion would take the
/// string's own bytes, so it becomes `decode('0102ff', 'hex')`.
fn hex_bytea(expr: &Expr) -> Option<Expr> {
    let Expr::Value(ValueWithSpan {
        value: Value::SingleQuotedString(text) | Value::EscapedStringLiteral(text),
        ..
    }) = expr
    else {
        return None;
    };
    let hex = text.strip_prefix("\\x")?;
    let literal = |s: &str| Expr::value(Value::SingleQuotedString(s.to_string()));
    Some(call("decode", vec![literal(hex), literal("hex")]))
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
    if !f
        .name
        .to_string()
        .eq_ignore_ascii_case("generate_subscripts")
    {
        return None;
    }
    let [array, dimension] = plain_args(f)?[..] else {
        return None;
    };
    let one = Expr::value(Value::Number("1".into(), false));
    let length = call("array_length", vec![array.clone(), dimension.clone()]);
    Some(call(
        "unnest",
        vec![call("generate_series", vec![one, length])],
    ))
}

/// `_pg_expandarray(a)` and `generate_series(a, b)` outside FROM (psqlODBC's
/// SQLForeignKeys numbers key columns with it) return their set of rows as a list here:
/// unnest it, which zips with the other unnests of the projection like PostgreSQL's
/// set-returning functions.
fn set_returning(f: &Function) -> Option<Expr> {
    let name = f.name.0.last()?.as_ident()?.value.to_ascii_lowercase();
    matches!(name.as_str(), "_pg_expandarray" | "generate_series")
        .then(|| call("unnest", vec![Expr::Function(f.clone())]))
}

/// `(expr).field` of a record: DataFusion plans a field of an expression (not of a column
/// name) only as `expr['field']`.
fn record_fields(root: &Expr, access_chain: &mut [AccessExpr]) {
    if matches!(root, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
        return;
    }
    for access in access_chain {
        if let AccessExpr::Dot(Expr::Identifier(field)) = access {
            *access = AccessExpr::Subscript(Subscript::Index {
                index: Expr::value(Value::SingleQuotedString(field.value.clone())),
            });
        }
    }
}

/// DataFusion's LIKE escapes with backslash only: `p ESCAPE 'c'` becomes PostgreSQL's
/// `like_escape(p, 'c')`, which rewrites the pattern to backslash escapes (the pattern may
/// be a bound parameter, so this happens when the query runs).
fn translate_like_escape(pattern: &mut Box<Expr>, escape_char: &mut Option<ValueWithSpan>) {
    let Some(escape) =
        escape_char.take_if(|e| !matches!(&e.value, Value::SingleQuotedString(c) if c == "\\"))
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
    if let Some(mapped) = map_over_unnest(&mut query) {
        return Some(mapped);
    }
    let order_by = query.order_by.take();
    let item = projected(single_select(&mut query)?)?;
    let mut agg = call("array_agg", vec![item.clone()]);
    if let (Expr::Function(agg), Some(order_by)) = (&mut agg, order_by)
        && let FunctionArguments::List(list) = &mut agg.args
        && let OrderByKind::Expressions(exprs) = order_by.kind
    {
        list.clauses.push(FunctionArgumentClause::OrderBy(exprs));
    }
    *item = agg;
    Some(Expr::Subquery(query))
}

/// Aggregates DataFusion knows, which make a scalar subquery return one row already.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "first_value",
    "last_value",
    "json_agg",
];

/// PostgreSQL runs a correlated scalar subquery per row and requires at most one row;
/// DataFusion decorrelates only aggregates. `first_value(e)` of the (single) row is the
/// same value, so a non-aggregate scalar subquery is rewritten around it:
/// - conditions on the outer row alone (which DataFusion cannot decorrelate) move outside:
///   `CASE WHEN <outer condition> THEN (<subquery>) END`;
/// - a projection that also reads the outer row (which DataFusion cannot decorrelate either)
///   is computed outside, each inner column fetched by its own one-column subquery, and a
///   probe keeps PostgreSQL's NULL when no row matches:
///   `CASE WHEN (SELECT first_value(true) …) THEN f(outer, (SELECT first_value(inner) …)) END`.
fn scalar_subquery(query: &Query) -> Option<Expr> {
    let mut query = query.clone();
    if query.limit_clause.is_some() && query.order_by.is_some() {
        return None;
    }
    let select = single_select(&mut query)?;
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.from.is_empty() || select.having.is_some() {
        return None;
    }
    let aggregated = visit_expressions(projected(select)?, |e| match e {
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
    let inner = relation_names(select);
    let mut outer_conditions = Vec::new();
    if let Some(selection) = select.selection.take() {
        let mut parts = Vec::new();
        conjuncts(selection, &mut parts);
        let kept;
        (outer_conditions, kept) = parts.into_iter().partition(|e| reads_only_outer(e, &inner));
        select.selection = and_all(kept);
    }
    // One row now; a `LIMIT 1` would stop DataFusion decorrelating it.
    query.limit_clause = None;
    let item = projected(single_select(&mut query)?)?.clone();
    let one_row = |expr: Expr| {
        let mut q = query.clone();
        *projected(single_select(&mut q).expect("checked above")).expect("checked above") =
            call("first_value", vec![expr]);
        Expr::Subquery(Box::new(q))
    };
    let value = if reads_outer(&item, &inner) {
        let mut computed = item;
        let _ = visit_expressions_mut(&mut computed, |e| {
            if is_inner_column(e, &inner) {
                *e = one_row(e.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        when(one_row(Expr::value(Value::Boolean(true))), computed)
    } else {
        one_row(item)
    };
    Some(match and_all(outer_conditions) {
        Some(condition) => when(condition, value),
        None => value,
    })
}

/// `CASE WHEN condition THEN result END`.
fn when(condition: Expr, result: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen { condition, result }],
        else_result: None,
    }
}

/// `ARRAY(SELECT 'p' || x || 's' FROM unnest(a) x)` (psql's `\d+`, over an outer row's
/// array) maps each element; DataFusion cannot decorrelate an unnest of an outer column, so
/// it becomes `affix_each(a, 'p', 's')`.
fn map_over_unnest(query: &mut Query) -> Option<Expr> {
    if query.order_by.is_some() {
        return None;
    }
    let select = single_select(query)?;
    if select.selection.is_some() || select.from.len() != 1 || !select.from[0].joins.is_empty() {
        return None;
    }
    let (array, alias) = match &select.from[0].relation {
        TableFactor::UNNEST {
            alias: Some(alias),
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } if array_exprs.len() == 1 => (array_exprs[0].clone(), alias.name.value.clone()),
        TableFactor::Table {
            name,
            alias: Some(alias),
            args: Some(args),
            ..
        } if name
            .0
            .last()?
            .as_ident()?
            .value
            .eq_ignore_ascii_case("unnest") =>
        {
            let [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] = &args.args[..] else {
                return None;
            };
            (array.clone(), alias.name.value.clone())
        }
        _ => return None,
    };
    let (prefix, suffix) = affixes(projected(select)?, &alias)?;
    Some(call("affix_each", vec![array, prefix, suffix]))
}

/// `[lit ||] x [|| lit]`: the literals around `x`, '' where absent.
fn affixes(expr: &Expr, element: &str) -> Option<(Expr, Expr)> {
    let empty = || Expr::value(Value::SingleQuotedString(String::new()));
    let is_literal = |e: &Expr| matches!(e, Expr::Value(_));
    match expr {
        Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case(element) => {
            Some((empty(), empty()))
        }
        Expr::Nested(inner) => affixes(inner, element),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => {
            if is_literal(right) {
                let (prefix, suffix) = affixes(left, element)?;
                let suffix = match suffix {
                    Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) if s.is_empty()) => {
                        right.as_ref().clone()
                    }
                    _ => return None,
                };
                Some((prefix, suffix))
            } else if is_literal(left) {
                let (prefix, suffix) = affixes(right, element)?;
                match &prefix {
                    Expr::Value(v) if matches!(&v.value, Value::SingleQuotedString(s) if s.is_empty()) => {
                        Some((left.as_ref().clone(), suffix))
                    }
                    _ => None,
                }
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The names a select's FROM clause gives its relations (aliases, else table names).
fn relation_names(select: &Select) -> Vec<String> {
    let name_of = |factor: &TableFactor| match factor {
        TableFactor::Table { alias: Some(a), .. }
        | TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::UNNEST { alias: Some(a), .. }
        | TableFactor::Function { alias: Some(a), .. } => Some(a.name.value.to_lowercase()),
        TableFactor::Table { name, .. } => Some(name.0.last()?.as_ident()?.value.to_lowercase()),
        _ => None,
    };
    select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(name_of)
        .collect()
}

/// A column of the subquery's own relations (unqualified names resolve there first).
fn is_inner_column(expr: &Expr, inner: &[String]) -> bool {
    match expr {
        Expr::Identifier(_) => true,
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            inner.contains(&parts[parts.len() - 2].value.to_lowercase())
        }
        _ => false,
    }
}

/// Whether `expr` reads a column qualified by a relation outside `inner` (the outer row).
fn reads_outer(expr: &Expr, inner: &[String]) -> bool {
    visit_expressions(expr, |e| match e {
        Expr::CompoundIdentifier(_) if !is_inner_column(e, inner) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// Whether `expr` reads the outer row only: no column of `inner`, and no subquery.
fn reads_only_outer(expr: &Expr, inner: &[String]) -> bool {
    let nested = visit_expressions(expr, |e| match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => ControlFlow::Break(()),
        e if is_inner_column(e, inner) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    nested.is_continue() && reads_outer(expr, inner)
}

fn conjuncts(expr: Expr, into: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(*left, into);
            conjuncts(*right, into);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner, into)
        }
        other => into.push(other),
    }
}

fn and_all(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datafusion_statements_read_versions_as_the_server_does() {
        for sql in [
            "SELECT * FROM gold.t VERSION AS OF 3",
            "SELECT * FROM gold.t TIMESTAMP AS OF '2026-11-21 10:00:00'",
        ] {
            let datafusion = parse_datafusion(sql).unwrap();
            let postgres = parse(sql).unwrap();
            assert_eq!(datafusion[0].to_string(), postgres[0].to_string(), "{sql}");
        }
        let error = parse_datafusion("SELECT 1 FROM t FORM x").unwrap_err();
        assert!(error.to_string().contains("Line: 1"), "{error}");
    }
}
