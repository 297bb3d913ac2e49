//! Seeds: each `.csv` file under the seed paths, configured by folder and properties file
//! (seeds have no Jinja to render).

use super::Loader;
use crate::jinja::config::merge_config;
use crate::project::config::folder_config;
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
            let name = file.stem();
            let fqn = self.fqn(file.dirs(), &name);
            let unique_id = format!("seed.{}.{name}", self.name);
            let mut raw = folder_config(self.file.seeds.as_ref(), &self.name, &fqn);
            let patch = props.seeds.get(&name);
            if let Some(p) = patch {
                merge_config(&mut raw, &self.patch_config(&p.def, &p.path, &unique_id)?);
            }
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
