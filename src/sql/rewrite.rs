//! Dialect extensions applied to parsed statements before planning, by the server, `strata
//! sql` and the REPL alike.

use std::borrow::Cow;
use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, Spanned, TableFactor, Value, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Location, Span};

use super::search_path::SearchPath;
use super::timetravel::{self, Pins, TimeTravelError};
use crate::lake::Lake;

/// Every rewrite a parsed statement gets before it is planned: named table-function
/// arguments, PostgreSQL's names for the columns of nested queries (before anything else
/// changes their expressions), int4 integer literals, unqualified names qualified by the
/// search `path`, then time travel (explicit versions, or the `pins` of `strata.as_of_run`)
/// with names left unqualified in the path's first schema.
pub async fn before_planning(
    ctx: &SessionContext,
    lake: &Lake,
    statement: &mut Statement,
    path: &SearchPath,
    pins: Option<&Pins>,
) -> Result<(), TimeTravelError> {
    named_args(statement);
    super::names::name_nested_columns(statement);
    super::int_literals::int4_literals(statement);
    super::search_path::qualify(ctx, statement, path);
    timetravel::rewrite(ctx, lake, statement, path.first(), pins).await
}

/// DataFusion passes table-function arguments by position only, dropping the names of
/// `name => value` arguments; carry each as the string `'name=value'` instead, which the
/// raw-read functions parse. DuckDB's spelling for the raw reads, `name = value`
/// (`read_csv('x.csv', header = true, delim = '|')`), is taken the same way.
pub fn named_args(statement: &mut Statement) {
    struct Rewrite;
    impl VisitorMut for Rewrite {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let Some((function, args)) = function_args(factor) else {
                return ControlFlow::Continue(());
            };
            for arg in args.iter_mut() {
                if let Some(joined) = joined_arg(&function, arg) {
                    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(
                        Value::SingleQuotedString(joined),
                    )));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Rewrite);
}

/// [`named_args`] on SQL text, changing only the arguments it rewrites, so the text keeps
/// its lines (a model's compiled SQL, whose errors point at its lines). Text that does not
/// parse is returned as it is, for the planner to report.
pub fn named_args_in_text(sql: &str) -> Cow<'_, str> {
    struct Find(Vec<(Span, String)>);
    impl VisitorMut for Find {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let Some((function, args)) = function_args(factor) {
                for arg in args.iter() {
                    if let Some(joined) = joined_arg(&function, arg) {
                        self.0.push((arg.span(), joined));
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    // Cheap test first: most models call no table function with named arguments.
    if !sql.contains('=') {
        return Cow::Borrowed(sql);
    }
    // DataFusion's own dialect, as models are planned with it.
    let Ok(mut statements) = Parser::parse_sql(&GenericDialect {}, sql) else {
        return Cow::Borrowed(sql);
    };
    let mut found = Find(Vec::new());
    for statement in &mut statements {
        let _ = statement.visit(&mut found);
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (span, joined) in found.0 {
        match (offset(sql, span.start), offset(sql, span.end)) {
            (Some(start), Some(end)) if start < end => {
                edits.push((start, end, Value::SingleQuotedString(joined).to_string()));
            }
            _ => return Cow::Borrowed(sql),
        }
    }
    if edits.is_empty() {
        return Cow::Borrowed(sql);
    }
    edits.sort_by_key(|(start, _, _)| *start);
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (start, end, text) in edits {
        out.push_str(&sql[copied..start]);
        out.push_str(&text);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Cow::Owned(out)
}

/// The function a table factor calls, and its arguments.
fn function_args(factor: &mut TableFactor) -> Option<(String, &mut Vec<FunctionArg>)> {
    match factor {
        TableFactor::Table {
            name,
            args: Some(call),
            ..
        } => Some((name.to_string(), &mut call.args)),
        TableFactor::Function { name, args, .. } => Some((name.to_string(), args)),
        _ => None,
    }
}

/// `'name=value'` for a named argument of a table function (`name => value`, or
/// `name = value` for the raw reads).
fn joined_arg(function: &str, arg: &FunctionArg) -> Option<String> {
    let raw_read = function.to_ascii_lowercase().starts_with("read_");
    let (name, value) = match arg {
        FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(value),
            ..
        } => (name.value.clone(), value),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        })) if raw_read => match left.as_ref() {
            Expr::Identifier(name) => (name.value.clone(), right.as_ref()),
            _ => return None,
        },
        _ => return None,
    };
    let text = match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        other => other.to_string(),
    };
    Some(format!("{name}={text}"))
}

/// The byte offset of a 1-based line and character column in `sql`.
fn offset(sql: &str, at: Location) -> Option<usize> {
    let line = sql
        .split_inclusive('\n')
        .nth((at.line as usize).checked_sub(1)?)?;
    let line_start = line.as_ptr() as usize - sql.as_ptr() as usize;
    let column = (at.column as usize).checked_sub(1)?;
    let within = match line.char_indices().nth(column) {
        Some((i, _)) => i,
        None if column == line.chars().count() => line.len(),
        None => return None,
    };
    Some(line_start + within)
}

/// A relation written as a table-function call (`read_csv('…', header = true)`) in the form
/// the raw-read functions take when planned directly, as models are; `None` when `text` is
/// not one relation.
pub fn relation_call(text: &str) -> Option<String> {
    let sql = format!("SELECT * FROM {text}");
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?;
    let [statement] = statements.as_mut_slice() else {
        return None;
    };
    named_args(statement);
    statement
        .to_string()
        .strip_prefix("SELECT * FROM ")
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    #[test]
    fn named_table_function_arguments_become_strings() {
        let mut stmts = Parser::parse_sql(
            &GenericDialect {},
            "SELECT * FROM read_xml('a.xml', row_tag => 'shipment', sep => '.')",
        )
        .unwrap();
        super::named_args(&mut stmts[0]);
        assert_eq!(
            stmts[0].to_string(),
            "SELECT * FROM read_xml('a.xml', 'row_tag=shipment', 'sep=.')"
        );
    }

    #[test]
    fn duckdb_style_arguments_of_raw_reads_become_strings() {
        assert_eq!(
            super::relation_call(
                "read_csv('raw/orders.csv', header = true, delim = '|', auto_detect = true)"
            )
            .as_deref(),
            Some("read_csv('raw/orders.csv', 'header=true', 'delim=|', 'auto_detect=true')")
        );
        assert_eq!(
            super::relation_call("read_json_auto('x/*.json')").as_deref(),
            Some("read_json_auto('x/*.json')")
        );
        assert_eq!(super::relation_call("a; b"), None);
    }

    #[test]
    fn named_arguments_in_text_keep_the_rest_as_written() {
        let sql = "select id,\n  name -- the name\nfrom read_csv('raw/é.csv', header = true,\n    delim = '|')\nwhere id = 1";
        assert_eq!(
            super::named_args_in_text(sql),
            "select id,\n  name -- the name\nfrom read_csv('raw/é.csv', 'header=true',\n    'delim=|')\nwhere id = 1"
        );
        assert_eq!(
            super::named_args_in_text("select * from f(x => 1)"),
            "select * from f('x=1')"
        );
        // Untouched: no named arguments, or text that does not parse.
        let plain = "select a = b from t";
        assert!(matches!(
            super::named_args_in_text(plain),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(super::named_args_in_text("select = ("), "select = (");
    }
}
