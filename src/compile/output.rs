//! `target/compiled/`: each node's compiled SQL on disk where dbt puts it, so the line an
//! error counts in the compiled SQL can be read, and what ran can be seen.

use std::path::{Path, PathBuf};

use crate::project::{Node, Project};

/// The compiled SQL could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the compiled SQL of {node} to {}: {source}", .path.display())]
pub struct OutputError {
    pub node: String,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Where `node`'s compiled SQL goes, relative to the project root:
/// `<target-path>/compiled/<project>/<file>`. A generic test, defined in a properties file,
/// gets `<properties file>/<test name>.sql`, as in dbt.
pub fn compiled_path(project: &Project, node: &Node) -> PathBuf {
    let base = project
        .target_path
        .join("compiled")
        .join(&project.name)
        .join(&node.path);
    if node.path.extension().is_some_and(|e| e == "sql") {
        base
    } else {
        base.join(format!("{}.sql", node.name))
    }
}

/// Writes `sql` as `node`'s compiled SQL; returns the path relative to the project root.
pub fn write_compiled(project: &Project, node: &Node, sql: &str) -> Result<PathBuf, OutputError> {
    let rel = compiled_path(project, node);
    let path = project.root.join(&rel);
    let fail = |source| OutputError {
        node: node.unique_id.clone(),
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(fail)?;
    std::fs::write(&path, sql).map_err(fail)?;
    Ok(rel)
}
