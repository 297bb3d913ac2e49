//! Seeds: each `.csv` file under the seed paths, configured by folder and properties file
//! (seeds have no Jinja to render).

use super::Loader;
use super::node::FileNode;
use crate::project::files::SourceFile;
use crate::project::schema::Properties;
use crate::project::{ProjectError, Resource};

impl Loader {
    pub(super) fn seeds(
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
            } = self.file_node(file, Resource::Seed, Some(&props.seeds))?;
            if !self.enabled(&raw, &file.rel, &unique_id)? {
                self.disabled
                    .entry(name)
                    .or_insert_with(|| file.rel.clone());
                continue;
            }
            let node = self.make_node(
                unique_id,
                name,
                Resource::Seed,
                file.rel.clone(),
                fqn,
                String::new(),
                &raw,
                patch,
            )?;
            self.insert_named(node)?;
        }
        Ok(())
    }
}
