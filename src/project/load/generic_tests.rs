//! Generic tests: each `tests:`/`data_tests:` entry on a model, seed, source or column in the
//! properties files becomes a test node calling its test macro (`not_null`, a project's
//! `{% test %}`), named as dbt names it; its arguments are evaluated in parse mode to capture
//! `ref`s.

use std::path::Path;

use serde_json::Value as Json;

use super::Loader;
use super::render::render_error;
use super::resolve::{Pending, closest};
use crate::jinja::config_call::merge_config;
use crate::jinja::context::JinjaRelation;
use crate::jinja::{call_macro, eval_test_arg, run_in_frame};
use crate::project::schema::{ColumnDef, Properties, parse_test, test_entries, test_name};
use crate::project::{ProjectError, Resource, TestInfo, TestKind};
use minijinja::Value;
use minijinja::value::Kwargs;

/// What a generic test is attached to.
enum TestTarget {
    Node { unique_id: String, name: String },
    Source { source: String, table: String },
}

impl Loader {
    pub(super) fn generic_tests(&mut self, props: &Properties) -> Result<(), ProjectError> {
        for (resource, patches) in [
            (Resource::Model, &props.models),
            (Resource::Seed, &props.seeds),
            (Resource::Snapshot, &props.snapshots),
        ] {
            for (name, patch) in patches {
                let kind = resource.as_str();
                let attached = self
                    .named(name)
                    .filter(|id| self.nodes[*id].resource == resource)
                    .cloned();
                let Some(unique_id) = attached else {
                    if !self.disabled.contains_key(name) {
                        self.warnings.push(format!(
                            "{}: {kind} '{name}' has properties but no {kind} of that name exists",
                            patch.path.display()
                        ));
                    }
                    continue;
                };
                let target = || TestTarget::Node {
                    unique_id: unique_id.clone(),
                    name: name.clone(),
                };
                let what = format!("{kind} '{name}'");
                let def = &patch.def;
                let tests = (&def.tests, &def.data_tests);
                self.generic_tests_on(&target, &what, tests, def.columns.as_ref(), &patch.path)?;
            }
        }
        for patch in &props.sources {
            let def = &patch.def;
            for table in def.tables.iter().flatten() {
                let key = (self.name.clone(), def.name.clone(), table.name.clone());
                if !self.sources.contains_key(&key) {
                    continue;
                }
                let target = || TestTarget::Source {
                    source: def.name.clone(),
                    table: table.name.clone(),
                };
                let what = format!("source '{}', table '{}'", def.name, table.name);
                let tests = (&table.tests, &table.data_tests);
                self.generic_tests_on(&target, &what, tests, table.columns.as_ref(), &patch.path)?;
            }
        }
        Ok(())
    }

    /// The generic tests of one model, seed or source table (`what` names it) and of its
    /// columns, declared in the properties file `path`.
    fn generic_tests_on(
        &mut self,
        target: &dyn Fn() -> TestTarget,
        what: &str,
        (tests, data_tests): (&Option<Vec<Json>>, &Option<Vec<Json>>),
        columns: Option<&Vec<ColumnDef>>,
        path: &Path,
    ) -> Result<(), ProjectError> {
        let invalid = |message| ProjectError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        for entry in test_entries(tests, data_tests, what).map_err(invalid)? {
            self.generic_test(target(), None, entry, path)?;
        }
        for column in columns.into_iter().flatten() {
            let what = format!("{what}, column '{}'", column.name);
            for entry in test_entries(&column.tests, &column.data_tests, &what).map_err(invalid)? {
                self.generic_test(target(), Some(column), entry, path)?;
            }
        }
        Ok(())
    }

    fn generic_test(
        &mut self,
        target: TestTarget,
        column: Option<&ColumnDef>,
        entry: &Json,
        path: &Path,
    ) -> Result<(), ProjectError> {
        let (subject, target_name, on_source) = match &target {
            TestTarget::Node { unique_id, name } => (unique_id.clone(), name.clone(), false),
            TestTarget::Source { source, table } => (
                format!("source.{}.{source}.{table}", self.name),
                format!("{source}_{table}"),
                true,
            ),
        };
        let spec = parse_test(entry).map_err(|message| ProjectError::Invalid {
            path: path.to_path_buf(),
            message: match column {
                Some(c) => format!("{subject}, column '{}': {message}", c.name),
                None => format!("{subject}: {message}"),
            },
        })?;
        let full_test_name = match &spec.namespace {
            Some(ns) => format!("{ns}.{}", spec.test_name),
            None => spec.test_name.clone(),
        };
        // `package.test` names that package's test; a bare name resolves as a bare macro call
        // from this package does (its own, the root project's, then the built-in ones).
        let macro_name = format!("test_{}", spec.test_name);
        let macros = &self.shared.macros;
        let found = match &spec.namespace {
            Some(ns) => macros.get(ns, &macro_name),
            None => macros.resolve(&macro_name, &self.name),
        };
        let Some(test_macro) = found.cloned() else {
            let root = self.root_name.as_str();
            let known: Vec<String> = macros
                .packages
                .iter()
                .flat_map(|(p, m)| {
                    m.keys().filter_map(move |k| {
                        k.strip_prefix("test_").map(|t| {
                            if p == root || p == crate::jinja::GLOBAL_PROJECT {
                                t.to_string()
                            } else {
                                format!("{p}.{t}")
                            }
                        })
                    })
                })
                .collect();
            return Err(ProjectError::UnknownTest {
                path: path.to_path_buf(),
                node: subject,
                test: full_test_name.clone(),
                suggestion: closest(&full_test_name, known.iter().map(String::as_str)),
            });
        };
        let column_name = spec.column_name.clone().or_else(|| {
            column.map(|c| {
                if c.quote == Some(true) {
                    format!("\"{}\"", c.name)
                } else {
                    c.name.clone()
                }
            })
        });
        let mut name_args = spec.args.clone();
        if let Some(column_name) = &column_name {
            name_args.insert("column_name".into(), Json::String(column_name.clone()));
        }
        let test_type = match &spec.namespace {
            Some(ns) => format!("{ns}_{}", spec.test_name),
            None => spec.test_name.clone(),
        };
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| test_name(&test_type, &target_name, &name_args, on_source));
        let dirs = self.property_dirs.get(path).cloned().unwrap_or_default();
        let fqn = self.fqn(dirs, &name);
        let mut unique_id = format!("test.{}.{name}", self.name);
        let mut n = 2;
        while self.nodes.contains_key(&unique_id) {
            unique_id = format!("test.{}.{name}_{n}", self.name);
            n += 1;
        }
        let mut raw = self.folder_configs(|f| f.test_configs(), &fqn);
        merge_config(
            &mut raw,
            &self.rendered_config(&spec.config, path, &unique_id)?,
        );
        if !self.enabled(&raw, path, &unique_id)? {
            return Ok(());
        }

        // Evaluate the arguments in parse mode to capture `ref`s (`to: ref('customers')`).
        let frame = self.node_frame(&unique_id, &name, Resource::Test, path, &fqn, &raw);
        let ctx = frame.ctx.clone();
        let mut kwargs = run_in_frame(frame.clone(), || {
            let mut kwargs = Vec::new();
            for (key, arg) in &spec.args {
                kwargs.push((key.clone(), eval_test_arg(&self.env, &ctx, arg)?));
            }
            Ok(kwargs)
        })
        .map_err(|f| render_error(path, &unique_id, f))?;
        // As dbt does, the test macro is rendered at parse time too, for the `config()` it
        // sets (`fail_calc`, `severity`, ...), which the properties file's config overrides.
        // A macro that cannot render before its inputs exist is rendered when compiled.
        kwargs.push((
            "model".into(),
            JinjaRelation {
                rendered: target_name.clone(),
                database: None,
                schema: None,
                identifier: target_name.clone(),
            }
            .value(),
        ));
        if let Some(column) = &column_name {
            kwargs.push(("column_name".into(), Value::from(column.clone())));
        }
        let kwargs: Kwargs = kwargs.into_iter().collect();
        let rendered = run_in_frame(frame.clone(), || {
            call_macro(&self.env, &test_macro, &[Value::from(kwargs)])
        });
        if rendered.is_ok() {
            let mut merged = frame.captured_config.take();
            merge_config(&mut merged, &raw);
            raw = merged;
        }

        let call = match &spec.namespace {
            Some(ns) => format!("{ns}.{macro_name}"),
            None => macro_name.clone(),
        };
        let raw_code = format!("{{{{ {call}(**_dbt_generic_test_kwargs) }}}}");
        let mut node = self.make_node(
            unique_id.clone(),
            name,
            Resource::Test,
            path.to_path_buf(),
            fqn,
            raw_code,
            &raw,
            None,
        )?;
        node.description = spec.description.clone().unwrap_or_default();
        node.patch_path = Some(path.to_path_buf());
        match &target {
            TestTarget::Node { unique_id, .. } => node.depends_on.push(unique_id.clone()),
            TestTarget::Source { source, table } => {
                // A source test belongs to the package declaring the source.
                let key = (self.name.clone(), source.clone(), table.clone());
                node.sources.push(key);
            }
        }
        node.test = Some(TestInfo {
            kind: TestKind::Generic {
                name: spec.test_name.clone(),
                package: test_macro.package.clone(),
                column: column_name,
                args: spec.args.clone(),
            },
            attached_node: Some(subject),
        });
        self.nodes.insert(unique_id.clone(), node);
        self.pending.push(Pending {
            unique_id,
            refs: frame.refs.take(),
            sources: frame.sources.take(),
        });
        Ok(())
    }
}
