//! Models: each `.sql` file under the model paths, configured by folder, properties file and
//! its own `config()`, rendered once in parse mode to capture its `ref`s and `source`s.

use super::Loader;
use crate::jinja::config::merge_config;
use crate::project::config::folder_config;
use crate::project::files::SourceFile;
use crate::project::schema::Properties;
use crate::project::{ProjectError, Resource};

impl Loader {
    pub(super) fn models(
        &mut self,
        files: &[SourceFile],
        props: &Properties,
    ) -> Result<(), ProjectError> {
        for file in files {
            let name = file.stem();
            let fqn = self.fqn(file.dirs(), &name);
            let unique_id = format!("model.{}.{name}", self.name);
            let mut raw = folder_config(self.file.models.as_ref(), &self.name, &fqn);
            let patch = props.models.get(&name);
            if let Some(p) = patch {
                merge_config(&mut raw, &self.patch_config(&p.def, &p.path, &unique_id)?);
            }
            let (raw, pending) = self.parse_render(file, &unique_id, Resource::Model, &fqn, raw)?;
            if !self.enabled(&raw, &file.rel, &unique_id)? {
                self.disabled
                    .entry(name)
                    .or_insert_with(|| file.rel.clone());
                continue;
            }
            let node = self.make_node(
                unique_id,
                name,
                Resource::Model,
                file.rel.clone(),
                fqn,
                file.text.clone(),
                &raw,
                patch,
            )?;
            self.insert_named(node)?;
            self.pending.push(pending);
        }
        Ok(())
    }
}
