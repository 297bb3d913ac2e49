//! The names PostgreSQL gives result columns a query does not alias: `count`, `sum`,
//! `?column?` for `1 + 1`, a cast named by its type (`int4`, `text`), a column by its
//! name, `case` — where DataFusion would say `count(*)` or `Int64(1) + Int64(1)`. Dashboards
//! and notebooks show these names to people, so the server, the REPL and `strata sql` name
//! columns as PostgreSQL 15 does (its `FigureColname`, which reads the statement as
//! written). Aliases keep what DataFusion gives them.
//!
//! The names apply to the output only, never to the plan: PostgreSQL lets two columns share
//! a name (`SELECT count(*), count(x)`), which a DataFusion projection refuses.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, ArrayElemTypeDef, DataType, ExactNumberInfo, Expr, Ident, ObjectName, Query,
    Select, SelectItem, SetExpr, Statement, TimezoneInfo, TrimWhereField, VisitMut, VisitorMut,
};
use futures::StreamExt;

/// PostgreSQL's name for a column it cannot name otherwise.
const UNNAMED: &str = "?column?";

/// The result column names of one statement, by position in its select list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultNames(Vec<Item>);

/// One item of a select list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// An unaliased expression, named as PostgreSQL names it.
    Named(String),
    /// Named by an alias: DataFusion's name stands.
    Aliased,
    /// `*` or `t.*`: as many columns as it expands to, each named by its column.
    Wildcard,
}

impl ResultNames {
    /// The names of a query's columns, also of the query of a `COPY (…) TO` or a `DECLARE …
    /// CURSOR FOR`; nothing for any other statement.
    pub fn of(statement: &Statement) -> Self {
        let query = match statement {
            Statement::Query(query) => Some(query.as_ref()),
            Statement::Copy {
                source: datafusion::sql::sqlparser::ast::CopySource::Query(query),
                ..
            } => Some(query.as_ref()),
            Statement::Declare { stmts } => stmts.first().and_then(|d| d.for_query.as_deref()),
            _ => None,
        };
        query.map(of_query).unwrap_or_default()
    }

    /// `schema` with PostgreSQL's names; unchanged when the select list does not line up
    /// with it (as when a function expands into several columns).
    pub fn rename(&self, schema: &SchemaRef) -> SchemaRef {
        let fields = schema.fields();
        let Some(names) = self.aligned(fields.len()) else {
            return Arc::clone(schema);
        };
        if names
            .iter()
            .zip(fields.iter())
            .all(|(name, field)| name.is_none_or(|n| n == field.name()))
        {
            return Arc::clone(schema);
        }
        let renamed = fields
            .iter()
            .zip(names)
            .map(|(field, name)| match name {
                Some(name) => Arc::new(field.as_ref().clone().with_name(name)),
                None => Arc::clone(field),
            })
            .collect::<Vec<_>>();
        Arc::new(Schema::new_with_metadata(
            renamed,
            schema.metadata().clone(),
        ))
    }

    /// A result stream whose schema and batches carry PostgreSQL's names.
    pub fn stream(&self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let original = stream.schema();
        let schema = self.rename(&original);
        if Arc::ptr_eq(&schema, &original) {
            return stream;
        }
        let batch_schema = Arc::clone(&schema);
        let renamed = stream.map(move |batch| {
            let batch = batch?;
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            RecordBatch::try_new_with_options(
                Arc::clone(&batch_schema),
                batch.columns().to_vec(),
                &options,
            )
            .map_err(DataFusionError::from)
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, renamed))
    }

    /// The name of each of `columns` output columns (`None`: keep DataFusion's). Columns
    /// between two wildcards cannot be placed and keep theirs.
    fn aligned(&self, columns: usize) -> Option<Vec<Option<&str>>> {
        let items = &self.0;
        fn name(item: &Item) -> Option<&str> {
            match item {
                Item::Named(name) => Some(name),
                Item::Aliased | Item::Wildcard => None,
            }
        }
        let first = items.iter().position(|i| *i == Item::Wildcard);
        let last = items.iter().rposition(|i| *i == Item::Wildcard);
        let (Some(first), Some(last)) = (first, last) else {
            return (items.len() == columns).then(|| items.iter().map(name).collect());
        };
        let tail = items.len() - last - 1;
        if first + tail > columns {
            return None;
        }
        let mut names = vec![None; columns];
        for (i, item) in items[..first].iter().enumerate() {
            names[i] = name(item);
        }
        for (i, item) in items[last + 1..].iter().enumerate() {
            names[columns - tail + i] = name(item);
        }
        Some(names)
    }
}

/// Aliases the unaliased columns of every query nested in `statement` (CTEs, derived
/// tables, subqueries) with PostgreSQL's names, so `WITH t AS (SELECT count(*) FROM x)
/// SELECT * FROM t` yields `count`, and an outer query may refer to that name, as in
/// PostgreSQL. The statement's own select list is left to [`ResultNames`]. A select list
/// with a wildcard, or whose names repeat, keeps DataFusion's names where they would clash:
/// a DataFusion projection refuses two columns of one name.
pub fn name_nested_columns(statement: &mut Statement) {
    struct Nested {
        depth: usize,
    }
    impl VisitorMut for Nested {
        type Break = ();
        fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            if self.depth > 1 {
                alias_unaliased(&mut select.projection);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Nested { depth: 0 });
}

/// Gives each unaliased expression of `projection` its PostgreSQL name as an alias, where
/// that name is unique in the list (plain columns already have theirs).
fn alias_unaliased(projection: &mut [SelectItem]) {
    let mut names = Vec::with_capacity(projection.len());
    for item in projection.iter() {
        names.push(match item {
            SelectItem::UnnamedExpr(expr) => column_name(expr),
            SelectItem::ExprWithAlias { alias, .. } => identifier(alias),
            SelectItem::ExprWithAliases { .. }
            | SelectItem::Wildcard(_)
            | SelectItem::QualifiedWildcard(..) => return,
        });
    }
    for (item, name) in projection.iter_mut().zip(&names) {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        let plain_column = matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        if plain_column || names.iter().filter(|n| *n == name).count() > 1 {
            continue;
        }
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::with_quote('"', name.as_str()),
        };
    }
}

/// A set operation takes the names of its first query; `VALUES` is `column1, column2, …`
/// in both PostgreSQL and DataFusion.
fn of_query(query: &Query) -> ResultNames {
    let mut body = query.body.as_ref();
    loop {
        body = match body {
            SetExpr::Select(select) => {
                return ResultNames(select.projection.iter().map(item).collect());
            }
            SetExpr::Query(query) => query.body.as_ref(),
            SetExpr::SetOperation { left, .. } => left.as_ref(),
            _ => return ResultNames::default(),
        };
    }
}

fn item(item: &SelectItem) -> Item {
    match item {
        SelectItem::UnnamedExpr(expr) => Item::Named(column_name(expr)),
        SelectItem::ExprWithAlias { .. } | SelectItem::ExprWithAliases { .. } => Item::Aliased,
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => Item::Wildcard,
    }
}

/// PostgreSQL's name for an unaliased expression.
fn column_name(expr: &Expr) -> String {
    figure(expr).map_or_else(|| UNNAMED.to_string(), |(name, _)| name)
}

/// How sure a name is, as in PostgreSQL: a type or `case` gives way to a column or
/// function name found deeper (`x::int` is `x`, `1::int` is `int4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Weak,
    Strong,
}

fn strong(name: impl Into<String>) -> Option<(String, Strength)> {
    Some((name.into(), Strength::Strong))
}

fn weak(name: impl Into<String>) -> Option<(String, Strength)> {
    Some((name.into(), Strength::Weak))
}

/// PostgreSQL's `FigureColnameInternal` over sqlparser's expressions.
fn figure(expr: &Expr) -> Option<(String, Strength)> {
    match expr {
        Expr::Identifier(ident) => strong(identifier(ident)),
        Expr::CompoundIdentifier(idents) => idents.last().and_then(|i| strong(identifier(i))),
        // `(rec).field`, `arr[1]`: the last field named, else the expression indexed.
        Expr::CompoundFieldAccess { root, access_chain } => access_chain
            .iter()
            .rev()
            .find_map(|access| match access {
                AccessExpr::Dot(Expr::Identifier(field)) => Some(identifier(field)),
                _ => None,
            })
            .map_or_else(|| figure(root), strong),
        Expr::Function(function) => last_name(&function.name).and_then(strong),
        Expr::Cast {
            expr, data_type, ..
        } => match figure(expr) {
            Some(found @ (_, Strength::Strong)) => Some(found),
            _ => weak(type_name(data_type)),
        },
        // `DATE '…'`: PostgreSQL reads a typed literal as a cast of a string.
        Expr::TypedString(typed) => weak(type_name(&typed.data_type)),
        Expr::Interval(_) => weak("interval"),
        Expr::Case { else_result, .. } => match else_result.as_deref().and_then(figure) {
            Some(found @ (_, Strength::Strong)) => Some(found),
            _ => weak("case"),
        },
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure(inner),
        Expr::Exists { negated: false, .. } => strong("exists"),
        // A scalar subquery is named by its one column.
        Expr::Subquery(query) => match of_query(query).0.first() {
            Some(Item::Named(name)) => strong(name.clone()),
            Some(Item::Aliased) => subquery_alias(query).and_then(strong),
            _ => None,
        },
        Expr::Array(_) => strong("array"),
        Expr::Tuple(_) => strong("row"),
        // SQL's special forms are functions in PostgreSQL's grammar.
        Expr::Extract { .. } => strong("extract"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::Position { .. } => strong("position"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Overlay { .. } => strong("overlay"),
        Expr::AtTimeZone { .. } => strong("timezone"),
        Expr::Trim { trim_where, .. } => strong(match trim_where {
            Some(TrimWhereField::Leading) => "ltrim",
            Some(TrimWhereField::Trailing) => "rtrim",
            Some(TrimWhereField::Both) | None => "btrim",
        }),
        // Operators, comparisons, IS NULL, IN, LIKE, literals, parameters: unnamed.
        _ => None,
    }
}

/// The alias of a scalar subquery's one column.
fn subquery_alias(query: &Query) -> Option<String> {
    let mut body = query.body.as_ref();
    loop {
        body = match body {
            SetExpr::Select(select) => {
                return match select.projection.first()? {
                    SelectItem::ExprWithAlias { alias, .. } => Some(identifier(alias)),
                    _ => None,
                };
            }
            SetExpr::Query(query) => query.body.as_ref(),
            SetExpr::SetOperation { left, .. } => left.as_ref(),
            _ => return None,
        };
    }
}

/// An identifier as PostgreSQL folds it: unquoted ones to lower case.
fn identifier(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    }
}

fn last_name(name: &ObjectName) -> Option<String> {
    name.0.last()?.as_ident().map(identifier)
}

/// The name PostgreSQL's grammar gives a type (`integer` is `int4`, `character varying`
/// is `varchar`); an array is named by its element type.
fn type_name(data_type: &DataType) -> String {
    use DataType as T;
    let with_zone = |tz: &TimezoneInfo| matches!(tz, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz);
    let name = match data_type {
        T::SmallInt(_) | T::Int2(_) => "int2",
        T::Int(_) | T::Integer(_) | T::Int4(_) => "int4",
        T::BigInt(_) | T::Int8(_) => "int8",
        T::Real | T::Float4 => "float4",
        T::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => "float4",
        T::Float(_) | T::Float8 | T::Float64 | T::Double(_) | T::DoublePrecision => "float8",
        T::Numeric(_) | T::Decimal(_) | T::Dec(_) => "numeric",
        T::Bool | T::Boolean => "bool",
        T::Char(_) | T::Character(_) => "bpchar",
        T::Varchar(_) | T::CharacterVarying(_) | T::CharVarying(_) => "varchar",
        T::Text | T::String(_) => "text",
        T::Bytea => "bytea",
        T::Date => "date",
        T::Time(_, tz) if with_zone(tz) => "timetz",
        T::Time(..) => "time",
        T::Timestamp(_, tz) if with_zone(tz) => "timestamptz",
        T::Timestamp(..) => "timestamp",
        T::Interval { .. } => "interval",
        T::JSON => "json",
        T::JSONB => "jsonb",
        T::Uuid => "uuid",
        T::Regclass => "regclass",
        T::Bit(_) => "bit",
        T::BitVarying(_) | T::VarBit(_) => "varbit",
        T::Array(
            ArrayElemTypeDef::SquareBracket(element, _)
            | ArrayElemTypeDef::AngleBracket(element)
            | ArrayElemTypeDef::Parenthesis(element),
        ) => return type_name(element),
        T::Custom(name, _) => return last_name(name).unwrap_or_else(|| name.to_string()),
        // Other dialects' types: their SQL spelling, without modifiers.
        other => {
            let text = other.to_string().to_ascii_lowercase();
            return text.split('(').next().unwrap_or(&text).trim().to_string();
        }
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn names(sql: &str) -> Vec<String> {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        ResultNames::of(&statement)
            .0
            .into_iter()
            .map(|item| match item {
                Item::Named(name) => name,
                Item::Aliased => "<alias>".to_string(),
                Item::Wildcard => "<*>".to_string(),
            })
            .collect()
    }

    #[test]
    fn unaliased_columns_are_named_as_postgresql_names_them() {
        assert_eq!(
            names(
                "SELECT count(*), 1 + 1, sum(o.amount), amount, o.status, x::int, 1::int, \
                 1::int::text, CAST(y AS varchar(3)), 'a'::character varying, \
                 case when a then 1 end, case when a then 1 else b end, true, null, \
                 date '2020-01-01', interval '1 day', (select max(z) from t), \
                 exists (select 1), coalesce(a, b), trim(s), \"Mixed\", Upper(s), \
                 pg_catalog.now(), extract(year from d), -a, a is null, arr[1], 1 AS one, *"
            ),
            [
                "count", "?column?", "sum", "amount", "status", "x", "int4", "text", "y",
                "varchar", "case", "b", "?column?", "?column?", "date", "interval", "max",
                "exists", "coalesce", "btrim", "Mixed", "upper", "now", "extract", "?column?",
                "?column?", "arr", "<alias>", "<*>",
            ]
        );
    }

    #[test]
    fn set_operations_copy_and_cursors_take_their_query_names() {
        assert_eq!(
            names("SELECT 1 + 1 UNION SELECT count(*) FROM t"),
            ["?column?"]
        );
        assert_eq!(names("COPY (SELECT sum(a) FROM t) TO STDOUT"), ["sum"]);
        assert_eq!(names("DECLARE c CURSOR FOR SELECT a::text FROM t"), ["a"]);
        assert!(names("SET x = 1").is_empty());
    }

    #[test]
    fn nested_queries_name_their_columns_as_postgresql() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "WITH t AS (SELECT count(*), sum(a) AS s, b FROM x) \
             SELECT count(*), 1 + 1 FROM (SELECT 1 + 1, upper(c), \"Mixed\"(d) FROM y) d, \
             (SELECT count(*), count(e) FROM z) u, (SELECT *, lower(f) FROM w) v",
        )
        .unwrap()
        .remove(0);
        name_nested_columns(&mut statement);
        assert_eq!(
            statement.to_string(),
            "WITH t AS (SELECT count(*) AS \"count\", sum(a) AS s, b FROM x) \
             SELECT count(*), 1 + 1 FROM (SELECT 1 + 1 AS \"?column?\", upper(c) AS \"upper\", \
             \"Mixed\"(d) AS \"Mixed\" FROM y) d, \
             (SELECT count(*), count(e) FROM z) u, (SELECT *, lower(f) FROM w) v"
        );
    }

    #[test]
    fn names_line_up_around_wildcards() {
        let names = ResultNames(vec![
            Item::Named("count".into()),
            Item::Wildcard,
            Item::Aliased,
            Item::Named("sum".into()),
        ]);
        assert_eq!(
            names.aligned(5).unwrap(),
            [Some("count"), None, None, None, Some("sum")]
        );
        assert_eq!(names.aligned(2), None);
        assert_eq!(
            ResultNames(vec![Item::Named("a".into())]).aligned(2),
            None,
            "a select list that does not match the columns renames nothing"
        );
    }
}
