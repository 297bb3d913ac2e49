//! Seeds: each `.csv` file under the seed paths, configured by folder and properties file
//! (seeds have no Jinja to render).

use super::Loader;
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
            let node = self.file_node(file, Resource::Seed, Some(&props.seeds))?;
            self.admit(&file.rel, Resource::Seed, node, String::new())?;
        }
        Ok(())
    }
}
