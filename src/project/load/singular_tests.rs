//! Singular tests: each `.sql` file under the test paths (outside `generic/`), a query
//! returning failing rows, rendered once in parse mode like a model.

use super::Loader;
use super::node::FileNode;
use crate::project::files::SourceFile;
use crate::project::{ProjectError, Resource, TestInfo, TestKind};

impl Loader {
    pub(super) fn singular_tests(&mut self, files: &[SourceFile]) -> Result<(), ProjectError> {
        for file in files {
            let FileNode {
                name,
                fqn,
                unique_id,
                raw,
                ..
            } = self.file_node(file, Resource::Test, None)?;
            let (raw, pending) = self.parse_render(file, &unique_id, Resource::Test, &fqn, raw)?;
            if !self.enabled(&raw, &file.rel, &unique_id)? {
                continue;
            }
            if let Some(other) = self.nodes.get(&unique_id) {
                return Err(ProjectError::Duplicate {
                    kind: "test",
                    name,
                    first: other.path.clone(),
                    second: file.rel.clone(),
                });
            }
            let mut node = self.make_node(
                unique_id.clone(),
                name,
                Resource::Test,
                file.rel.clone(),
                fqn,
                file.text.clone(),
                &raw,
                None,
            )?;
            node.test = Some(TestInfo {
                kind: TestKind::Singular,
                attached_node: None,
            });
            self.nodes.insert(unique_id, node);
            self.pending.push(pending);
        }
        Ok(())
    }
}
