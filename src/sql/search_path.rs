//! Unqualified table names, as a PostgreSQL `search_path` resolves them: the session's own
//! schema first (its temporary views), then the project's target schema (where dbt puts
//! models without a custom schema), then the lake's other schemas in name order, `bronze`
//! last. So `SELECT * FROM customers` reads `main.customers` after `strata build`, in
//! `strata sql`, the REPL and the server alike. A name is qualified with the first schema
//! holding it; CTE names and names found nowhere are left as written.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Query, Statement, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut,
};

use crate::warehouse::catalog::BRONZE;

/// The project's target schema (dbt's `target.schema`), searched right after the session's.
pub const TARGET_SCHEMA: &str = "main";

/// Schemas never searched: catalogs and Strata's own tables.
const NOT_SEARCHED: [&str; 3] = ["information_schema", "pg_catalog", "_strata"];

/// The schemas an unqualified name is looked for in, in order.
pub fn search_path(ctx: &SessionContext, default_schema: &str) -> Vec<String> {
    let state = ctx.state();
    let catalog_name = state.config().options().catalog.default_catalog.clone();
    let Some(catalog) = ctx.catalog(&catalog_name) else {
        return vec![default_schema.to_string()];
    };
    let mut others: Vec<String> = catalog
        .schema_names()
        .into_iter()
        .filter(|s| {
            s != default_schema
                && s != TARGET_SCHEMA
                && s != BRONZE
                && !NOT_SEARCHED.contains(&s.as_str())
        })
        .collect();
    others.sort();
    let mut path = vec![default_schema.to_string(), TARGET_SCHEMA.to_string()];
    path.extend(others);
    path.push(BRONZE.to_string());
    path
}

/// Qualifies each unqualified table name of `statement` with the first schema of the search
/// path that holds it.
pub fn qualify(ctx: &SessionContext, statement: &mut Statement, default_schema: &str) {
    let ctes = cte_names(statement);
    let state = ctx.state();
    let catalog_name = state.config().options().catalog.default_catalog.clone();
    let Some(catalog) = ctx.catalog(&catalog_name) else {
        return;
    };
    let path = search_path(ctx, default_schema);
    let find = |table: &str| -> Option<String> {
        path.iter()
            .find(|s| {
                catalog
                    .schema(s)
                    .is_some_and(|schema| schema.table_exist(table))
            })
            .cloned()
    };
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
        default_schema,
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
