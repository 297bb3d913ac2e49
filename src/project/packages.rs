//! dbt packages: what `packages.yml` (or `dependencies.yml`) declares, and what is installed
//! under the `packages-install-path` (`dbt_packages/` by default), each a dbt project of its
//! own whose macros, models, seeds and tests the loader reads beside the root project's.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use super::ProjectError;
use super::files::{PROJECT_FILE, ProjectFile, parse_yaml, read_text};

/// The files that may declare packages, in the order dbt reads them.
pub const PACKAGE_FILES: [&str; 2] = ["packages.yml", "dependencies.yml"];

/// A declared package.
#[derive(Debug, Clone, PartialEq)]
pub enum PackageSpec {
    /// `local: path`, relative to the project.
    Local { path: PathBuf },
    /// `git: url`, with `revision` (branch, tag or commit) and `subdirectory`.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
    },
    /// `package: owner/name`, `version`, from the dbt package hub.
    Hub { package: String, version: Json },
}

impl PackageSpec {
    /// How the package is named in messages.
    pub fn describe(&self) -> String {
        match self {
            PackageSpec::Local { path } => format!("local: {}", path.display()),
            PackageSpec::Git {
                url,
                revision,
                subdirectory,
            } => {
                let mut s = format!("git: {url}");
                if let Some(r) = revision {
                    s.push_str(&format!(" (revision {r})"));
                }
                if let Some(d) = subdirectory {
                    s.push_str(&format!(" (subdirectory {d})"));
                }
                s
            }
            PackageSpec::Hub { package, version } => format!("package: {package} {version}"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct PackagesFile {
    #[serde(default)]
    packages: Option<Vec<serde_json::Map<String, Json>>>,
}

/// The packages the project declares, and the file declaring them (none when neither file
/// exists or declares any).
pub fn declared(root: &Path) -> Result<(Vec<PackageSpec>, Option<PathBuf>), ProjectError> {
    let mut found: Option<(Vec<PackageSpec>, PathBuf)> = None;
    for name in PACKAGE_FILES {
        let rel = Path::new(name);
        if !root.join(rel).is_file() {
            continue;
        }
        let file: PackagesFile = parse_yaml(rel, &read_text(root, rel)?)?;
        let Some(entries) = file.packages else {
            continue;
        };
        if let Some((_, first)) = &found {
            return Err(ProjectError::Invalid {
                path: rel.to_path_buf(),
                message: format!(
                    "packages are declared in both {} and {name}: keep one",
                    first.display()
                ),
            });
        }
        let specs = entries
            .iter()
            .map(|entry| {
                spec(entry).map_err(|message| ProjectError::Invalid {
                    path: rel.to_path_buf(),
                    message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        found = Some((specs, rel.to_path_buf()));
    }
    Ok(match found {
        Some((specs, path)) => (specs, Some(path)),
        None => (Vec::new(), None),
    })
}

fn spec(entry: &serde_json::Map<String, Json>) -> Result<PackageSpec, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match entry.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(format!("'{key}' must be a string, got {other}")),
        }
    };
    let known: &[&str] = if entry.contains_key("local") {
        &["local"]
    } else if entry.contains_key("git") {
        &["git", "revision", "subdirectory", "warn-unpinned"]
    } else if entry.contains_key("package") {
        &["package", "version", "install-prerelease"]
    } else {
        return Err(format!(
            "a package needs 'local:', 'git:' or 'package:', got {}",
            Json::Object(entry.clone())
        ));
    };
    if let Some(unknown) = entry.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "package key '{unknown}' is not supported here (expected one of {})",
            known.join(", ")
        ));
    }
    Ok(if let Some(path) = text("local")? {
        PackageSpec::Local {
            path: PathBuf::from(path),
        }
    } else if let Some(url) = text("git")? {
        PackageSpec::Git {
            url,
            revision: text("revision")?,
            subdirectory: text("subdirectory")?,
        }
    } else {
        PackageSpec::Hub {
            package: text("package")?.unwrap_or_default(),
            version: entry.get("version").cloned().unwrap_or(Json::Null),
        }
    })
}

/// An installed package.
#[derive(Debug)]
pub(crate) struct Installed {
    /// `name:` of its `dbt_project.yml`.
    pub name: String,
    /// Its folder, relative to the root project.
    pub dir: PathBuf,
    pub file: ProjectFile,
}

/// The packages installed under the root project's install path, by folder name.
pub(crate) fn installed(root: &Path, file: &ProjectFile) -> Result<Vec<Installed>, ProjectError> {
    let base = file.packages_install_path();
    let Ok(entries) = std::fs::read_dir(root.join(&base)) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| base.join(e.file_name()))
        .filter(|d| root.join(d).join(PROJECT_FILE).is_file())
        .collect();
    dirs.sort();
    let mut packages: Vec<Installed> = Vec::new();
    for dir in dirs {
        let rel = dir.join(PROJECT_FILE);
        let package_file: ProjectFile = parse_yaml(&rel, &read_text(root, &rel)?)?;
        if package_file.name.trim().is_empty() {
            return Err(ProjectError::Invalid {
                path: rel,
                message: "'name' is required".into(),
            });
        }
        if package_file.name == file.name || packages.iter().any(|p| p.name == package_file.name) {
            return Err(ProjectError::Invalid {
                path: rel,
                message: format!(
                    "package '{}' is installed twice (or has the root project's name)",
                    package_file.name
                ),
            });
        }
        packages.push(Installed {
            name: package_file.name.clone(),
            dir,
            file: package_file,
        });
    }
    Ok(packages)
}
