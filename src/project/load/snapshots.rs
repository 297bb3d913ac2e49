//! Snapshots: each `{% snapshot name %}` block of the `.sql` files under the snapshot paths,
//! and (dbt ≥ 1.9) each `snapshots:` entry of a properties file that names its input with
//! `relation:`. Configured by folder (`snapshots:` in `dbt_project.yml`), properties entry
//! and the block's own `config()`, and rendered once in parse mode like a model.

use std::path::Path;

use super::Loader;
use super::node::FileNode;
use crate::jinja::blocks::snapshot_blocks;
use crate::jinja::config_call::merge_config;
use crate::project::files::SourceFile;
use crate::project::schema::{Patch, Properties, ResourcePatch};
use crate::project::{ProjectError, Resource};

impl Loader {
    pub(super) fn snapshots(
        &mut self,
        files: &[SourceFile],
        props: &Properties,
    ) -> Result<(), ProjectError> {
        for file in files {
            let blocks =
                snapshot_blocks(&file.text).map_err(|(line, message)| ProjectError::Invalid {
                    path: file.rel.clone(),
                    message: format!("line {line}: {message}"),
                })?;
            for block in blocks {
                let patch = props.snapshots.get(&block.name);
                self.snapshot(&file.rel, file.dirs(), block.name, block.sql, patch)?;
            }
        }
        for (name, patch) in &props.snapshots {
            let Some(relation) = &patch.def.relation else {
                continue;
            };
            let sql = format!("select * from {{{{ {} }}}}", relation.trim());
            let dirs = self
                .property_dirs
                .get(&patch.path)
                .cloned()
                .unwrap_or_default();
            self.snapshot(&patch.path, dirs, name.clone(), sql, Some(patch))?;
        }
        Ok(())
    }

    /// One snapshot named `name` defined in `path` whose query is `sql`.
    fn snapshot(
        &mut self,
        path: &Path,
        dirs: Vec<String>,
        name: String,
        sql: String,
        patch: Option<&Patch<ResourcePatch>>,
    ) -> Result<(), ProjectError> {
        let fqn = self.fqn(dirs, &name);
        let unique_id = format!("snapshot.{}.{name}", self.name);
        let mut raw = self.folder_configs(|f| f.snapshots.as_ref(), &fqn);
        if let Some(p) = patch {
            merge_config(&mut raw, &self.patch_config(&p.def, &p.path, &unique_id)?);
        }
        let (raw, pending) =
            self.parse_render_text(path, &name, &unique_id, Resource::Snapshot, &fqn, raw, &sql)?;
        let node = FileNode {
            name,
            fqn,
            unique_id,
            raw,
            patch,
        };
        if self.admit(path, Resource::Snapshot, node, sql)? {
            self.pending.push(pending);
        }
        Ok(())
    }
}
