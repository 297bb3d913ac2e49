//! Dialect extensions applied to parsed statements before planning, by the server, `strata
//! sql` and the REPL alike.

use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::timetravel::{self, Pins, TimeTravelError};
use crate::lake::Lake;

/// Every rewrite a parsed statement gets before it is planned: named table-function
/// arguments, unqualified names qualified by the search path, then time travel (explicit
/// versions, or the `pins` of `strata.as_of_run`) with unqualified names in `default_schema`.
pub async fn before_planning(
    ctx: &SessionContext,
    lake: &Lake,
    statement: &mut Statement,
    default_schema: &str,
    pins: Option<&Pins>,
) -> Result<(), TimeTravelError> {
    named_args(statement);
    super::search_path::qualify(ctx, statement, default_schema);
    timetravel::rewrite(ctx, lake, statement, default_schema, pins).await
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
            let (function, args) = match factor {
                TableFactor::Table {
                    name,
                    args: Some(call),
                    ..
                } => (name.to_string(), &mut call.args),
                TableFactor::Function { name, args, .. } => (name.to_string(), args),
                _ => return ControlFlow::Continue(()),
            };
            let raw_read = function.to_ascii_lowercase().starts_with("read_");
            for arg in args.iter_mut() {
                let named = match arg {
                    FunctionArg::Named {
                        name,
                        arg: FunctionArgExpr::Expr(value),
                        ..
                    } => Some((name.value.clone(), value.clone())),
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp {
                        left,
                        op: BinaryOperator::Eq,
                        right,
                    })) if raw_read => match left.as_ref() {
                        Expr::Identifier(name) => Some((name.value.clone(), (**right).clone())),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some((name, value)) = named {
                    let text = match &value {
                        Expr::Value(v) => match &v.value {
                            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                                s.clone()
                            }
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    };
                    let joined = Value::SingleQuotedString(format!("{name}={text}"));
                    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(joined)));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Rewrite);
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
}
