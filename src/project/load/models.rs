//! Models: each `.sql` file under the model paths, configured by folder, properties file and
//! its own `config()`, rendered once in parse mode to capture its `ref`s and `source`s.

use super::Loader;
use super::node::FileNode;
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
            let FileNode {
                name,
                fqn,
                unique_id,
                raw,
                patch,
            } = self.file_node(file, Resource::Model, Some(&props.models))?;
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
