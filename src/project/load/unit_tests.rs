//! Unit tests (dbt ≥ 1.8): each `unit_tests:` entry of a properties file becomes a test node of
//! the model it names (`unit_test.<project>.<model>.<name>`), with its given inputs and
//! expected rows read (fixture files from `<test path>/fixtures/` included), so that running it
//! needs nothing but the model's SQL.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map as JsonMap, Value as Json};

use super::Loader;
use crate::project::files::SourceFile;
use crate::project::node_config::{boolish, build_node_config, normalize_map};
use crate::project::schema::{FixtureDef, Patch, Properties, UnitTestDef};
use crate::project::unsupported::Unsupported;
use crate::project::{
    Fixture, Node, ProjectError, Resource, TestInfo, TestKind, UnitGiven, UnitInput, UnitTest,
};

/// What a unit test does without a key Strata does not apply.
const EFFECT: &str = "the unit test runs without it";

impl Loader {
    /// The unit tests of `props`, whose fixture files are among `fixtures`.
    pub(super) fn unit_tests(
        &mut self,
        props: &Properties,
        fixtures: &[SourceFile],
    ) -> Result<(), ProjectError> {
        for patch in &props.unit_tests {
            self.unit_test(patch, fixtures)?;
        }
        Ok(())
    }

    fn unit_test(
        &mut self,
        patch: &Patch<UnitTestDef>,
        fixtures: &[SourceFile],
    ) -> Result<(), ProjectError> {
        let def = &patch.def;
        let path = &patch.path;
        let what = format!("unit test '{}'", def.name);
        let invalid = |message: String| ProjectError::Invalid {
            path: path.clone(),
            message: format!("{what}: {message}"),
        };
        let raw = normalize_map(&def.config.clone().unwrap_or_default());
        let (mut config, _) = build_node_config(Resource::Test, &raw).map_err(&invalid)?;
        if !config.enabled {
            return Ok(());
        }
        let model = self
            .named(&def.model)
            .filter(|id| self.nodes[*id].resource == Resource::Model)
            .cloned();
        let Some(model) = model else {
            if self.disabled.contains_key(&def.model) {
                self.warnings.push(format!(
                    "{}: {what} is skipped: model '{}' is disabled",
                    path.display(),
                    def.model
                ));
                return Ok(());
            }
            return Err(invalid(format!(
                "it tests model '{}', which is not in the project",
                def.model
            )));
        };
        for key in def.other.keys() {
            self.unsupported(path, &what, key);
        }
        for key in config.extra.keys().cloned().collect::<Vec<_>>() {
            self.unsupported(path, &what, &format!("config.{key}"));
        }
        config.extra.clear();
        config.schema = self.nodes[&model].config.schema.clone();
        let overrides = def.overrides.clone().unwrap_or_default();
        let mut is_incremental = false;
        let mut macros = BTreeMap::new();
        for (name, value) in overrides.macros.iter().flatten() {
            match name.as_str() {
                "is_incremental" => {
                    is_incremental =
                        boolish(value, "overrides.macros.is_incremental").map_err(&invalid)?;
                }
                _ => {
                    macros.insert(name.clone(), value.clone());
                }
            }
        }
        // Environment variables are text (dbt reads a YAML number as its digits).
        let env_vars = overrides
            .env_vars
            .iter()
            .flatten()
            .map(|(name, value)| match value {
                Json::String(text) => Ok((name.clone(), text.clone())),
                Json::Number(_) | Json::Bool(_) => Ok((name.clone(), value.to_string())),
                other => Err(invalid(format!(
                    "overrides.env_vars.{name} must be text, got {other}"
                ))),
            })
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let mut given = Vec::new();
        for input in &def.given {
            let text = input
                .input
                .as_deref()
                .ok_or_else(|| invalid("every given needs an 'input'".into()))?;
            let parsed = parse_input(text).map_err(&invalid)?;
            let rows =
                fixture(input, fixtures).map_err(|m| invalid(format!("given {text}: {m}")))?;
            given.push(UnitGiven {
                input: parsed,
                rows,
            });
        }
        let expect = fixture(&def.expect, fixtures).map_err(|m| invalid(format!("expect: {m}")))?;
        let dirs = self.property_dirs.get(path).cloned().unwrap_or_default();
        let model_name = self.nodes[&model].name.clone();
        let node = Node {
            unique_id: format!("unit_test.{}.{model_name}.{}", self.name, def.name),
            name: def.name.clone(),
            resource: Resource::Test,
            package: self.name.clone(),
            path: path.clone(),
            fqn: self.fqn(dirs, &def.name),
            raw_code: String::new(),
            config,
            depends_on: vec![model.clone()],
            sources: Vec::new(),
            description: def.description.clone().unwrap_or_default(),
            columns: Vec::new(),
            constraints: Vec::new(),
            patch_path: Some(path.clone()),
            test: Some(TestInfo {
                kind: TestKind::Unit(UnitTest {
                    model: model.clone(),
                    given,
                    expect,
                    vars: overrides.vars.unwrap_or_default().into_iter().collect(),
                    is_incremental,
                    macros,
                    env_vars,
                }),
                attached_node: Some(model),
            }),
        };
        if let Some(other) = self.nodes.get(&node.unique_id) {
            return Err(ProjectError::Duplicate {
                kind: "unit test",
                name: def.name.clone(),
                first: other.path.clone(),
                second: path.clone(),
            });
        }
        self.nodes.insert(node.unique_id.clone(), node);
        Ok(())
    }

    fn unsupported(&mut self, path: &Path, what: &str, key: &str) {
        self.unsupported.push(Unsupported {
            path: path.to_path_buf(),
            node: what.to_string(),
            key: key.to_string(),
            effect: EFFECT.to_string(),
        });
    }
}

/// `ref('x')`, `ref('package', 'x')`, `source('a', 'b')` or `this`, as dbt writes an input.
pub(crate) fn parse_input(text: &str) -> Result<UnitInput, String> {
    let text = text.trim();
    if text == "this" {
        return Ok(UnitInput::This);
    }
    let bad = || {
        format!(
            "input '{text}' must be ref('model'), ref('package', 'model'), source('source', 'table') or this"
        )
    };
    let (function, rest) = text.split_once('(').ok_or_else(bad)?;
    let args = rest.trim_end().strip_suffix(')').ok_or_else(bad)?;
    let args: Vec<String> = args
        .split(',')
        .map(|a| {
            let a = a.trim();
            let quoted = (a.starts_with('\'') && a.ends_with('\''))
                || (a.starts_with('"') && a.ends_with('"'));
            (quoted && a.len() >= 2).then(|| a[1..a.len() - 1].to_string())
        })
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    match (function.trim(), args.as_slice()) {
        ("ref", [name]) => Ok(UnitInput::Ref {
            package: None,
            name: name.clone(),
        }),
        ("ref", [package, name]) => Ok(UnitInput::Ref {
            package: Some(package.clone()),
            name: name.clone(),
        }),
        ("source", [source, table]) => Ok(UnitInput::Source {
            source: source.clone(),
            table: table.clone(),
        }),
        _ => Err(bad()),
    }
}

/// The rows of a given or an expect, in its `format` (`dict`, `csv` or `sql`), inline or from
/// a fixture file of that format's extension.
fn fixture(def: &FixtureDef, fixtures: &[SourceFile]) -> Result<Fixture, String> {
    let format = def
        .format
        .as_deref()
        .unwrap_or("dict")
        .trim()
        .to_ascii_lowercase();
    let extension = match format.as_str() {
        "dict" => None,
        "csv" => Some("csv"),
        "sql" => Some("sql"),
        other => return Err(format!("format '{other}' is not one of dict, csv, sql")),
    };
    let text = match (&def.rows, &def.fixture, extension) {
        (Some(_), Some(_), _) => return Err("give either 'rows' or 'fixture', not both".into()),
        (_, Some(_), None) => return Err("a fixture file needs format csv or sql".into()),
        (None, Some(name), Some(ext)) => {
            let file = fixtures
                .iter()
                .find(|f| f.stem() == *name && f.rel.extension().is_some_and(|e| e == ext))
                .ok_or_else(|| format!("no fixture file '{name}.{ext}' under tests/fixtures"))?;
            file.text.clone()
        }
        (Some(Json::String(text)), None, Some(_)) => text.clone(),
        (None, None, Some(_)) => String::new(),
        (Some(other), None, Some(_)) => {
            return Err(format!(
                "format {format} takes its rows as text, got {other}"
            ));
        }
        (rows, None, None) => return dict_rows(rows.as_ref()).map(Fixture::Rows),
    };
    Ok(match format.as_str() {
        "csv" => Fixture::Csv(text),
        _ => Fixture::Sql(text),
    })
}

fn dict_rows(rows: Option<&Json>) -> Result<Vec<JsonMap<String, Json>>, String> {
    match rows {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|row| match row {
                Json::Object(map) => Ok(map.clone()),
                other => Err(format!(
                    "each row must be a mapping of column to value, got {other}"
                )),
            })
            .collect(),
        Some(other) => Err(format!("rows must be a list of mappings, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_as_dbt_writes_them() {
        assert_eq!(
            parse_input("ref('stg_orders')").unwrap(),
            UnitInput::Ref {
                package: None,
                name: "stg_orders".into()
            }
        );
        assert_eq!(
            parse_input(" ref(\"pkg\", 'x') ").unwrap(),
            UnitInput::Ref {
                package: Some("pkg".into()),
                name: "x".into()
            }
        );
        assert_eq!(
            parse_input("source('shop', 'orders')").unwrap(),
            UnitInput::Source {
                source: "shop".into(),
                table: "orders".into()
            }
        );
        assert_eq!(parse_input("this").unwrap(), UnitInput::This);
        assert!(parse_input("orders").is_err());
        assert!(parse_input("ref(orders)").is_err());
    }
}
