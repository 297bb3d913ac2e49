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
            let node = self.file_node(file, Resource::Model, Some(&props.models))?;
            let (raw, pending) =
                self.parse_render(file, &node.unique_id, Resource::Model, &node.fqn, node.raw)?;
            let node = FileNode { raw, ..node };
            if self.admit(&file.rel, Resource::Model, node, file.text.clone())? {
                self.pending.push(pending);
            }
        }
        Ok(())
    }
}
