//! PostgreSQL's untyped string literals compared with booleans: `indisprimary = 't'`, which
//! psqlODBC's SQLPrimaryKeys and SQLForeignKeys send. PostgreSQL reads a quoted literal as the
//! type of what it is compared with; DataFusion coerces strings to most types but not to
//! boolean, and refuses the comparison.

use arrow::datatypes::DataType;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{Expr, ExprSchemable};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// Turns the string literal of a comparison with a boolean into the boolean it spells.
#[derive(Debug)]
pub struct BooleanLiterals;

impl ExprPlanner for BooleanLiterals {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        use BinaryOperator as Op;
        if !matches!(
            expr.op,
            Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq
        ) {
            return Ok(PlannerResult::Original(expr));
        }
        let is_boolean = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Boolean));
        let RawBinaryExpr { op, left, right } = expr;
        let (left, right) = match (boolean_text(&left), boolean_text(&right)) {
            (Some(value), None) if is_boolean(&right) => (value, right),
            (None, Some(value)) if is_boolean(&left) => (left, value),
            _ => (left, right),
        };
        Ok(PlannerResult::Original(RawBinaryExpr { op, left, right }))
    }
}

/// The boolean a string literal spells as PostgreSQL's boolean input reads it (`t`, `true`,
/// `yes`, `on`, `1`, their prefixes and the false ones), as a literal.
fn boolean_text(expr: &Expr) -> Option<Expr> {
    let Expr::Literal(
        ScalarValue::Utf8(Some(text))
        | ScalarValue::Utf8View(Some(text))
        | ScalarValue::LargeUtf8(Some(text)),
        _,
    ) = expr
    else {
        return None;
    };
    let text = text.trim().to_ascii_lowercase();
    let is_prefix_of = |word: &str| !text.is_empty() && word.starts_with(text.as_str());
    let value = if is_prefix_of("true") || is_prefix_of("yes") || text == "on" || text == "1" {
        true
    } else if is_prefix_of("false") || is_prefix_of("no") || text == "off" || text == "0" {
        false
    } else {
        return None;
    };
    Some(Expr::Literal(ScalarValue::Boolean(Some(value)), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::lit;

    #[test]
    fn postgresql_boolean_spellings_are_read() {
        for (text, value) in [
            ("t", true),
            ("TRUE", true),
            ("yes", true),
            ("on", true),
            ("1", true),
            ("f", false),
            ("fal", false),
            ("n", false),
            ("off", false),
            ("0", false),
        ] {
            assert_eq!(boolean_text(&lit(text)), Some(lit(value)), "{text}");
        }
        assert_eq!(boolean_text(&lit("o")), None, "ambiguous: on or off");
        assert_eq!(boolean_text(&lit("maybe")), None);
        assert_eq!(boolean_text(&lit(1)), None);
    }
}
