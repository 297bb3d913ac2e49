//! The SQL types of PostgreSQL's catalog that client queries cast to: the oid aliases
//! (`regclass`, `oid`, ...) and `pg_catalog.`-qualified builtins, as datafusion-pg-catalog
//! plans them, and `name`, the type of identifiers (psqlODBC's SQLForeignKeys selects
//! `'strata'::name`), which is text here as every identifier in this catalog is.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::DataType as SqlType;
use datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner;

#[derive(Debug)]
pub struct CatalogTypes;

impl TypePlanner for CatalogTypes {
    fn plan_type_field(&self, sql_type: &SqlType) -> Result<Option<FieldRef>> {
        if let Some(field) = PgOidTypePlanner.plan_type_field(sql_type)? {
            return Ok(Some(field));
        }
        let SqlType::Custom(name, modifiers) = sql_type else {
            return Ok(None);
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

fn is_unquoted(part: &datafusion::sql::sqlparser::ast::ObjectNamePart, word: &str) -> bool {
    part.as_ident()
        .is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case(word))
}
