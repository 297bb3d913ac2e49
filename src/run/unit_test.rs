//! Running a dbt unit test: the model's SQL compiled with each input (`ref`, `source`, `this`)
//! replaced by an in-memory table of the given rows, run in a session of its own that sees no
//! lake table, and its rows compared with the expected ones (as multisets, on the expected
//! columns), with dbt's row diff when they differ. Given rows are typed like the real input
//! where it exists; an input not given is an error, but for a seed, which is read from its CSV.
//! A given ephemeral model's rows replace its CTE; `overrides` set what `var`, `env_var` and
//! the overridden macros answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList, SchemaProvider};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionContext, ident};

use super::fixture::{self, FixtureError, Typing};
use super::materialize::seed_frame;
use super::nodes::{column_types, relation_of, relation_sql, source_sql};
use crate::compile::{self, CompileContext};
use crate::project::{Materialized, Node, Project, Resource, SourceTable, UnitInput, UnitTest};
use crate::session::CATALOG;

/// The schema the given inputs are registered in.
const INPUTS: &str = "dbt_unit_inputs";

#[derive(Debug, thiserror::Error)]
pub enum UnitTestError {
    #[error("given {input}: it is not an input of model '{model}'")]
    NotAnInput { input: String, model: String },
    #[error(
        "model '{model}' reads {input}, which the unit test does not give (give it, with `rows: []` if empty)"
    )]
    Missing { input: String, model: String },
    #[error("given {input}: {source}")]
    Given {
        input: String,
        #[source]
        source: FixtureError,
    },
    #[error("expect: {0}")]
    Expect(#[source] FixtureError),
    #[error("overrides.macros.{0}: no macro of that name in the project, its packages or dbt's")]
    UnknownMacro(String),
    #[error(transparent)]
    Compile(#[from] compile::CompileError),
    #[error("running model '{model}' on the given rows: {source}")]
    Run {
        model: String,
        #[source]
        source: DataFusionError,
    },
}

/// The outcome: `None` when the model returned the expected rows, else dbt's diff and how
/// many rows differ.
pub async fn run(
    ctx: &SessionContext,
    project: &Project,
    unit: &UnitTest,
) -> Result<Option<(usize, String)>, UnitTestError> {
    let model = &project.nodes[&unit.model];
    if let Some(name) = unit.macros.keys().find(|k| !is_macro(project, k)) {
        return Err(UnitTestError::UnknownMacro(name.clone()));
    }
    let inputs = Arc::new(MemorySchemaProvider::new());
    let session = isolated(ctx, Arc::clone(&inputs));
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (i, given) in unit.given.iter().enumerate() {
        let key = input_key(project, model, &given.input)?;
        let real = real_schema(ctx, project, &key).await;
        let typing = match &real {
            Some(schema) => Typing::Input(schema),
            None => Typing::Inferred,
        };
        let failed = |source| UnitTestError::Given {
            input: given.input.to_string(),
            source,
        };
        let frame = fixture::frame(&session, &given.rows, typing)
            .await
            .map_err(failed)?;
        let name = format!("input_{i}");
        register(&inputs, &name, frame)
            .await
            .map_err(|e| failed(e.into()))?;
        names.insert(key, name);
    }
    // Seeds not given are read as they are (dbt's rule); any other input must be given.
    for dep in model.depends_on.iter().filter_map(|d| project.nodes.get(d)) {
        // An ephemeral model is inlined, reading the inputs given for it.
        if names.contains_key(&dep.unique_id) || dep.config.materialized == Materialized::Ephemeral
        {
            continue;
        }
        if dep.resource != Resource::Seed {
            return Err(UnitTestError::Missing {
                input: format!("ref('{}')", dep.name),
                model: model.name.clone(),
            });
        }
        let csv = project.root.join(&dep.path);
        let seed = |source: DataFusionError| UnitTestError::Given {
            input: format!("ref('{}')", dep.name),
            source: source.into(),
        };
        let frame = seed_frame(&session, &csv, &column_types(dep))
            .await
            .map_err(seed)?;
        let name = format!("seed_{}", dep.name);
        register(&inputs, &name, frame).await.map_err(seed)?;
        names.insert(dep.unique_id.clone(), name);
    }
    for key in &model.sources {
        if let Some(table) = project.sources.get(key)
            && !names.contains_key(&table.unique_id)
        {
            return Err(UnitTestError::Missing {
                input: format!("source('{}', '{}')", table.source_name, table.name),
                model: model.name.clone(),
            });
        }
    }

    let sql = compile_on_inputs(project, unit, &names)?;
    let ran = |source| UnitTestError::Run {
        model: model.name.clone(),
        source,
    };
    let actual = session.sql(&sql).await.map_err(ran)?;
    let schema = actual.schema().as_arrow().clone();
    let expected = fixture::frame(&session, &unit.expect, Typing::Columns(&schema))
        .await
        .map_err(UnitTestError::Expect)?;
    // The expected columns, in the model's order.
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|name| expected.schema().has_column_with_unqualified_name(name))
        .collect();
    // Expecting no rows names no columns: only the number of rows is compared.
    let actual = if columns.is_empty() {
        vec![Vec::new(); actual.count().await.map_err(ran)?]
    } else {
        let actual = actual.select(idents(&columns)).map_err(ran)?;
        rows(actual.collect().await.map_err(ran)?).map_err(ran)?
    };
    let expected = if columns.is_empty() {
        expected
    } else {
        expected.select(idents(&columns)).map_err(ran)?
    };
    let expected = rows(expected.collect().await.map_err(ran)?).map_err(ran)?;
    Ok(diff(&columns, &expected, &actual))
}

/// The model's SQL with each input spelled as its in-memory table (`names`, by unique id).
fn compile_on_inputs(
    project: &Project,
    unit: &UnitTest,
    names: &BTreeMap<String, String>,
) -> Result<String, UnitTestError> {
    let spelled = |id: &str| names.get(id).map(|n| format!("{INPUTS}.{n}"));
    let relation =
        |n: &Node| spelled(&n.unique_id).unwrap_or_else(|| relation_sql(&relation_of(n)));
    let source_relation = |s: &SourceTable| spelled(&s.unique_id).unwrap_or_else(|| source_sql(s));
    let compile_ctx = CompileContext {
        is_incremental: unit.is_incremental,
        target: project.target.clone(),
        relation: &relation,
        source_relation: &source_relation,
        warehouse: None,
    };
    // A given ephemeral model is its rows: the fixture replaces its CTE.
    let ephemerals = names
        .iter()
        .filter(|(id, _)| {
            project
                .nodes
                .get(*id)
                .is_some_and(|n| n.config.materialized == Materialized::Ephemeral)
        })
        .map(|(id, name)| (id.clone(), format!("select * from {INPUTS}.{name}")))
        .collect();
    let overrides = compile::Overrides {
        vars: unit.vars.clone(),
        env_vars: unit.env_vars.clone(),
        macros: unit.macros.clone(),
        ephemerals,
    };
    let sql = compile::compile_with(project, &unit.model, &compile_ctx, &overrides)?;
    Ok(crate::sql::rewrite::named_args_in_text(&sql).into_owned())
}

/// Whether `key` (`name` or `package.name`) names a macro a call could reach.
fn is_macro(project: &Project, key: &str) -> bool {
    let macros = &project.shared.macros;
    match key.split_once('.') {
        Some((package, name)) => macros.get(package, name).is_some(),
        None => macros.names().contains(key),
    }
}

/// The unique id of the node or source an input stands for (`this`: the model).
fn input_key(project: &Project, model: &Node, input: &UnitInput) -> Result<String, UnitTestError> {
    let found = match input {
        UnitInput::This => Some(model.unique_id.clone()),
        UnitInput::Ref { package, name } => model
            .depends_on
            .iter()
            .filter_map(|d| project.nodes.get(d))
            .find(|n| &n.name == name && package.as_ref().is_none_or(|p| p == &n.package))
            .map(|n| n.unique_id.clone()),
        UnitInput::Source { source, table } => model
            .sources
            .iter()
            .filter(|(_, s, t)| s == source && t == table)
            .find_map(|key| project.sources.get(key))
            .map(|s| s.unique_id.clone()),
    };
    found.ok_or_else(|| UnitTestError::NotAnInput {
        input: input.to_string(),
        model: model.name.clone(),
    })
}

/// The schema of the relation an input stands for, if it can be read now (built, or a source).
async fn real_schema(
    ctx: &SessionContext,
    project: &Project,
    key: &str,
) -> Option<arrow::datatypes::Schema> {
    let spelled = match project.nodes.get(key) {
        Some(node) => relation_sql(&relation_of(node)),
        None => source_sql(project.source_by_id(key)?),
    };
    let plan = ctx
        .state()
        .create_logical_plan(&format!("select * from {spelled}"))
        .await
        .ok()?;
    Some(plan.schema().as_arrow().clone())
}

/// A session with `ctx`'s functions and settings whose only tables are `inputs`.
fn isolated(ctx: &SessionContext, inputs: Arc<MemorySchemaProvider>) -> SessionContext {
    let catalog = MemoryCatalogProvider::new();
    catalog
        .register_schema(INPUTS, inputs as Arc<dyn SchemaProvider>)
        .expect("a memory catalog takes any schema");
    let catalogs = MemoryCatalogProviderList::new();
    catalogs.register_catalog(
        CATALOG.to_string(),
        Arc::new(catalog) as Arc<dyn CatalogProvider>,
    );
    let state = SessionStateBuilder::new_from_existing(ctx.state())
        .with_catalog_list(Arc::new(catalogs) as Arc<dyn CatalogProviderList>)
        .build();
    SessionContext::new_with_state(state)
}

/// Runs `frame` and keeps its rows as the in-memory table `name`.
async fn register(
    inputs: &MemorySchemaProvider,
    name: &str,
    frame: DataFrame,
) -> Result<(), DataFusionError> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    let table = MemTable::try_new(schema, vec![batches])?;
    inputs.register_table(name.to_string(), Arc::new(table))?;
    Ok(())
}

fn idents(columns: &[String]) -> Vec<datafusion::prelude::Expr> {
    columns.iter().map(ident).collect()
}

/// Each row's values as text (`null` for nulls).
fn rows(batches: Vec<RecordBatch>) -> Result<Vec<Vec<String>>, DataFusionError> {
    let options = FormatOptions::default().with_null("null");
    let mut out = Vec::new();
    for batch in &batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// `None` when `actual` holds the `expected` rows (in any order), else how many rows differ
/// and dbt's diff: `---` an expected row the model did not return, `+++` a row it returned
/// that was not expected, blank the rows both have.
fn diff(
    columns: &[String],
    expected: &[Vec<String>],
    actual: &[Vec<String>],
) -> Option<(usize, String)> {
    let mut unmatched: Vec<&Vec<String>> = actual.iter().collect();
    let mut lines: Vec<(&str, &Vec<String>)> = Vec::new();
    for row in expected {
        match unmatched.iter().position(|a| *a == row) {
            Some(at) => {
                unmatched.remove(at);
                lines.push(("", row));
            }
            None => lines.push(("---", row)),
        }
    }
    let differing = lines.iter().filter(|(m, _)| !m.is_empty()).count() + unmatched.len();
    if differing == 0 {
        return None;
    }
    lines.extend(unmatched.into_iter().map(|row| ("+++", row)));
    let header = ("@@", columns.to_vec());
    let mut widths: Vec<usize> = columns.iter().map(String::len).collect();
    for (_, row) in &lines {
        for (w, value) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(value.len());
        }
    }
    let line = |marker: &str, row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        format!("{marker:<3} | {}", cells.join(" | "))
            .trim_end()
            .to_string()
    };
    let mut text = String::from("actual differs from expected:\n\n");
    text.push_str(&line(header.0, &header.1));
    for (marker, row) in lines {
        text.push('\n');
        text.push_str(&line(marker, row));
    }
    Some((differing, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn rows_compare_as_multisets_with_a_diff() {
        let columns = ["id".to_string(), "name".to_string()];
        let expected = rows(&[&["1", "ann"], &["2", "bob"]]);
        assert!(diff(&columns, &expected, &rows(&[&["2", "bob"], &["1", "ann"]])).is_none());
        let (n, text) = diff(&columns, &expected, &rows(&[&["1", "ann"], &["2", "rob"]])).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            text,
            "actual differs from expected:\n\n@@  | id | name\n    | 1  | ann\n--- | 2  | bob\n+++ | 2  | rob"
        );
        let (n, _) = diff(
            &columns,
            &expected,
            &rows(&[&["1", "ann"], &["1", "ann"], &["2", "bob"]]),
        )
        .unwrap();
        assert_eq!(n, 1);
    }
}
