//! Dialect extensions applied to parsed statements before planning, by the server, `strata
//! sql` and the REPL alike.

use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, TableFactor, Value, VisitMut, VisitorMut,
};

use super::timetravel::{self, Pins, TimeTravelError};
use crate::lake::Lake;

/// Every rewrite a parsed statement gets before it is planned: named table-function
/// arguments, then time travel (explicit versions, or the `pins` of `strata.as_of_run`)
/// with unqualified names in `default_schema`.
pub async fn before_planning(
    ctx: &SessionContext,
    lake: &Lake,
    statement: &mut Statement,
    default_schema: &str,
    pins: Option<&Pins>,
) -> Result<(), TimeTravelError> {
    named_args(statement);
    timetravel::rewrite(ctx, lake, statement, default_schema, pins).await
}

/// DataFusion passes table-function arguments by position only, dropping the names of
/// `name => value` arguments; carry each as the string `'name=value'` instead, which the
/// raw-read functions parse.
pub fn named_args(statement: &mut Statement) {
    struct Rewrite;
    impl VisitorMut for Rewrite {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            let args = match factor {
                TableFactor::Table {
                    args: Some(call), ..
                } => &mut call.args,
                TableFactor::Function { args, .. } => args,
                _ => return ControlFlow::Continue(()),
            };
            for arg in args.iter_mut() {
                if let FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(value),
                    ..
                } = arg
                {
                    let text = match value {
                        Expr::Value(v) => match &v.value {
                            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                                s.clone()
                            }
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    };
                    let joined = Value::SingleQuotedString(format!("{}={text}", name.value));
                    *arg = FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::value(joined)));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Rewrite);
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
}
