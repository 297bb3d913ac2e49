//! Building a node: the config layers a file's node starts from (folder configs, properties
//! entry), then from the merged layers its typed config, its schema and alias (the project's
//! `generate_schema_name`/`generate_alias_name` if it defines them) and the description and
//! columns its properties file gives.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::Value;
use serde_json::{Map as JsonMap, Value as Json};

use super::{Loader, string_list};
use crate::jinja::config_call::merge_config;
use crate::project::files::{ProjectFile, SourceFile};
use crate::project::node_config::build_node_config;
use crate::project::schema::{ColumnDef, Patch, ResourcePatch};
use crate::project::unsupported::{Unsupported, config_effect, config_key};
use crate::project::{ColumnDoc, Node, ProjectError, Resource};

/// What a node read from a file starts from.
pub(super) struct FileNode<'p> {
    pub name: String,
    pub fqn: Vec<String>,
    pub unique_id: String,
    /// Its config from the folder configs, then its properties entry.
    pub raw: JsonMap<String, Json>,
    /// Its properties entry, if it has one.
    pub patch: Option<&'p Patch<ResourcePatch>>,
}

impl Loader {
    /// The name, fqn, unique id and config layers so far of the `resource` in `file`; its
    /// properties entry is looked up by name in `patches`.
    pub(super) fn file_node<'p>(
        &self,
        file: &SourceFile,
        resource: Resource,
        patches: Option<&'p BTreeMap<String, Patch<ResourcePatch>>>,
    ) -> Result<FileNode<'p>, ProjectError> {
        let name = file.stem();
        let fqn = self.fqn(file.dirs(), &name);
        let unique_id = format!("{}.{}.{name}", resource.as_str(), self.name);
        let tree: fn(&ProjectFile) -> Option<&Json> = match resource {
            Resource::Model => |f| f.models.as_ref(),
            Resource::Seed => |f| f.seeds.as_ref(),
            Resource::Test => |f| f.test_configs(),
            Resource::Snapshot => |f| f.snapshots.as_ref(),
        };
        let mut raw = self.folder_configs(tree, &fqn);
        let patch = patches.and_then(|patches| patches.get(&name));
        if let Some(p) = patch {
            merge_config(&mut raw, &self.patch_config(&p.def, &p.path, &unique_id)?);
        }
        Ok(FileNode {
            name,
            fqn,
            unique_id,
            raw,
            patch,
        })
    }

    pub(super) fn columns(
        &self,
        defs: Option<&Vec<ColumnDef>>,
        path: &Path,
        node: &str,
    ) -> Result<Vec<ColumnDoc>, ProjectError> {
        let mut columns = Vec::new();
        for def in defs.into_iter().flatten() {
            let mut meta: BTreeMap<String, Json> =
                def.meta.clone().unwrap_or_default().into_iter().collect();
            let mut tags = string_list(def.tags.as_ref());
            if let Some(config) = &def.config {
                if let Some(Json::Object(m)) = config.get("meta") {
                    meta.extend(m.clone());
                }
                tags.extend(string_list(config.get("tags")));
            }
            columns.push(ColumnDoc {
                name: def.name.clone(),
                description: self.render_text(def.description.as_deref(), path, node)?,
                data_type: def.data_type.clone(),
                meta,
                tags,
                constraints: def.constraints.clone().unwrap_or_default(),
            });
        }
        Ok(columns)
    }

    /// Adds the `resource` node (a model, seed or snapshot) defined in `path`, with `node.raw`
    /// its final config, unless that config disables it: its name is then kept in `disabled`,
    /// so a `ref` to it says so. Returns whether it was added.
    pub(super) fn admit(
        &mut self,
        path: &Path,
        resource: Resource,
        node: FileNode<'_>,
        raw_code: String,
    ) -> Result<bool, ProjectError> {
        let FileNode {
            name,
            fqn,
            unique_id,
            raw,
            patch,
        } = node;
        if !self.enabled(&raw, path, &unique_id)? {
            self.disabled
                .entry(name)
                .or_insert_with(|| path.to_path_buf());
            return Ok(false);
        }
        let node = self.make_node(
            unique_id,
            name,
            resource,
            path.to_path_buf(),
            fqn,
            raw_code,
            &raw,
            patch,
        )?;
        self.insert_named(node)?;
        Ok(true)
    }

    /// Builds a node from its merged raw config; resolves its schema and alias.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn make_node(
        &mut self,
        unique_id: String,
        name: String,
        resource: Resource,
        path: PathBuf,
        fqn: Vec<String>,
        raw_code: String,
        raw: &JsonMap<String, Json>,
        patch: Option<&Patch<ResourcePatch>>,
    ) -> Result<Node, ProjectError> {
        let config_error = |message: String| ProjectError::Config {
            path: path.clone(),
            node: unique_id.clone(),
            message,
        };
        let (mut config, custom_schema) = build_node_config(resource, raw).map_err(config_error)?;
        for (key, value) in &config.extra {
            if let Some(effect) = config_effect(resource, key, value) {
                self.unsupported.push(Unsupported {
                    path: path.clone(),
                    node: unique_id.clone(),
                    key: config_key(key, value),
                    effect,
                });
            }
        }
        config.schema = self.target.schema.clone();
        let (description, columns, patch_path) = match patch {
            Some(p) => (
                self.render_text(p.def.description.as_deref(), &p.path, &unique_id)?,
                self.columns(p.def.columns.as_ref(), &p.path, &unique_id)?,
                Some(p.path.clone()),
            ),
            None => (String::new(), Vec::new(), None),
        };
        let mut node = Node {
            unique_id,
            name,
            resource,
            package: self.name.clone(),
            path,
            fqn,
            raw_code,
            config,
            depends_on: Vec::new(),
            sources: Vec::new(),
            description,
            columns,
            constraints: patch
                .and_then(|p| p.def.constraints.clone())
                .unwrap_or_default(),
            patch_path,
            test: None,
        };
        self.warn_unenforced_constraints(&node);
        node.config.schema = self.schema_for(&node, custom_schema.as_deref())?;
        // dbt's snapshot config before 1.9: `target_schema` is the schema, as written.
        if resource == Resource::Snapshot
            && let Some(Json::String(schema)) = node.config.extra.get("target_schema")
        {
            node.config.schema = schema.trim().to_string();
        }
        if let Some(target) = self.naming_macro("generate_alias_name") {
            let custom = node.config.alias.clone();
            let args = [
                custom.map_or(Value::from(()), Value::from),
                node.model_value(),
            ];
            let alias = self.call_at_parse(&node, target, &args)?;
            node.config.alias = (alias != node.name).then_some(alias);
        }
        Ok(node)
    }

    /// dbt applies constraints only with an enforced contract, and cannot enforce
    /// `primary_key`, `unique` or `foreign_key` on adapters like Strata's: both are warned of.
    fn warn_unenforced_constraints(&mut self, node: &Node) {
        let declared = node
            .constraints
            .iter()
            .chain(node.columns.iter().flat_map(|c| &c.constraints));
        let kinds: Vec<String> = declared
            .filter_map(|c| c.get("type")?.as_str().map(str::to_ascii_lowercase))
            .collect();
        if kinds.is_empty() {
            return;
        }
        let at = node.patch_path.as_deref().unwrap_or(&node.path).display();
        if !node.contract_enforced() {
            self.warnings.push(format!(
                "{at}: {}: constraints apply only to a model with `contract: {{enforced: true}}`; they are not enforced",
                node.unique_id
            ));
            return;
        }
        for kind in ["primary_key", "unique", "foreign_key"] {
            if kinds.iter().any(|k| k == kind) {
                self.warnings.push(format!(
                    "{at}: {}: the {kind} constraint is not enforced by Strata (as dbt on adapters that cannot); it only documents",
                    node.unique_id
                ));
            }
        }
    }

    /// A naming macro (`generate_schema_name`, ...) as dbt picks it for a node of the current
    /// package: the root project's, else the package's own; else Strata's default applies.
    fn naming_macro(&self, name: &str) -> Option<&crate::jinja::MacroRef> {
        let macros = &self.shared.macros;
        macros
            .get(&self.root_name, name)
            .or_else(|| macros.get(&self.name, name))
    }

    /// `generate_schema_name(custom_schema_name, node)`: the project's macro if it defines
    /// one, else Strata's default (the custom schema as is, or the target's schema).
    pub(super) fn schema_for(
        &self,
        node: &Node,
        custom: Option<&str>,
    ) -> Result<String, ProjectError> {
        match self.naming_macro("generate_schema_name") {
            Some(target) => {
                let args = [
                    custom.map_or(Value::from(()), Value::from),
                    node.model_value(),
                ];
                self.call_at_parse(node, target, &args)
            }
            None => Ok(custom.map_or_else(|| self.target.schema.clone(), |s| s.trim().to_string())),
        }
    }
}
