//! What `dbt_project.yml` gives before any node is read: its vars merged with `--vars`, and
//! the Jinja in its config trees rendered.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::Value;
use serde_json::{Map as JsonMap, Value as Json};

use super::render::{render_error, render_json};
use crate::jinja::context::template_context;
use crate::jinja::{Shared, Target, new_env};
use crate::project::ProjectError;
use crate::project::files::{PROJECT_FILE, ProjectFile};

pub(super) fn parse_cli_vars(text: Option<&str>) -> Result<JsonMap<String, Json>, ProjectError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(JsonMap::new());
    };
    let value: Json = serde_norway::from_str(text).map_err(|e| ProjectError::CliVars {
        message: e.to_string(),
    })?;
    match value {
        Json::Object(map) => Ok(map),
        Json::Null => Ok(JsonMap::new()),
        other => Err(ProjectError::CliVars {
            message: format!("expected a mapping such as '{{key: value}}', got {other}"),
        }),
    }
}

/// Global vars, then the ones scoped under the project's name, then `--vars`.
pub(super) fn merge_vars(
    project: &str,
    section: Option<&JsonMap<String, Json>>,
    cli: &JsonMap<String, Json>,
) -> BTreeMap<String, Json> {
    let mut vars = BTreeMap::new();
    if let Some(section) = section {
        for (key, value) in section {
            if key == project && value.is_object() {
                continue;
            }
            vars.insert(key.clone(), value.clone());
        }
        if let Some(Json::Object(scoped)) = section.get(project) {
            for (key, value) in scoped {
                vars.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in cli {
        vars.insert(key.clone(), value.clone());
    }
    vars
}

/// Renders the Jinja in `dbt_project.yml`'s config trees (`env_var`, `var` from `--vars`,
/// `target`); hooks are left for run time.
pub(super) fn render_project_configs(
    file: &mut ProjectFile,
    cli: &JsonMap<String, Json>,
    target: &Target,
) -> Result<(), ProjectError> {
    let trees = [
        &mut file.models,
        &mut file.seeds,
        &mut file.data_tests,
        &mut file.tests,
    ];
    if !trees.iter().any(|t| {
        t.as_ref()
            .is_some_and(|t| t.to_string().contains("{{") || t.to_string().contains("{%"))
    }) {
        return Ok(());
    }
    let shared = Arc::new(Shared {
        project_name: file.name.clone(),
        vars: cli.clone().into_iter().collect(),
        ..Shared::default()
    });
    let env = new_env(shared);
    let ctx = template_context(&file.name, target, false, Value::from(()), Value::from(()));
    for tree in trees.into_iter().flatten() {
        render_json(&env, PROJECT_FILE, &ctx, tree, &|key| {
            key.ends_with("pre-hook") || key.ends_with("post-hook") || key.ends_with("_hook")
        })
        .map_err(|f| render_error(Path::new(PROJECT_FILE), PROJECT_FILE, f))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn vars_are_scoped() {
        let section = json!({"a": 1, "b": 2, "shop": {"b": 3, "c": 4}, "other_pkg": {"x": 1}});
        let cli = json!({"c": 5}).as_object().unwrap().clone();
        let vars = merge_vars("shop", section.as_object(), &cli);
        assert_eq!(
            serde_json::to_value(&vars).unwrap(),
            json!({"a": 1, "b": 3, "c": 5, "other_pkg": {"x": 1}})
        );
        assert!(parse_cli_vars(Some("[1]")).is_err());
        assert_eq!(parse_cli_vars(Some("{\"a\": 1}")).unwrap()["a"], json!(1));
        assert_eq!(parse_cli_vars(Some("a: x")).unwrap()["a"], json!("x"));
    }
}
