//! The SQL types of PostgreSQL's catalog that client queries cast to: the oid aliases
//! (`regclass`, `oid`, ...) and `pg_catalog.`-qualified builtins, as datafusion-pg-catalog
//! plans them, and `name`, the type of identifiers (psqlODBC's SQLForeignKeys selects
//! `'strata'::name`), which is text here as every identifier in this catalog is. And
//! `varchar`: one string type in Arrow, but clients are told `varchar` (oid 1043) where a
//! query casts to it, as PostgreSQL tells them; likewise `oid[]`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::{ArrayElemTypeDef, DataType as SqlType};
use datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;

use crate::session::PG_TYPE_KEY;

#[derive(Debug)]
pub struct CatalogTypes;

impl TypePlanner for CatalogTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> Result<Option<FieldRef>> {
        if let Some(field) = PgOidTypePlanner.plan_type_field(sql_type)? {
            return Ok(Some(field));
        }
        let (name, modifiers) = match sql_type {
            SqlType::Custom(name, modifiers) => (name, modifiers),
            SqlType::Varchar(_) | SqlType::CharacterVarying(_) | SqlType::CharVarying(_) => {
                return Ok(Some(varchar()));
            }
            SqlType::Array(ArrayElemTypeDef::SquareBracket(element, _)) if is_oid(element) => {
                return Ok(Some(oid_array()));
            }
            _ => return Ok(None),
        };
        let is_name = modifiers.is_empty()
            && match name.0.as_slice() {
                [only] => is_unquoted(only, "name"),
                [schema, only] => is_unquoted(schema, "pg_catalog") && is_unquoted(only, "name"),
                _ => false,
            };
        Ok(is_name.then(|| Arc::new(Field::new("", DataType::Utf8, true))))
    }
}

/// `oid` (not one of its aliases), as `$1::oid[]` names it.
fn is_oid(sql_type: &SqlType) -> bool {
    match sql_type {
        SqlType::Custom(name, modifiers) if modifiers.is_empty() => match name.0.as_slice() {
            [only] => is_unquoted(only, "oid"),
            [schema, only] => is_unquoted(schema, "pg_catalog") && is_unquoted(only, "oid"),
            _ => false,
        },
        _ => false,
    }
}

/// `oid[]`: a list of the Int32 oids of this catalog, its elements marked `oid` so clients
/// are told `oid[]` (asyncpg sends its type lookups' oids as one).
fn oid_array() -> FieldRef {
    let marked = [(PG_TYPE_KEY.to_string(), "oid".to_string())].into();
    let element = Field::new_list_field(DataType::Int32, true).with_metadata(marked);
    Arc::new(Field::new("", DataType::List(Arc::new(element)), true))
}

/// A string field marked `varchar` (Arrow's string view, as DataFusion plans every string
/// type by default).
fn varchar() -> FieldRef {
    let marked = [(PG_TYPE_KEY.to_string(), "varchar".to_string())].into();
    Arc::new(Field::new("", DataType::Utf8View, true).with_metadata(marked))
}

fn is_unquoted(part: &datafusion::sql::sqlparser::ast::ObjectNamePart, word: &str) -> bool {
    part.as_ident()
        .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case(word))
}
