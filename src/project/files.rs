//! Reading a dbt project from disk: `dbt_project.yml`, `.dbtignore`, and the files under
//! the model/seed/macro/test/docs paths.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map as JsonMap, Value as Json};
use walkdir::WalkDir;

use super::ProjectError;

pub(crate) const PROJECT_FILE: &str = "dbt_project.yml";

/// What Strata reads from `dbt_project.yml`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ProjectFile {
    pub name: String,
    #[serde(default, rename = "model-paths", alias = "source-paths")]
    pub model_paths: Option<Vec<String>>,
    #[serde(default, rename = "seed-paths", alias = "data-paths")]
    pub seed_paths: Option<Vec<String>>,
    #[serde(default, rename = "macro-paths")]
    pub macro_paths: Option<Vec<String>>,
    #[serde(default, rename = "test-paths")]
    pub test_paths: Option<Vec<String>>,
    #[serde(default, rename = "docs-paths")]
    pub docs_paths: Option<Vec<String>>,
    /// Where `{% snapshot %}` files are (`snapshots`).
    #[serde(default, rename = "snapshot-paths")]
    pub snapshot_paths: Option<Vec<String>>,
    #[serde(default, rename = "analysis-paths")]
    pub analysis_paths: Option<Vec<String>>,
    #[serde(default, rename = "asset-paths")]
    pub asset_paths: Option<Vec<String>>,
    /// Where `target/compiled/` goes (dbt's `target-path`).
    #[serde(default, rename = "target-path")]
    pub target_path: Option<String>,
    /// Where `strata deps` installs packages and the loader reads them (`dbt_packages`).
    #[serde(default, rename = "packages-install-path")]
    pub packages_install_path: Option<String>,
    /// dbt's `dispatch:`: the packages `adapter.dispatch` searches for a macro namespace.
    #[serde(default)]
    pub dispatch: Option<Vec<DispatchEntry>>,
    #[serde(default)]
    pub vars: Option<JsonMap<String, Json>>,
    #[serde(default)]
    pub models: Option<Json>,
    #[serde(default)]
    pub seeds: Option<Json>,
    #[serde(default)]
    pub snapshots: Option<Json>,
    #[serde(default)]
    pub data_tests: Option<Json>,
    #[serde(default)]
    pub tests: Option<Json>,
    /// SQL run before every `run`, `test`, `seed`, `snapshot` and `build` (a string or a list).
    #[serde(default, rename = "on-run-start")]
    pub on_run_start: Option<Json>,
    /// SQL run after them.
    #[serde(default, rename = "on-run-end")]
    pub on_run_end: Option<Json>,
    /// Every other key (reported as not supported unless it needs nothing).
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, Json>,
}

/// One `dispatch:` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DispatchEntry {
    pub macro_namespace: String,
    pub search_order: Vec<String>,
}

impl ProjectFile {
    /// The folder packages are installed in (`dbt_packages` by default).
    pub(crate) fn packages_install_path(&self) -> PathBuf {
        PathBuf::from(
            self.packages_install_path
                .as_deref()
                .unwrap_or("dbt_packages"),
        )
    }

    pub(crate) fn model_paths(&self) -> Vec<String> {
        self.model_paths
            .clone()
            .unwrap_or_else(|| vec!["models".into()])
    }
    pub(crate) fn seed_paths(&self) -> Vec<String> {
        self.seed_paths
            .clone()
            .unwrap_or_else(|| vec!["seeds".into()])
    }
    pub(crate) fn macro_paths(&self) -> Vec<String> {
        self.macro_paths
            .clone()
            .unwrap_or_else(|| vec!["macros".into()])
    }
    pub(crate) fn snapshot_paths(&self) -> Vec<String> {
        self.snapshot_paths
            .clone()
            .unwrap_or_else(|| vec!["snapshots".into()])
    }
    pub(crate) fn test_paths(&self) -> Vec<String> {
        self.test_paths
            .clone()
            .unwrap_or_else(|| vec!["tests".into()])
    }
    /// dbt's default: every resource path.
    pub(crate) fn docs_paths(&self) -> Vec<String> {
        self.docs_paths.clone().unwrap_or_else(|| {
            let mut all = self.model_paths();
            all.extend(self.seed_paths());
            all.extend(self.macro_paths());
            all.extend(self.test_paths());
            all
        })
    }
    /// The folder compiled SQL is written under (`target` by default).
    pub(crate) fn target_path(&self) -> PathBuf {
        PathBuf::from(self.target_path.as_deref().unwrap_or("target"))
    }
    /// A warning for each folder a `*-paths` key names that is not there in `dir` (the folder
    /// of `file`): dbt reads nothing from it and says nothing, so a misspelt one would build
    /// nothing unnoticed. Not an error, as dbt's own example projects name absent folders.
    pub(crate) fn missing_folders(&self, dir: &Path, file: &Path) -> Vec<String> {
        let configured = [
            ("model-paths", &self.model_paths),
            ("seed-paths", &self.seed_paths),
            ("macro-paths", &self.macro_paths),
            ("test-paths", &self.test_paths),
            ("docs-paths", &self.docs_paths),
            ("snapshot-paths", &self.snapshot_paths),
            ("analysis-paths", &self.analysis_paths),
            ("asset-paths", &self.asset_paths),
        ];
        configured
            .into_iter()
            .flat_map(|(key, folders)| folders.iter().flatten().map(move |f| (key, f)))
            .filter(|(_, folder)| !dir.join(folder).is_dir())
            .map(|(key, folder)| {
                format!(
                    "{}: {key} names the folder '{folder}', which does not exist; nothing is read from it",
                    file.display()
                )
            })
            .collect()
    }
    /// The folder configs for data tests (`data_tests:`, or the older `tests:`).
    pub(crate) fn test_configs(&self) -> Option<&Json> {
        self.data_tests.as_ref().or(self.tests.as_ref())
    }
}

pub(crate) fn read_text(root: &Path, rel: &Path) -> Result<String, ProjectError> {
    let path = root.join(rel);
    std::fs::read_to_string(&path).map_err(|source| ProjectError::Io { path, source })
}

/// Parses a YAML file into `T`; an empty document is `T::default()`. Errors carry the
/// file and, where the parser knows it, the line and column.
pub(crate) fn parse_yaml<T: DeserializeOwned + Default>(
    rel: &Path,
    text: &str,
) -> Result<T, ProjectError> {
    let value: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| yaml_error(rel, &e))?;
    if value.is_null() {
        return Ok(T::default());
    }
    if text.contains("<<") {
        // Merge keys need the generic value; errors then have no position.
        let mut value = value;
        value.apply_merge().map_err(|e| yaml_error(rel, &e))?;
        return serde_norway::from_value(value).map_err(|e| yaml_error(rel, &e));
    }
    serde_norway::from_str(text).map_err(|e| yaml_error(rel, &e))
}

fn yaml_error(rel: &Path, err: &serde_norway::Error) -> ProjectError {
    let mut message = err.to_string();
    match err.location() {
        Some(location) => {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(at) = message.find(&suffix) {
                message.replace_range(at..at + suffix.len(), "");
            }
            ProjectError::Yaml {
                path: rel.to_path_buf(),
                line: location.line(),
                column: location.column(),
                message,
            }
        }
        None => ProjectError::Invalid {
            path: rel.to_path_buf(),
            message: format!("invalid YAML: {message}"),
        },
    }
}

/// Paths excluded by `.dbtignore` (gitignore-style patterns; negation is not supported).
#[derive(Debug, Default)]
pub(crate) struct Ignore {
    set: Option<GlobSet>,
}

impl Ignore {
    pub(crate) fn load(root: &Path) -> Result<Ignore, ProjectError> {
        let rel = Path::new(".dbtignore");
        if !root.join(rel).is_file() {
            return Ok(Ignore::default());
        }
        let text = read_text(root, rel)?;
        let mut builder = GlobSetBuilder::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let anchored = line.starts_with('/');
            let pattern = line.trim_start_matches('/').trim_end_matches('/');
            let mut patterns = vec![pattern.to_string(), format!("{pattern}/**")];
            if !anchored && !pattern.contains('/') {
                patterns.push(format!("**/{pattern}"));
                patterns.push(format!("**/{pattern}/**"));
            }
            for pattern in patterns {
                let glob = Glob::new(&pattern).map_err(|e| ProjectError::Invalid {
                    path: rel.to_path_buf(),
                    message: format!("bad pattern '{line}': {e}"),
                })?;
                builder.add(glob);
            }
        }
        let set = builder.build().map_err(|e| ProjectError::Invalid {
            path: rel.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Ignore { set: Some(set) })
    }

    fn is_ignored(&self, rel: &Path) -> bool {
        self.set.as_ref().is_some_and(|set| set.is_match(rel))
    }
}

/// A project file found under one of the resource paths.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Relative to the project root.
    pub rel: PathBuf,
    /// Relative to the resource path it was found under (`silver/orders.sql`).
    pub within: PathBuf,
    /// The contents (empty unless read).
    pub text: String,
}

impl SourceFile {
    /// The file's name without extension: a node's name.
    pub(crate) fn stem(&self) -> String {
        self.rel
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The directories between the resource path and the file.
    pub(crate) fn dirs(&self) -> Vec<String> {
        self.within
            .parent()
            .map(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The name minijinja knows the file by.
    pub(crate) fn template_name(&self) -> String {
        template_name(&self.rel)
    }
}

pub(crate) fn template_name(rel: &Path) -> String {
    rel.to_string_lossy().replace('\\', "/")
}

/// Every file with one of `extensions` under the resource `dirs`, sorted, each once.
pub(crate) fn collect(
    root: &Path,
    dirs: &[String],
    extensions: &[&str],
    ignore: &Ignore,
    read: bool,
) -> Result<Vec<SourceFile>, ProjectError> {
    let mut seen = BTreeSet::new();
    let mut files = Vec::new();
    for dir in dirs {
        let base = root.join(dir);
        if !base.is_dir() {
            continue;
        }
        let walker = WalkDir::new(&base)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|entry| {
                let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
                entry.depth() == 0 || !ignore.is_ignored(rel)
            });
        for entry in walker {
            let entry = entry.map_err(|e| ProjectError::Io {
                path: e.path().map_or_else(|| base.clone(), Path::to_path_buf),
                source: e.into_io_error().unwrap_or_else(|| {
                    std::io::Error::other("filesystem loop while walking the project")
                }),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let matches = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e));
            if !matches {
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(path).to_path_buf();
            if !seen.insert(rel.clone()) {
                continue;
            }
            let within = path.strip_prefix(&base).unwrap_or(path).to_path_buf();
            let text = if read {
                read_text(root, &rel)?
            } else {
                String::new()
            };
            files.push(SourceFile { rel, within, text });
        }
    }
    Ok(files)
}
