//! Unqualified table names, as a PostgreSQL `search_path` resolves them: the session's own
//! schema first (its temporary views), then the project's target schema (where dbt puts
//! models without a custom schema), then the lake's other schemas in name order, `bronze`
//! last. So `SELECT * FROM customers` reads `main.customers` after `strata build`, in
//! `strata sql`, the REPL and the server alike. A name is qualified with the first schema
//! holding it; CTE names and names found nowhere are left as written.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;

use datafusion::catalog::CatalogProvider;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, Statement, TableFactor, Value, Visit, VisitMut,
    Visitor, VisitorMut,
};

use super::ident::ident;
use crate::warehouse::catalog::{BRONZE, PUBLIC};

/// The project's target schema (dbt's `target.schema`), searched right after the session's.
pub const TARGET_SCHEMA: &str = "main";

/// Schemas never searched: catalogs and Strata's own tables.
const NOT_SEARCHED: [&str; 3] = ["information_schema", "pg_catalog", "_strata"];

/// The schemas an unqualified name is looked for in, in order: PostgreSQL's `search_path`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchPath(Vec<String>);

impl SearchPath {
    /// Strata's path over `ctx`'s catalog: `session_schema` (temporary views), the target
    /// schema, the other model schemas by name, `bronze` last.
    pub fn of_catalog(ctx: &SessionContext, session_schema: &str) -> Self {
        let state = ctx.state();
        let catalog_name = state.config().options().catalog.default_catalog.clone();
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            return Self(vec![session_schema.to_string()]);
        };
        let mut others: Vec<String> = catalog
            .schema_names()
            .into_iter()
            .filter(|s| {
                s != session_schema
                    && s != TARGET_SCHEMA
                    && s != BRONZE
                    && !NOT_SEARCHED.contains(&s.as_str())
            })
            .collect();
        others.sort();
        others.dedup();
        let mut path = vec![session_schema.to_string(), TARGET_SCHEMA.to_string()];
        path.extend(others);
        path.push(BRONZE.to_string());
        Self(path)
    }

    /// A `search_path` setting as PostgreSQL reads it (`gold, public`, `"$user", public`).
    /// `$user` names no schema: Strata has none per role.
    pub fn parse(value: &str) -> Self {
        Self(
            value
                .split(',')
                .map(|s| {
                    let s = s.trim();
                    match s.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                        Some(quoted) => quoted.replace("\"\"", "\""),
                        None => s.to_lowercase(),
                    }
                })
                .filter(|s| !s.is_empty() && s != "$user")
                .collect(),
        )
    }

    pub fn schemas(&self) -> &[String] {
        &self.0
    }

    /// The schema new objects are created in and names found nowhere are planned in: the
    /// first of the path (PostgreSQL's `current_schema`), `public` when the path is empty.
    pub fn first(&self) -> &str {
        self.0.first().map_or(PUBLIC, String::as_str)
    }

    /// The first schema of the path holding `table` in `catalog`; catalogs are not searched
    /// here (they are found by their own rules).
    fn find(&self, catalog: &dyn CatalogProvider, table: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|s| !NOT_SEARCHED.contains(&s.as_str()))
            .find(|s| {
                catalog
                    .schema(s)
                    .is_some_and(|schema| schema.table_exist(table))
            })
            .map(String::as_str)
    }
}

/// The path as `SHOW search_path` prints it: `public, main, gold`.
impl fmt::Display for SearchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(|s| ident(s)).collect();
        f.write_str(&shown.join(", "))
    }
}

/// The value of `SET search_path TO …` as PostgreSQL shows it: each schema named as SQL
/// would (`gold`, `"$user"`, `"My Schema"`), unquoted names folded to lower case; `None` for
/// `DEFAULT`.
pub fn setting(values: &[Expr]) -> Option<String> {
    let mut schemas = Vec::with_capacity(values.len());
    for value in values {
        let name = match value {
            Expr::Identifier(ident) if ident.quote_style.is_none() => {
                if values.len() == 1 && ident.value.eq_ignore_ascii_case("default") {
                    return None;
                }
                ident.value.to_lowercase()
            }
            Expr::Identifier(ident) => ident.value.clone(),
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                other => other.to_string(),
            },
            other => other.to_string(),
        };
        schemas.push(ident(&name));
    }
    Some(schemas.join(", "))
}

/// Qualifies each unqualified table name of `statement` with the first schema of `path`
/// that holds it (names in the path's first schema are left, as the planner looks there).
pub fn qualify(ctx: &SessionContext, statement: &mut Statement, path: &SearchPath) {
    let ctes = cte_names(statement);
    let state = ctx.state();
    let catalog_name = state.config().options().catalog.default_catalog.clone();
    let Some(catalog) = ctx.catalog(&catalog_name) else {
        return;
    };
    let find = |table: &str| path.find(catalog.as_ref(), table).map(str::to_string);
    struct Qualify<'a> {
        ctes: &'a HashSet<String>,
        default_schema: &'a str,
        find: &'a dyn Fn(&str) -> Option<String>,
    }
    impl VisitorMut for Qualify<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name, args: None, ..
            } = factor
                && let [ObjectNamePart::Identifier(ident)] = name.0.as_slice()
            {
                let table = normalized(ident);
                if !self.ctes.contains(&table)
                    && let Some(schema) = (self.find)(&table)
                    && schema != self.default_schema
                {
                    *name = ObjectName(vec![
                        ObjectNamePart::Identifier(Ident::new(schema)),
                        ObjectNamePart::Identifier(ident.clone()),
                    ]);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Qualify {
        ctes: &ctes,
        default_schema: path.first(),
        find: &find,
    });
}

/// An identifier as the planner sees it: unquoted ones lowercased.
fn normalized(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// Every CTE name in `statement` (a name that shadows a table wherever it is visible).
fn cte_names(statement: &Statement) -> HashSet<String> {
    struct Ctes(HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.0.insert(normalized(&cte.alias.name));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut ctes = Ctes(HashSet::new());
    let _ = statement.visit(&mut ctes);
    ctes.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::Set;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn set(sql: &str) -> Option<String> {
        match Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
        {
            Statement::Set(Set::SingleAssignment { values, .. }) => setting(&values),
            other => panic!("not a SET: {other}"),
        }
    }

    #[test]
    fn search_path_settings_read_and_show_as_in_postgresql() {
        assert_eq!(
            set("SET search_path TO Gold, public").as_deref(),
            Some("gold, public")
        );
        assert_eq!(
            set("SET search_path = \"$user\", 'My Schema'").as_deref(),
            Some("\"$user\", \"My Schema\"")
        );
        assert_eq!(set("SET search_path TO DEFAULT"), None);
        let path = SearchPath::parse("\"$user\", gold, \"My Schema\", PUBLIC");
        assert_eq!(path.schemas(), ["gold", "My Schema", "public"]);
        assert_eq!(path.first(), "gold");
        assert_eq!(path.to_string(), "gold, \"My Schema\", public");
        assert_eq!(SearchPath::parse("\"$user\"").first(), PUBLIC);
    }
}
