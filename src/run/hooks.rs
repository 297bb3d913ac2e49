//! dbt's hooks: a node's `pre_hook`s run before it is built and its `post_hook`s after, and the
//! project's `on-run-start` / `on-run-end` before and after the whole run. Each hook is SQL
//! (rendered by the caller) run by Strata's engine as `strata sql` runs it, one statement after
//! another; a `CREATE [OR REPLACE] VIEW` is kept in the lake, as a view model is. dbt's dict
//! form (`{sql: ..., transaction: false}`, `before_begin(...)`, `after_commit(...)`) runs the
//! same way: Strata runs no transaction around a node, so `transaction` changes nothing.

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;

use crate::lake::Lake;
use crate::sql::exec::{SqlError, run_statement, split_statements};
use crate::warehouse::views;

/// Which hook failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct HookError {
    /// `pre-hook 1 of model.shop.orders`, `on-run-start 2`.
    pub what: String,
    pub message: String,
}

impl HookError {
    pub fn new(what: &str, message: impl ToString) -> Self {
        HookError {
            what: what.to_string(),
            message: message.to_string(),
        }
    }
}

/// Runs the rendered hook `sql` (`what` names it in errors).
pub async fn run(
    ctx: &SessionContext,
    lake: &Lake,
    what: &str,
    sql: &str,
) -> Result<(), HookError> {
    let failed = |message: String| HookError::new(what, message);
    let statements = split_statements(sql).map_err(|e| failed(e.to_string()))?;
    for statement in statements {
        if let DFStatement::Statement(inner) = &statement
            && let Statement::CreateView(view) = inner.as_ref()
            && !view.temporary
        {
            let query = view.query.to_string();
            ctx.state()
                .create_logical_plan(&query)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let parts: Vec<String> = view
                .name
                .0
                .iter()
                .map(|p| p.to_string().trim_matches('"').to_string())
                .collect();
            let (schema, name) = match parts.as_slice() {
                [name] => (default_schema(ctx), name.clone()),
                [.., schema, name] => (schema.clone(), name.clone()),
                [] => return Err(failed("a view needs a name".into())),
            };
            views::save(lake, &schema, &name, &query)
                .await
                .map_err(|e| failed(format!("saving the view {schema}.{name}: {e}")))?;
            continue;
        }
        run_statement(ctx, lake, &mut None, statement)
            .await
            .map_err(|e: SqlError| failed(e.to_string()))?;
    }
    Ok(())
}

fn default_schema(ctx: &SessionContext) -> String {
    ctx.state()
        .config()
        .options()
        .catalog
        .default_schema
        .clone()
}
