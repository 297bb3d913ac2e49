//! A data test's configs as dbt applies them: `limit` on the failing rows, `warn_if` /
//! `error_if` on their number (SQL conditions such as `!= 0` or `>10`, with `severity`
//! deciding which is checked), and `store_failures` / `store_failures_as` keeping the failing
//! rows in the audit schema (`<target schema>_dbt_test__audit`, or the test's own `schema`)
//! as a Delta table or a view, replaced each run.

use datafusion::prelude::SessionContext;
use serde_json::Value as Json;

use super::execute::Status;
use super::materialize::Relation;
use crate::project::node_config::boolish;
use crate::project::{Node, Project, Severity};

/// The schema suffix dbt stores failures under.
pub const AUDIT_SUFFIX: &str = "dbt_test__audit";

/// How failing rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAs {
    Table,
    View,
}

/// A data test's configs beyond its severity.
#[derive(Debug, Clone, PartialEq)]
pub struct TestConfig {
    pub limit: Option<u64>,
    pub warn_if: String,
    pub error_if: String,
    pub store: Option<StoreAs>,
}

impl TestConfig {
    /// The configs of `node`, defaults as dbt's (`!= 0`, no limit, nothing stored unless
    /// `store_failures`: dbt's `--store-failures`).
    pub fn of(node: &Node, store_failures_flag: bool) -> Result<TestConfig, String> {
        let extra = &node.config.extra;
        let condition = |key: &str| match extra.get(key) {
            None | Some(Json::Null) => Ok("!= 0".to_string()),
            Some(Json::String(s)) => Ok(s.trim().to_string()),
            Some(other) => Err(format!(
                "config '{key}' must be a condition such as '>10', got {other}"
            )),
        };
        let limit = match extra.get("limit") {
            None | Some(Json::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .or_else(|| value.as_str()?.trim().parse().ok())
                    .ok_or_else(|| format!("config 'limit' must be a whole number, got {value}"))?,
            ),
        };
        let store_as = match extra.get("store_failures_as") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "table" => Some(Some(StoreAs::Table)),
                "view" => Some(Some(StoreAs::View)),
                "ephemeral" => Some(None),
                other => {
                    return Err(format!(
                        "config 'store_failures_as' must be table, view or ephemeral, got '{other}'"
                    ));
                }
            },
            Some(other) => {
                return Err(format!(
                    "config 'store_failures_as' must be table, view or ephemeral, got {other}"
                ));
            }
        };
        let store_failures = match extra.get("store_failures") {
            None | Some(Json::Null) => None,
            Some(value) => Some(boolish(value, "store_failures")?),
        };
        // dbt: `store_failures_as` decides when set (ephemeral: nothing stored); otherwise
        // `store_failures` (the config, else the flag) true keeps a table.
        let store = match (store_as, store_failures.unwrap_or(store_failures_flag)) {
            (Some(kind), _) => kind,
            (None, true) => Some(StoreAs::Table),
            (None, false) => None,
        };
        Ok(TestConfig {
            limit,
            warn_if: condition("warn_if")?,
            error_if: condition("error_if")?,
            store,
        })
    }

    /// The failing rows' query, limited as `limit` says.
    pub fn failing_rows(&self, sql: &str) -> String {
        match self.limit {
            Some(n) => format!("select * from (\n{sql}\n) dbt_limited limit {n}"),
            None => sql.to_string(),
        }
    }

    /// The test's status for `failures` failing rows: with error severity, `error_if` true
    /// fails it; otherwise `warn_if` true warns (dbt's order).
    pub async fn status(
        &self,
        ctx: &SessionContext,
        severity: Severity,
        failures: u64,
    ) -> Result<Status, String> {
        if severity == Severity::Error && holds(ctx, failures, &self.error_if).await? {
            return Ok(Status::Fail);
        }
        if holds(ctx, failures, &self.warn_if).await? {
            return Ok(Status::Warn);
        }
        Ok(Status::Pass)
    }
}

/// Whether `<failures> <condition>` is true, evaluated as SQL as dbt does.
async fn holds(ctx: &SessionContext, failures: u64, condition: &str) -> Result<bool, String> {
    let sql = format!("select coalesce(cast(({failures} {condition}) as boolean), false)");
    let bad = |e: datafusion::error::DataFusionError| {
        format!("the condition '{condition}' (warn_if / error_if) does not evaluate: {e}")
    };
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(bad)?
        .collect()
        .await
        .map_err(bad)?;
    Ok(batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<arrow::array::BooleanArray>()
                .map(|a| a.value(0))
        })
        .unwrap_or(false))
}

/// Where a test's failing rows are stored: its own `schema` if it sets one, else the audit
/// schema of the target's; named as the test.
pub fn audit_relation(project: &Project, node: &Node) -> Relation {
    let schema = if node.config.schema != project.target.schema {
        node.config.schema.clone()
    } else {
        format!("{}_{AUDIT_SUFFIX}", project.target.schema)
    };
    Relation {
        schema,
        name: node.relation_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(extra: Json) -> Result<TestConfig, String> {
        config_with(extra, false)
    }

    fn config_with(extra: Json, store_failures_flag: bool) -> Result<TestConfig, String> {
        let mut node = crate::project::Node {
            unique_id: "test.p.t".into(),
            name: "t".into(),
            resource: crate::project::Resource::Test,
            package: "p".into(),
            path: "models/s.yml".into(),
            fqn: vec![],
            raw_code: String::new(),
            config: crate::project::node_config::build_node_config(
                crate::project::Resource::Test,
                &serde_json::Map::new(),
            )
            .unwrap()
            .0,
            depends_on: vec![],
            sources: vec![],
            description: String::new(),
            columns: vec![],
            constraints: vec![],
            patch_path: None,
            test: None,
        };
        node.config.extra = extra.as_object().unwrap().clone().into_iter().collect();
        TestConfig::of(&node, store_failures_flag)
    }

    #[test]
    fn configs_as_dbt_reads_them() {
        let c = config(json!({})).unwrap();
        assert_eq!((c.limit, c.warn_if.as_str(), c.store), (None, "!= 0", None));
        let c = config(json!({"limit": 5, "error_if": ">10", "store_failures": true})).unwrap();
        assert_eq!((c.limit, c.error_if.as_str()), (Some(5), ">10"));
        assert_eq!(c.store, Some(StoreAs::Table));
        let c = config(json!({"store_failures": true, "store_failures_as": "view"})).unwrap();
        assert_eq!(c.store, Some(StoreAs::View));
        let c = config(json!({"store_failures": true, "store_failures_as": "ephemeral"})).unwrap();
        assert_eq!(c.store, None);
        assert!(config(json!({"store_failures_as": "file"})).is_err());
        // `--store-failures`: every test stores, unless its config says otherwise.
        let flagged = |extra: Json| config_with(extra, true).unwrap().store;
        assert_eq!(flagged(json!({})), Some(StoreAs::Table));
        assert_eq!(flagged(json!({"store_failures": false})), None);
        assert_eq!(
            flagged(json!({"store_failures_as": "view"})),
            Some(StoreAs::View)
        );
        assert!(c.failing_rows("select 1").contains("select 1"));
    }
}
