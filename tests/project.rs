//! The dbt project parser (`strata::project`) and Jinja compiler (`strata::compile`) on the
//! fixture projects under `fixtures/projects/`: what is loaded (ids, configs, dependencies,
//! schemas, test nodes), the exact compiled SQL, the errors, and that the compiled SQL runs
//! on DataFusion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use strata::compile::{CompileContext, CompileError, compile, ephemeral_dependencies};
use strata::jinja::Target;
use strata::project::{
    Materialized, Node, Project, ProjectError, Resource, Severity, SourceTable, TestKind, load,
    load_with_target,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/projects")
        .join(name)
}

fn jinja() -> Project {
    load(&fixture("jinja"), None).expect("the jinja fixture loads")
}

/// Relations as Strata spells them: `<schema>.<alias or name>`.
fn relation(node: &Node) -> String {
    format!("{}.{}", node.config.schema, node.relation_name())
}

/// Sources: their table, or the file they are read from.
fn source_relation(table: &SourceTable) -> String {
    match &table.external_location {
        Some(location) => format!("read_csv('{location}')"),
        None => format!("{}.{}", table.schema, table.identifier),
    }
}

fn context(is_incremental: bool) -> CompileContext<'static> {
    CompileContext {
        is_incremental,
        target: Target::default(),
        relation: &relation,
        source_relation: &source_relation,
        warehouse: None,
    }
}

fn compiled(project: &Project, unique_id: &str) -> String {
    compile(project, unique_id, &context(false))
        .unwrap_or_else(|e| panic!("{unique_id} compiles: {e}"))
}

fn ids(project: &Project, resource: Resource) -> Vec<&str> {
    project
        .nodes_of(resource)
        .map(|n| n.unique_id.as_str())
        .collect()
}

/// A throwaway project: `dbt_project.yml` (name `tmp`) plus `files`.
fn temp_project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let default = [("dbt_project.yml", "name: tmp\nconfig-version: 2\n")];
    for (path, text) in default.iter().chain(files) {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load_error(files: &[(&str, &str)]) -> ProjectError {
    let dir = temp_project(files);
    load(dir.path(), None).expect_err("the project does not load")
}

#[test]
fn nodes_are_keyed_by_dbt_unique_ids() {
    let p = jinja();
    assert_eq!(p.name, "shop");
    assert_eq!(
        ids(&p, Resource::Model),
        [
            "model.shop.customer_summary",
            "model.shop.int_order_payments",
            "model.shop.int_orders_enriched",
            "model.shop.orders",
            "model.shop.orders_incremental",
            "model.shop.stg_customers",
            "model.shop.stg_orders",
        ],
        "legacy_orders is disabled, so absent (and its unknown ref is never resolved)"
    );
    assert_eq!(ids(&p, Resource::Seed), ["seed.shop.payments"]);
    assert_eq!(
        ids(&p, Resource::Test),
        [
            "test.shop.accepted_values_orders_status__True__placed__shipped__completed",
            "test.shop.accepted_values_stg_orders_status__placed__shipped__completed",
            "test.shop.amount_is_small_integer",
            "test.shop.assert_orders_positive",
            "test.shop.is_positive_orders_True__amount",
            "test.shop.is_positive_orders_incremental_amount_100",
            "test.shop.not_empty_string_stg_customers_name",
            "test.shop.not_null_orders_order_id",
            "test.shop.not_null_stg_customers_customer_id",
            "test.shop.not_null_stg_orders_order_id",
            // 65 characters in full: cut to 52 plus a hash of the full name.
            "test.shop.relationships_orders_customer_id__customer_id__ref_s_ee5dba4b5c",
            "test.shop.source_not_null_shop_orders_id",
            "test.shop.source_unique_shop_orders_id",
            "test.shop.unique_orders_order_id",
            "test.shop.unique_payments_id",
            "test.shop.unique_stg_orders_order_id",
        ]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let node = &p.nodes["model.shop.stg_orders"];
    assert_eq!(node.path, Path::new("models/staging/stg_orders.sql"));
    assert_eq!(node.fqn, ["shop", "staging", "stg_orders"]);
    assert!(node.raw_code.contains("{{ source('shop', 'orders') }}"));
    assert_eq!(
        node.patch_path.as_deref(),
        Some(Path::new("models/staging/_staging.yml"))
    );
    assert_eq!(
        p.by_name("payments").unwrap().unique_id,
        "seed.shop.payments"
    );
    assert_eq!(
        p.macros.keys().collect::<Vec<_>>(),
        [
            "cents_to_dollars",
            "known_statuses",
            "status_filter",
            "test_is_positive",
            "test_not_empty_string"
        ]
    );
}

#[test]
fn configs_layer_folder_then_properties_then_file() {
    let p = jinja();
    let config = |id: &str| p.nodes[id].config.clone();

    // Folder: staging → schema silver, tags [staging]; properties add a tag.
    let stg_orders = config("model.shop.stg_orders");
    assert_eq!(stg_orders.materialized, Materialized::View);
    assert_eq!(stg_orders.schema, "silver");
    assert_eq!(stg_orders.tags, ["staging", "orders"]);
    assert_eq!(stg_orders.alias, None);
    assert_eq!(stg_orders.severity, Severity::Error);

    // In-file alias.
    let stg_customers = &p.nodes["model.shop.stg_customers"];
    assert_eq!(stg_customers.config.alias.as_deref(), Some("customers"));
    assert_eq!(stg_customers.relation_name(), "customers");

    // Folder says table, properties say view, the file says table again; tags accumulate;
    // the alias comes from the properties file, meta and schema from the folder.
    let orders = config("model.shop.orders");
    assert_eq!(orders.materialized, Materialized::Table);
    assert_eq!(orders.schema, "gold");
    assert_eq!(orders.alias.as_deref(), Some("fct_orders"));
    assert_eq!(orders.tags, ["yml", "finance"]);
    assert_eq!(orders.unique_key, ["order_id"]);
    assert_eq!(
        orders.meta,
        BTreeMap::from([("owner".into(), json!("analytics"))])
    );
    assert!(orders.enabled);

    let incremental = config("model.shop.orders_incremental");
    assert_eq!(incremental.materialized, Materialized::Incremental);
    assert_eq!(incremental.unique_key, ["order_id"]);
    assert_eq!(incremental.full_refresh, Some(false));
    assert_eq!(incremental.extra["incremental_strategy"], json!("merge"));

    for id in [
        "model.shop.int_order_payments",
        "model.shop.int_orders_enriched",
    ] {
        assert_eq!(config(id).materialized, Materialized::Ephemeral, "{id}");
        assert_eq!(config(id).schema, "main", "{id}: no custom schema");
    }

    let payments = config("seed.shop.payments");
    assert_eq!(payments.materialized, Materialized::Seed);
    assert_eq!(payments.schema, "raw");
    assert_eq!(
        payments.extra["column_types"],
        json!({"amount_cents": "bigint"})
    );
}

#[test]
fn dependencies_are_captured_while_parsing() {
    let p = jinja();
    let deps = |id: &str| p.nodes[id].depends_on.clone();
    assert_eq!(deps("model.shop.stg_orders"), Vec::<String>::new());
    assert_eq!(
        p.nodes["model.shop.stg_orders"].sources,
        [("shop".to_string(), "shop".to_string(), "orders".to_string())]
    );
    assert_eq!(
        deps("model.shop.int_order_payments"),
        ["seed.shop.payments"]
    );
    assert_eq!(
        deps("model.shop.int_orders_enriched"),
        ["model.shop.stg_orders", "model.shop.int_order_payments"]
    );
    assert_eq!(
        deps("model.shop.orders"),
        ["model.shop.int_orders_enriched", "model.shop.stg_customers"]
    );
    // `ref('shop', 'orders')` is the project's own model; the ref inside
    // `{% if execute %}` in a macro is not a dependency.
    assert_eq!(deps("model.shop.customer_summary"), ["model.shop.orders"]);
    assert_eq!(
        ephemeral_dependencies(&p, "model.shop.orders"),
        [
            "model.shop.int_order_payments",
            "model.shop.int_orders_enriched"
        ]
    );
    // A relationships test depends on the tested model and on `to`.
    assert_eq!(
        deps("test.shop.relationships_orders_customer_id__customer_id__ref_s_ee5dba4b5c"),
        ["model.shop.orders", "model.shop.stg_customers"]
    );
    assert_eq!(
        deps("test.shop.assert_orders_positive"),
        ["model.shop.orders"]
    );
    let source_test = &p.nodes["test.shop.source_unique_shop_orders_id"];
    assert!(source_test.depends_on.is_empty());
    assert_eq!(
        source_test.sources,
        [("shop".to_string(), "shop".to_string(), "orders".to_string())]
    );
}

#[test]
fn test_nodes_describe_what_they_test() {
    let p = jinja();
    let test = |name: &str| p.nodes[&format!("test.shop.{name}")].clone();

    let not_null = test("not_null_stg_orders_order_id");
    assert_eq!(not_null.resource, Resource::Test);
    assert_eq!(not_null.path, Path::new("models/staging/_staging.yml"));
    assert_eq!(
        not_null.fqn,
        ["shop", "staging", "not_null_stg_orders_order_id"]
    );
    assert_eq!(not_null.config.materialized, Materialized::Test);
    assert_eq!(not_null.config.severity, Severity::Error);
    assert_eq!(
        not_null.raw_code,
        "{{ test_not_null(**_dbt_generic_test_kwargs) }}"
    );
    let info = not_null.test.unwrap();
    assert_eq!(info.attached_node.as_deref(), Some("model.shop.stg_orders"));
    assert_eq!(
        info.kind,
        TestKind::Generic {
            name: "not_null".into(),
            package: "dbt".into(),
            column: Some("order_id".into()),
            args: BTreeMap::new(),
        }
    );

    // dbt 1.10 `arguments:` plus `config:`; the folder makes marts tests warn.
    let accepted = test("accepted_values_orders_status__True__placed__shipped__completed");
    assert_eq!(accepted.config.severity, Severity::Warn);
    assert_eq!(
        accepted.config.where_clause.as_deref(),
        Some("order_id > {{ var('min_order_total') }}")
    );
    assert_eq!(
        accepted.test.unwrap().kind,
        TestKind::Generic {
            name: "accepted_values".into(),
            package: "dbt".into(),
            column: Some("status".into()),
            args: BTreeMap::from([
                ("quote".into(), json!(true)),
                ("values".into(), json!(["placed", "shipped", "completed"])),
            ]),
        }
    );
    // The test's own config beats the folder's.
    assert_eq!(
        test("unique_orders_order_id").config.severity,
        Severity::Error
    );
    assert_eq!(
        test("not_null_stg_customers_customer_id").config.severity,
        Severity::Warn
    );

    let custom = test("is_positive_orders_incremental_amount_100");
    assert_eq!(
        custom.test.unwrap().kind,
        TestKind::Generic {
            name: "is_positive".into(),
            package: "shop".into(),
            column: Some("amount * 100".into()),
            args: BTreeMap::new(),
        }
    );

    let source = test("source_not_null_shop_orders_id").test.unwrap();
    assert_eq!(
        source.attached_node.as_deref(),
        Some("source.shop.shop.orders")
    );

    let singular = test("assert_orders_positive");
    assert_eq!(singular.path, Path::new("tests/assert_orders_positive.sql"));
    assert_eq!(singular.config.severity, Severity::Warn);
    let info = singular.test.unwrap();
    assert_eq!(info.kind, TestKind::Singular);
    assert_eq!(info.attached_node, None);
}

#[test]
fn sources_docs_and_descriptions() {
    let p = jinja();
    let orders = &p.sources[&("shop".to_string(), "shop".to_string(), "orders".to_string())];
    assert_eq!(orders.unique_id, "source.shop.shop.orders");
    assert_eq!(orders.schema, "bronze");
    assert_eq!(orders.identifier, "shop_orders");
    assert_eq!(orders.description, "Every order ever placed.");
    assert_eq!(
        orders.source_description,
        "Raw data from the shop's database."
    );
    assert_eq!(orders.external_location, None);
    assert_eq!(orders.columns[0].name, "id");
    let customers = &p.sources[&(
        "shop".to_string(),
        "shop".to_string(),
        "customers".to_string(),
    )];
    assert_eq!(customers.identifier, "customers");
    assert_eq!(
        customers.external_location.as_deref(),
        Some("fixtures/data/customers.csv")
    );
    assert_eq!(
        p.source_by_id("source.shop.shop.customers").unwrap().name,
        "customers"
    );

    assert_eq!(
        p.docs["order_status"],
        "One of `placed`, `shipped` or `completed`."
    );
    assert_eq!(
        p.nodes["model.shop.orders"].description,
        "One row per order, with its customer and what was paid."
    );
    let columns = &p.nodes["model.shop.stg_orders"].columns;
    assert_eq!(columns[0].name, "order_id");
    assert_eq!(columns[0].data_type.as_deref(), Some("bigint"));
    assert_eq!(
        columns[1].description,
        "One of `placed`, `shipped` or `completed`."
    );
    assert_eq!(
        p.nodes["seed.shop.payments"].description,
        "Payments per order."
    );
}

#[test]
fn vars_scopes_and_cli_overrides() {
    let p = jinja();
    assert_eq!(p.vars["start_date"], json!("2020-01-01"));
    assert_eq!(
        p.vars["min_order_total"],
        json!(0),
        "scoped under the project"
    );
    assert!(!p.vars.contains_key("shop"));
    assert!(compiled(&p, "model.shop.stg_orders").ends_with("where ordered_at >= '2020-01-01'"));

    let overridden = load(
        &fixture("jinja"),
        Some("{start_date: '2021-06-01', statuses: [placed]}"),
    )
    .unwrap();
    assert_eq!(overridden.vars["start_date"], json!("2021-06-01"));
    assert!(
        compiled(&overridden, "model.shop.stg_orders")
            .ends_with("where ordered_at >= '2021-06-01'")
    );
    let summary = compiled(&overridden, "model.shop.customer_summary");
    assert!(
        summary.contains("as placed_orders,\n    count(*)"),
        "{summary}"
    );
    assert!(summary.contains("where status in ('placed')"), "{summary}");
    // JSON works too.
    let json_vars = load(&fixture("jinja"), Some(r#"{"start_date": "2022-01-01"}"#)).unwrap();
    assert_eq!(json_vars.vars["start_date"], json!("2022-01-01"));
}

#[test]
fn compiles_sources_macros_and_vars() {
    let p = jinja();
    assert_eq!(
        compiled(&p, "model.shop.stg_orders"),
        "select
    id as order_id,
    customer_id,
    status,
    round(amount_cents / 100.0, 2) as amount,
    ordered_at
from bronze.shop_orders
where ordered_at >= '2020-01-01'"
    );
    // `config()` renders to nothing; an external source is spelled by the caller.
    assert_eq!(
        compiled(&p, "model.shop.stg_customers"),
        "
select id as customer_id, name, country
from read_csv('fixtures/data/customers.csv')"
    );
}

#[test]
fn ephemeral_models_become_ctes() {
    let p = jinja();
    // Both ephemerals, dependency first; the second one's own WITH stays inside its CTE.
    assert_eq!(
        compiled(&p, "model.shop.orders"),
        "

WITH __dbt__cte__int_order_payments AS (
select
    order_id,
    sum(round(amount_cents / 100.0, 2)) as paid
from raw.payments
group by order_id
), __dbt__cte__int_orders_enriched AS (
with orders as (
    select * from silver.stg_orders
)
select orders.*, p.paid
from orders
left join __dbt__cte__int_order_payments as p on p.order_id = orders.order_id
)
select
    e.order_id,
    e.customer_id,
    c.name as customer_name,
    e.status,
    e.amount,
    e.paid
from __dbt__cte__int_orders_enriched as e
join silver.customers as c on c.customer_id = e.customer_id
where e.amount >= 0"
    );
    // A query that starts with WITH gets the CTEs merged into its WITH list.
    assert_eq!(
        compiled(&p, "model.shop.int_orders_enriched"),
        "with __dbt__cte__int_order_payments AS (
select
    order_id,
    sum(round(amount_cents / 100.0, 2)) as paid
from raw.payments
group by order_id
), orders as (
    select * from silver.stg_orders
)
select orders.*, p.paid
from orders
left join __dbt__cte__int_order_payments as p on p.order_id = orders.order_id"
    );
}

#[test]
fn incremental_models_and_this() {
    let p = jinja();
    let id = "model.shop.orders_incremental";
    assert_eq!(
        compile(&p, id, &context(false)).unwrap(),
        "
select order_id, status, amount, ordered_at
from silver.stg_orders
"
    );
    assert_eq!(
        compile(&p, id, &context(true)).unwrap(),
        "
select order_id, status, amount, ordered_at
from silver.stg_orders

where ordered_at > (select max(ordered_at) from gold.orders_incremental)
"
    );
    // `is_incremental()` is only ever true for incremental models.
    assert_eq!(
        compile(&p, "model.shop.stg_orders", &context(true)).unwrap(),
        compiled(&p, "model.shop.stg_orders")
    );
}

#[test]
fn jinja_control_flow_target_env_and_macros() {
    let p = jinja();
    assert_eq!(
        compiled(&p, "model.shop.customer_summary"),
        "select
    customer_id,
    sum(case when status = 'placed' then 1 else 0 end) as placed_orders,
    sum(case when status = 'shipped' then 1 else 0 end) as shipped_orders,
    sum(case when status = 'completed' then 1 else 0 end) as completed_orders,
    count(*) as total_orders,
    'dev/strata/main' as target_info,
    'eu' as region,
    'strata' as built_by
from gold.fct_orders
where status in ('placed', 'shipped', 'completed')
group by customer_id"
    );
    let prod = CompileContext {
        target: Target {
            name: "prod".into(),
            schema: "analytics".into(),
            ..Target::default()
        },
        ..context(false)
    };
    assert!(
        compile(&p, "model.shop.customer_summary", &prod)
            .unwrap()
            .contains("'prod/strata/analytics' as target_info")
    );
}

#[test]
fn built_in_generic_tests_return_failing_rows() {
    let p = jinja();
    let test = |name: &str| compiled(&p, &format!("test.shop.{name}"));
    assert_eq!(
        test("not_null_stg_orders_order_id"),
        "select order_id
from silver.stg_orders
where order_id is null"
    );
    assert_eq!(
        test("unique_orders_order_id"),
        "select order_id as unique_field, count(*) as n_records
from gold.fct_orders
where order_id is not null
group by order_id
having count(*) > 1"
    );
    // `where:` filters the tested relation.
    assert_eq!(
        test("accepted_values_orders_status__True__placed__shipped__completed"),
        "with all_values as (
    select status as value_field, count(*) as n_records
    from (select * from gold.fct_orders where order_id > 0) dbt_subquery
    group by status
)
select value_field, n_records
from all_values
where value_field not in ('placed', 'shipped', 'completed')"
    );
    assert!(
        test("amount_is_small_integer").ends_with("where value_field not in (1, 2, 3)"),
        "quote: false"
    );
    assert_eq!(
        test("relationships_orders_customer_id__customer_id__ref_s_ee5dba4b5c"),
        "with child as (
    select customer_id as from_field
    from gold.fct_orders
    where customer_id is not null
),
parent as (
    select customer_id as to_field
    from silver.customers
)
select child.from_field
from child
left join parent on child.from_field = parent.to_field
where parent.to_field is null"
    );
    assert_eq!(
        test("source_unique_shop_orders_id"),
        "select id as unique_field, count(*) as n_records
from bronze.shop_orders
where id is not null
group by id
having count(*) > 1"
    );
}

#[test]
fn custom_generic_and_singular_tests() {
    let p = jinja();
    let test = |name: &str| compiled(&p, &format!("test.shop.{name}"));
    // `{% test %}` in macros/, with a defaulted argument overridden...
    assert_eq!(
        test("is_positive_orders_True__amount"),
        "select *
from gold.fct_orders
where amount < 0"
    );
    // ...and left at its default, on a `column_name:` expression.
    assert_eq!(
        test("is_positive_orders_incremental_amount_100"),
        "select *
from gold.orders_incremental
where amount * 100 <= 0"
    );
    // `{% test %}` in tests/generic/.
    assert_eq!(
        test("not_empty_string_stg_customers_name"),
        "select name from silver.customers where trim(name) = ''"
    );
    assert_eq!(
        test("assert_orders_positive"),
        "
-- Orders must not have a negative amount.
select order_id, amount
from gold.fct_orders
where amount < 0"
    );
}

#[test]
fn seeds_are_not_compiled() {
    let p = jinja();
    assert!(matches!(
        compile(&p, "seed.shop.payments", &context(false)),
        Err(CompileError::NotCompilable(_))
    ));
    assert!(matches!(
        compile(&p, "model.shop.nope", &context(false)),
        Err(CompileError::UnknownNode(_))
    ));
}

#[test]
fn project_schema_and_alias_macros_are_used() {
    let p = load(&fixture("custom_schema"), None).unwrap();
    let staging = &p.nodes["model.warehouse.stg_accounts"];
    assert_eq!(staging.config.schema, "main_staging");
    assert_eq!(staging.relation_name(), "staging__stg_accounts");
    let accounts = &p.nodes["model.warehouse.accounts"];
    assert_eq!(accounts.config.schema, "main");
    assert_eq!(accounts.relation_name(), "accounts");
    assert_eq!(
        compiled(&p, "model.warehouse.accounts"),
        "select * from main_staging.staging__stg_accounts"
    );

    let target = Target {
        name: "prod".into(),
        schema: "analytics".into(),
        ..Target::default()
    };
    let p = load_with_target(&fixture("custom_schema"), None, &target).unwrap();
    assert_eq!(
        p.nodes["model.warehouse.stg_accounts"].config.schema,
        "analytics_staging"
    );
    assert_eq!(
        p.nodes["model.warehouse.accounts"].config.schema,
        "analytics"
    );
}

fn fixture_error(name: &str) -> String {
    load(&fixture(name), None)
        .expect_err("the fixture is broken")
        .to_string()
}

#[test]
fn broken_fixtures_say_where() {
    assert_eq!(
        fixture_error("broken_yaml"),
        "models/schema.yml:7:8: invalid YAML: did not find expected '-' indicator, while parsing a block collection at line 6 column 7"
    );
    assert!(matches!(
        load(&fixture("broken_yaml"), None),
        Err(ProjectError::Yaml {
            line: 7,
            column: 8,
            ..
        })
    ));
    assert_eq!(
        fixture_error("broken_ref"),
        "models/orders.sql: model.broken.orders depends on a node named 'stg_ordres' which was not found (did you mean 'stg_orders'?)"
    );
    assert_eq!(
        fixture_error("broken_duplicate"),
        "found two models named 'orders': models/marts/orders.sql and models/staging/orders.sql"
    );
    assert_eq!(
        fixture_error("broken_missing_var"),
        "models/uses_var.sql: model.broken.uses_var: Required var 'not_defined_anywhere' not found in config (dbt_project.yml vars or --vars)"
    );
    assert_eq!(
        fixture_error("broken_jinja"),
        "models/bad_syntax.sql:3:17: Jinja syntax error: unexpected `}`, expected `,`"
    );
    assert_eq!(
        fixture_error("broken_disabled_ref"),
        "models/report.sql: model.broken.report depends on a node named 'old_orders' which is disabled"
    );
}

#[test]
fn more_errors() {
    let schema = "version: 2\nmodels:\n  - name: a\n    columns:\n      - name: id\n        data_tests: [not_nul]\n";
    assert_eq!(
        load_error(&[
            ("models/a.sql", "select 1 as id"),
            ("models/schema.yml", schema)
        ])
        .to_string(),
        "models/schema.yml: model.tmp.a uses the generic test 'not_nul', which is not defined (define it with {% test not_nul(model, column_name) %}) (did you mean 'not_null'?)"
    );
    let sources = "version: 2\nsources:\n  - name: shop\n    tables: [{name: orders}]\n";
    assert_eq!(
        load_error(&[
            (
                "models/a.sql",
                "select * from {{ source('shop', 'ordrs') }}"
            ),
            ("models/sources.yml", sources)
        ])
        .to_string(),
        "models/a.sql: model.tmp.a depends on a source named 'shop.ordrs' which was not found (did you mean 'shop.orders'?)"
    );
    assert_eq!(
        load_error(&[(
            "models/a.sql",
            "select '{{ env_var('STRATA_TEST_SURELY_UNSET') }}'"
        )])
        .to_string(),
        "models/a.sql: model.tmp.a: Env var required but not provided: 'STRATA_TEST_SURELY_UNSET'"
    );
    assert_eq!(
        load_error(&[(
            "models/a.sql",
            "{{ config(materialized='snapshot') }}select 1"
        )])
        .to_string(),
        "models/a.sql: model.tmp.a: materialization 'snapshot' is not supported (Strata supports view, table, incremental and ephemeral)"
    );
    assert_eq!(
        load_error(&[("models/a.sql", "select 1\nfrom {{ ref('x', 'y') }}")]).to_string(),
        "models/a.sql: model.tmp.a refers to package 'x', which is neither the project ('tmp') nor an installed package (declare it in packages.yml and run strata deps)"
    );
    assert_eq!(
        load_error(&[("dbt_project.yml", "name: tmp\nmodels:\n  tmp: [\n")]).to_string(),
        "dbt_project.yml:4:1: invalid YAML: did not find expected node content, while parsing a flow node"
    );
    assert_eq!(
        load_error(&[
            ("macros/a.sql", "{% macro twice() %}{% endmacro %}"),
            ("macros/b.sql", "\n{% macro twice() %}{% endmacro %}")
        ])
        .to_string(),
        "found two macros named 'twice': macros/a.sql and macros/b.sql"
    );
    // Runtime errors name the template and line, even inside a macro.
    assert_eq!(
        load_error(&[("models/a.sql", "select 1\n{{ 'x' | no_such_filter }}")]).to_string(),
        "models/a.sql:2: error rendering model.tmp.a: unknown filter: filter no_such_filter is unknown"
    );
    assert_eq!(
        load_error(&[
            (
                "macros/m.sql",
                "{% macro boom() %}\n\n{{ no_such_function() }}\n{% endmacro %}"
            ),
            ("models/a.sql", "select {{ boom() }}")
        ])
        .to_string(),
        "macros/m.sql:3: error rendering model.tmp.a: invalid operation: value of type undefined is not callable"
    );
    assert_eq!(
        load_error(&[(
            "models/a.sql",
            "{{ exceptions.raise_compiler_error('a must not be built') }}"
        )])
        .to_string(),
        "models/a.sql: error rendering model.tmp.a: a must not be built"
    );
    let dir = temp_project(&[]);
    assert_eq!(
        load(dir.path(), Some("[1, 2]")).unwrap_err().to_string(),
        "invalid --vars: expected a mapping such as '{key: value}', got [1,2]"
    );
    assert!(matches!(
        load(&fixture("does_not_exist"), None),
        Err(ProjectError::Io { .. })
    ));
}

#[test]
fn compile_errors() {
    // A ref dbt cannot see at parse time (execute is false then).
    let dir = temp_project(&[
        ("models/a.sql", "select 1 as id"),
        (
            "models/b.sql",
            "{% if execute %}select * from {{ ref('a') }}{% else %}select 1{% endif %}",
        ),
        (
            "models/c.sql",
            "{{ config(materialized='ephemeral') }}select * from {{ ref('d') }}",
        ),
        (
            "models/d.sql",
            "{{ config(materialized='ephemeral') }}select * from {{ ref('c') }}",
        ),
        ("models/e.sql", "select * from {{ ref('c') }}"),
        (
            "models/f.sql",
            "select {% if execute %}{{ var('only_at_run_time') }}{% endif %}",
        ),
    ]);
    let p = load(dir.path(), None).unwrap();
    assert!(p.nodes["model.tmp.b"].depends_on.is_empty());
    assert_eq!(
        compile(&p, "model.tmp.b", &context(false))
            .unwrap_err()
            .to_string(),
        "models/b.sql: model.tmp.b calls ref('a'), which was not captured when the project was parsed: dbt could not infer all dependencies (a ref() inside {% if execute %}?)"
    );
    assert_eq!(
        compile(&p, "model.tmp.e", &context(false))
            .unwrap_err()
            .to_string(),
        "ephemeral models form a cycle: model.tmp.c -> model.tmp.d -> model.tmp.c"
    );
    assert_eq!(
        compile(&p, "model.tmp.f", &context(false))
            .unwrap_err()
            .to_string(),
        "models/f.sql: model.tmp.f: Required var 'only_at_run_time' not found in config (dbt_project.yml vars or --vars)"
    );
}

#[test]
fn properties_without_a_model_and_tests_on_disabled_models() {
    let schema = "version: 2
models:
  - name: ghost
    columns: [{name: id, data_tests: [unique]}]
  - name: off
    columns: [{name: id, data_tests: [unique]}]
  - name: a
    columns: [{name: id, data_tests: [{relationships: {to: ref('off'), field: id}}]}]
";
    let dir = temp_project(&[
        ("models/a.sql", "select 1 as id"),
        (
            "models/off.sql",
            "{{ config(enabled=false) }}select 1 as id",
        ),
        ("models/schema.yml", schema),
    ]);
    let p = load(dir.path(), None).unwrap();
    assert_eq!(ids(&p, Resource::Test), Vec::<&str>::new());
    assert_eq!(
        p.warnings,
        [
            "models/schema.yml: model 'ghost' has properties but no model of that name exists",
            "models/schema.yml: test.tmp.relationships_a_id__id__ref_off_ is disabled because 'off' is disabled",
        ]
    );
}

#[test]
fn jinja_compatibility() {
    let model = r#"{{ config(materialized='table', tags=['a']) }}
{%- set words = "Hello World".lower().replace("world", "there").split(" ") -%}
select '{{ var("greeting") }}' as greeting,
    '{{ words | join("-") }}' as words,
    '{{ "  padded ".strip() }}|{{ "x_y".upper() }}|{{ "abc".startswith("ab") }}' as strings,
    '{{ config.get("materialized") }}/{{ config.get("missing", "dflt") }}' as config,
    '{{ model.name }}/{{ this.identifier }}/{{ this.schema }}' as me,
    '{{ tojson({"a": [1, 2]}) }}' as json,
    '{{ {"k": "v"}.get("k") }}/{{ {"k": "v"}.get("x", "none") }}' as dict,
    '{{ ", ".join(["a", "b"]) }}' as joined,
    {{ double(21) }} as answer,
    '{{ "5" | as_number + 1 }}' as number,
    '{{ var("not_set", "fallback") }}/{{ var.has_var("greeting") }}/{{ var("not_set", none) }}' as defaults
from {{ builtins.ref('a') }}
{#- comment -#}
"#;
    let dir = temp_project(&[
        (
            "dbt_project.yml",
            "name: tmp\nvars:\n  greeting: \"hi {{ target.name }}\"\n",
        ),
        ("models/a.sql", "select 1 as id"),
        ("models/m.sql", model),
        (
            "macros/math.sql",
            "{% macro double(x) %}{{ return(x * 2) }}{% endmacro %}",
        ),
    ]);
    let p = load(dir.path(), None).unwrap();
    assert_eq!(p.nodes["model.tmp.m"].depends_on, ["model.tmp.a"]);
    assert_eq!(
        compiled(&p, "model.tmp.m"),
        r#"select 'hi dev' as greeting,
    'hello-there' as words,
    'padded|X_Y|True' as strings,
    'table/dflt' as config,
    'm/m/main' as me,
    '{"a":[1,2]}' as json,
    'v/none' as dict,
    'a, b' as joined,
    42 as answer,
    '6' as number,
    'fallback/True/None' as defaults
from main.a"#
    );
    // Lists and dicts `{% set %}` assigns as literals change in place, as in Jinja2, also
    // inside loops; other lists are values.
    let dir = temp_project(&[(
        "models/m.sql",
        "{% set xs = [] %}{% set d = {'k': 1} %}{% for i in range(3) %}{% do xs.append(i) %}{% do d.update({i: i * 2}) %}{% endfor %}\
         {% do xs.insert(0, 'first') %}select '{{ xs | join(',') }}' as xs, '{{ d.items() | list | length }}/{{ d[2] }}/{{ xs.pop() }}' as d",
    )]);
    let p = load(dir.path(), None).unwrap();
    assert_eq!(
        compiled(&p, "model.tmp.m"),
        "select 'first,0,1,2' as xs, '4/4/2' as d"
    );
    let dir = temp_project(&[(
        "models/m.sql",
        "{% set xs = [] if true else [1] %}{% do xs.append(1) %}",
    )]);
    let err = load(dir.path(), None).unwrap_err().to_string();
    assert!(err.contains("cannot be changed in place"), "{err}");
}

#[test]
fn python_datetime_and_the_invocation() {
    let model = r#"{% set dt = modules.datetime %}
{%- set d = dt.datetime(2026, 3, 1, 12, 30) -%}
{%- set td = dt.timedelta(days=1, hours=2, minutes=3, seconds=4) -%}
{%- set back = dt.datetime.fromtimestamp(d.timestamp() - td.total_seconds()) -%}
select '{{ td }}|{{ td.days }}|{{ td.seconds }}|{{ td.total_seconds() | int }}' as td,
    '{{ dt.timedelta(seconds=-1) }}|{{ dt.timedelta(0, 0, 500000) }}|{{ dt.timedelta(weeks=2) }}' as deltas,
    '{{ back }}|{{ back < d }}|{{ td > dt.timedelta(days=1) }}' as back,
    '{{ d.replace(day=2, hour=0).isoformat() }}|{{ d.date() }}|{{ d.microsecond }}' as replaced,
    '{{ flags.WHICH }}|{{ flags.FULL_REFRESH }}|{{ flags.STORE_FAILURES }}' as flags,
    '{{ invocation_id | length }}|{{ run_started_at.year >= 2026 }}|{{ run_started_at.isoformat()[-6:] }}' as run"#;
    let dir = temp_project(&[("models/m.sql", model)]);
    let p = load(dir.path(), None).unwrap();
    assert_eq!(
        compiled(&p, "model.tmp.m"),
        "select '1 day, 2:03:04|1|7384|93784' as td,
    '-1 day, 23:59:59|0:00:00.500000|14 days, 0:00:00' as deltas,
    '2026-02-28 10:26:56|True|True' as back,
    '2026-03-02T00:30:00|2026-03-01|0' as replaced,
    'run|False|False' as flags,
    '36|True|+00:00' as run"
    );

    // flags.WHICH is the command the project is loaded for.
    let target = Target {
        invocation: strata::jinja::Invocation {
            which: "build".into(),
            full_refresh: true,
            ..Default::default()
        },
        ..Target::default()
    };
    let dir = temp_project(&[(
        "models/m.sql",
        "select '{{ flags.WHICH }}/{{ flags.FULL_REFRESH }}' as f",
    )]);
    let p = load_with_target(dir.path(), None, &target).unwrap();
    let ctx = CompileContext {
        target,
        ..context(false)
    };
    assert_eq!(
        compile(&p, "model.tmp.m", &ctx).unwrap(),
        "select 'build/True' as f"
    );

    // Python's operators on dates are not minijinja's: the error says what to write instead;
    // so does a method these modules do not have.
    let err = load_error(&[(
        "models/m.sql",
        "{{ modules.datetime.datetime(2026, 1, 1) - modules.datetime.timedelta(days=1) }}",
    )])
    .to_string();
    assert!(err.contains("models/m.sql"), "{err}");
    assert!(err.contains("no + or - on datetimes"), "{err}");
    assert!(err.contains("dbt.dateadd"), "{err}");
    let err = load_error(&[(
        "models/m.sql",
        "{{ modules.datetime.datetime(2026, 1, 1).astimezone() }}",
    )])
    .to_string();
    assert!(
        err.contains("astimezone() of a datetime is not supported"),
        "{err}"
    );
}

#[test]
fn sources_are_namespaced_by_package() {
    // The root project and an installed package both declare source `shop` (as dbt allows):
    // each package's code reads its own; a source only a package declares is found from the
    // root project; the root project's declaration wins when both have it.
    let sources = |schema: &str, tables: &str| {
        format!("version: 2\nsources:\n  - name: shop\n    schema: {schema}\n    tables:{tables}\n")
    };
    let dir = temp_project(&[
        (
            "models/sources.yml",
            &sources("raw_root", "\n      - name: orders"),
        ),
        (
            "models/root_orders.sql",
            "select * from {{ source('shop', 'orders') }}",
        ),
        (
            "models/root_items.sql",
            "select * from {{ source('shop', 'items') }}",
        ),
        ("dbt_packages/pkg/dbt_project.yml", "name: pkg\n"),
        (
            "dbt_packages/pkg/models/sources.yml",
            &sources("raw_pkg", "\n      - name: orders\n      - name: items"),
        ),
        (
            "dbt_packages/pkg/models/pkg_orders.sql",
            "select * from {{ source('shop', 'orders') }}",
        ),
    ]);
    let p = load(dir.path(), None).unwrap();
    assert!(p.source_by_id("source.tmp.shop.orders").is_some());
    assert!(p.source_by_id("source.pkg.shop.orders").is_some());
    assert_eq!(
        compiled(&p, "model.tmp.root_orders"),
        "select * from raw_root.orders"
    );
    assert_eq!(
        compiled(&p, "model.tmp.root_items"),
        "select * from raw_pkg.items"
    );
    // dbt searches the root project before the node's own package.
    assert_eq!(
        compiled(&p, "model.pkg.pkg_orders"),
        "select * from raw_root.orders"
    );
    assert_eq!(
        p.nodes["model.tmp.root_items"].sources,
        [("pkg".to_string(), "shop".to_string(), "items".to_string())]
    );
}

#[test]
fn projects_compile_from_many_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Project>();
    let p = jinja();
    let all = |p: &Project| -> Vec<String> {
        p.nodes_of(Resource::Model)
            .chain(p.nodes_of(Resource::Test))
            .map(|n| compiled(p, &n.unique_id))
            .collect()
    };
    let expected = all(&p);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| all(&p))).collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), expected);
        }
    });
}

/// The compiled SQL is valid DataFusion SQL: build every model in dependency order on a
/// little data set and run every test.
#[tokio::test]
async fn compiled_sql_runs_on_datafusion() {
    use datafusion::prelude::SessionContext;

    let p = jinja();
    let df = SessionContext::new();
    let run = |sql: String| {
        let df = df.clone();
        async move {
            let batches = df
                .sql(&sql)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{sql}"))
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{e}\n{sql}"));
            batches.iter().map(|b| b.num_rows()).sum::<usize>()
        }
    };
    for schema in ["bronze", "silver", "gold", "raw"] {
        run(format!("CREATE SCHEMA {schema}")).await;
    }
    run("CREATE TABLE bronze.shop_orders (id BIGINT, customer_id BIGINT, status VARCHAR, amount_cents BIGINT, ordered_at VARCHAR) AS VALUES
        (1, 1, 'placed', 1250, '2021-01-01'), (2, 2, 'shipped', 4200, '2021-02-01'),
        (3, 9, 'returned', 300, '2021-03-01'), (4, 1, 'completed', 100, '2019-12-31')".into()).await;
    run("CREATE TABLE bronze.customers (id BIGINT, name VARCHAR, country VARCHAR) AS VALUES (1, 'Ada', 'UK'), (2, ' ', 'FR')".into()).await;
    run("CREATE TABLE raw.payments (id BIGINT, order_id BIGINT, method VARCHAR, amount_cents BIGINT) AS VALUES (1, 1, 'card', 1000), (2, 1, 'voucher', 250), (3, 2, 'card', 4200)".into()).await;

    let local_sources = |t: &SourceTable| format!("{}.{}", t.schema, t.identifier);
    let ctx = CompileContext {
        source_relation: &local_sources,
        ..context(false)
    };
    let mut built: Vec<String> = Vec::new();
    let models: Vec<&Node> = p
        .nodes_of(Resource::Model)
        .filter(|n| n.config.materialized != Materialized::Ephemeral)
        .collect();
    while built.len() < models.len() {
        for model in &models {
            let ready = model.depends_on.iter().all(|d| {
                built.contains(d)
                    || p.nodes[d].resource == Resource::Seed
                    || p.nodes[d].config.materialized == Materialized::Ephemeral
            });
            if ready && !built.contains(&model.unique_id) {
                let sql = compile(&p, &model.unique_id, &ctx).unwrap();
                run(format!("CREATE TABLE {} AS {sql}", relation(model))).await;
                built.push(model.unique_id.clone());
            }
        }
    }
    let incremental = compile(&p, "model.shop.orders_incremental", &context(true)).unwrap();
    assert_eq!(
        run(incremental).await,
        0,
        "nothing newer than what is there"
    );

    let mut failures = BTreeMap::new();
    for test in p.nodes_of(Resource::Test) {
        let sql = compile(&p, &test.unique_id, &ctx).unwrap();
        let failing = run(sql).await;
        if failing > 0 {
            failures.insert(test.name.as_str(), failing);
        }
    }
    assert_eq!(
        failures,
        BTreeMap::from([
            // 'returned'
            (
                "accepted_values_stg_orders_status__placed__shipped__completed",
                1
            ),
            // 12.5 and 42.0
            ("amount_is_small_integer", 2),
            // ' '
            ("not_empty_string_stg_customers_name", 1),
        ])
    );
    assert_eq!(run("SELECT * FROM gold.fct_orders".into()).await, 2);
}
