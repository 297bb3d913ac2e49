//! Integer literals typed as PostgreSQL types them: `1` is an `integer` (int4) when it fits,
//! where DataFusion makes every integer literal a bigint. Clients see the difference in the
//! result's column types (`SELECT 1`, `1 + 1`, `CASE … THEN 1 ELSE 0 END` are int4 in
//! PostgreSQL), so literals, and arithmetic of literals alone, that decide a result column's
//! type are planned as int4, and so are the same expressions repeated in `GROUP BY` and
//! `ORDER BY` (which must match the select list's). Literals anywhere else keep DataFusion's
//! type: function arguments (Strata's JSON functions take bigint paths), comparisons,
//! positions (`GROUP BY 1`), `LIMIT`.
//! Arithmetic with a column keeps DataFusion's types: `int4_column + 1` is a bigint (int4 in
//! PostgreSQL), as DataFusion's int4 arithmetic wraps around where PostgreSQL fails.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, OrderBy, OrderByKind, Query, Select, SelectItem, SetExpr, Statement,
    UnaryOperator, Value, VisitMut, VisitorMut,
};

/// Types the integer literals of `statement`'s select lists and `VALUES` rows as int4 where
/// they decide a result column's type and fit (not in set operations).
pub fn int4_literals(statement: &mut Statement) {
    struct Literals;
    impl VisitorMut for Literals {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            match query.body.as_mut() {
                SetExpr::Select(select) => select_literals(select),
                SetExpr::Values(values) => values
                    .rows
                    .iter_mut()
                    .flat_map(|row| row.content.iter_mut())
                    .for_each(result_literals),
                // A set operation's column type is its branches' common type: an int4
                // literal beside a bigint is a bigint there, which DataFusion does not do.
                _ => return ControlFlow::Continue(()),
            }
            if let Some(OrderBy {
                kind: OrderByKind::Expressions(exprs),
                ..
            }) = &mut query.order_by
            {
                exprs
                    .iter_mut()
                    .for_each(|e| repeated_literals(&mut e.expr));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Literals);
}

/// The select list's literals, and the same expressions repeated in `GROUP BY`.
fn select_literals(select: &mut Select) {
    for item in &mut select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                result_literals(expr);
            }
            _ => {}
        }
    }
    if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
        exprs.iter_mut().for_each(repeated_literals);
    }
}

/// [`result_literals`] of a `GROUP BY` or `ORDER BY` expression, so it still matches the
/// select list's; a bare number there is a position and stays one.
fn repeated_literals(expr: &mut Expr) {
    if !matches!(expr, Expr::Value(_)) {
        result_literals(expr);
    }
}

/// Rewrites the literals of `expr` whose type becomes the type of `expr`: the expression
/// itself when it is integer arithmetic of literals, a CASE's results, the arguments of the
/// functions whose result type is their arguments' common type, array elements.
fn result_literals(expr: &mut Expr) {
    if int4_arithmetic(expr) {
        // Computed as DataFusion does (bigint), then cast, so a result beyond int4 fails as
        // in PostgreSQL: DataFusion's int4 arithmetic would wrap around silently.
        *expr = Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(expr.clone()),
            data_type: DataType::Int4(None),
            array: false,
            format: None,
        };
        return;
    }
    match expr {
        Expr::Case {
            conditions,
            else_result,
            ..
        } => {
            for when in conditions {
                result_literals(&mut when.result);
            }
            if let Some(otherwise) = else_result {
                result_literals(otherwise);
            }
        }
        Expr::Function(function) if common_type_function(&function.name.to_string()) => {
            if let FunctionArguments::List(list) = &mut function.args {
                for arg in &mut list.args {
                    if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                        result_literals(e);
                    }
                }
            }
        }
        Expr::Nested(inner) => result_literals(inner),
        Expr::Array(array) => array.elem.iter_mut().for_each(result_literals),
        _ => {}
    }
}

/// Whether `expr` is an int4 in PostgreSQL made of integer literals alone: a literal that
/// fits, or arithmetic of such (`1`, `-1`, `(2 * 3) - 1`).
fn int4_arithmetic(expr: &Expr) -> bool {
    match expr {
        Expr::Value(value) => {
            matches!(&value.value, Value::Number(digits, false) if digits.parse::<i32>().is_ok())
        }
        Expr::Nested(inner)
        | Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr: inner,
        } => int4_arithmetic(inner),
        Expr::BinaryOp { left, op, right } => {
            arithmetic(op) && int4_arithmetic(left) && int4_arithmetic(right)
        }
        _ => false,
    }
}

fn arithmetic(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Plus
            | BinaryOperator::Minus
            | BinaryOperator::Multiply
            | BinaryOperator::Divide
            | BinaryOperator::Modulo
    )
}

/// Functions whose result has their arguments' common type.
fn common_type_function(name: &str) -> bool {
    ["coalesce", "greatest", "least", "nullif"]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        int4_literals(&mut statement);
        statement.to_string()
    }

    #[test]
    fn literals_that_type_a_result_column_are_int4() {
        assert_eq!(
            rewritten("SELECT 1, 1 + 1 AS two, -(2), 3000000000, 1.5, ARRAY[1], coalesce(a, 0)"),
            "SELECT CAST(1 AS INT4), CAST(1 + 1 AS INT4) AS two, \
             CAST(-(2) AS INT4), 3000000000, 1.5, ARRAY[CAST(1 AS INT4)], \
             coalesce(a, CAST(0 AS INT4))"
        );
        assert_eq!(
            rewritten("SELECT CASE WHEN a = 1 THEN 1 ELSE 0 END FROM t"),
            "SELECT CASE WHEN a = 1 THEN CAST(1 AS INT4) ELSE CAST(0 AS INT4) END FROM t"
        );
        assert_eq!(
            rewritten("VALUES (1, 'a')"),
            "VALUES (CAST(1 AS INT4), 'a')"
        );
        assert_eq!(
            rewritten("SELECT * FROM (SELECT 1) s WHERE 1 IN (SELECT 2)"),
            "SELECT * FROM (SELECT CAST(1 AS INT4)) s WHERE 1 IN (SELECT CAST(2 AS INT4))"
        );
    }

    #[test]
    fn other_literals_keep_their_type() {
        for sql in [
            "SELECT j -> 0, round(a, 1), sum(1) FROM t WHERE a = 1 GROUP BY 1 ORDER BY 2 LIMIT 1",
            "SELECT 1 UNION ALL SELECT count(*) FROM t",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
        assert_eq!(
            rewritten("SELECT 2 % 2, a + 1 FROM t GROUP BY 2 % 2, a + 1 ORDER BY 2 % 2"),
            "SELECT CAST(2 % 2 AS INT4), a + 1 FROM t GROUP BY CAST(2 % 2 AS INT4), a + 1 \
             ORDER BY CAST(2 % 2 AS INT4)"
        );
    }
}
