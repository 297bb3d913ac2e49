//! `strata deps`: installs the packages `packages.yml` declares into the install path, as
//! `dbt deps` does. `local:` packages are linked, `git:` packages cloned (at `revision`, from
//! `subdirectory`), hub packages (`package: owner/name`) downloaded from hub.getdbt.com.
//! Everything is fetched into a staging folder first: only when every package is fetched are
//! the installed ones replaced, so a package that cannot be fetched (offline, a bad revision)
//! leaves what is installed as it was.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

use super::ProjectError;
use super::files::{PROJECT_FILE, ProjectFile, parse_yaml, read_text};
use super::packages::{PackageSpec, declared};

/// The dbt package hub's API.
const HUB: &str = "https://hub.getdbt.com/api/v1";

/// Why packages could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("cannot fetch {package}: {message}; the installed packages are left as they were")]
    Fetch { package: String, message: String },
    #[error("{package}: {} has no dbt_project.yml, so it is not a dbt package", .path.display())]
    NotAPackage { package: String, path: PathBuf },
    #[error("two declared packages are both named '{0}'")]
    Duplicate(String),
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A package `strata deps` installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledPackage {
    pub name: String,
    /// How it was declared.
    pub from: String,
}

/// Installs the declared packages of the project in `root` into its install path, replacing
/// what was installed; returns them in declaration order.
pub async fn install(root: &Path) -> Result<Vec<InstalledPackage>, DepsError> {
    let rel = Path::new(PROJECT_FILE);
    let file: ProjectFile = parse_yaml(rel, &read_text(root, rel)?)?;
    let (specs, _) = declared(root)?;
    let install_dir = root.join(file.packages_install_path());
    let staging = install_dir.join(format!(".strata-deps-{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DepsError::Io { path, source }
    };
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let fetched = fetch_all(root, &specs, &staging).await;
    let installed = match fetched {
        Ok(installed) => installed,
        Err(e) => {
            std::fs::remove_dir_all(&staging).ok();
            return Err(e);
        }
    };
    // Every package is fetched: replace what was installed.
    for entry in std::fs::read_dir(&install_dir)
        .map_err(io(&install_dir))?
        .flatten()
    {
        let path = entry.path();
        if path == staging {
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let removed = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io(&path))?;
    }
    for package in &installed {
        let from = staging.join(&package.name);
        let to = install_dir.join(&package.name);
        std::fs::rename(&from, &to).map_err(io(&to))?;
    }
    std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    Ok(installed)
}

async fn fetch_all(
    root: &Path,
    specs: &[PackageSpec],
    staging: &Path,
) -> Result<Vec<InstalledPackage>, DepsError> {
    let mut installed: Vec<InstalledPackage> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let scratch = staging.join(format!(".fetch-{i}"));
        let package = spec.describe();
        let fail = |message: String| DepsError::Fetch {
            package: package.clone(),
            message,
        };
        // The folder holding the package's dbt_project.yml, and whether to link it.
        let (source, link) = match spec {
            PackageSpec::Local { path } => {
                let dir = root.join(path);
                let dir = dir
                    .canonicalize()
                    .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
                (dir, true)
            }
            PackageSpec::Git {
                url,
                revision,
                subdirectory,
            } => {
                git_clone(url, revision.as_deref(), &scratch).map_err(fail)?;
                (scratch.join(subdirectory.as_deref().unwrap_or("")), false)
            }
            PackageSpec::Hub {
                package: name,
                version,
            } => {
                hub_download(name, version, &scratch).await.map_err(fail)?;
                (scratch.clone(), false)
            }
        };
        let manifest = source.join(PROJECT_FILE);
        if !manifest.is_file() {
            return Err(DepsError::NotAPackage {
                package,
                path: source,
            });
        }
        let text = std::fs::read_to_string(&manifest).map_err(|e| DepsError::Io {
            path: manifest.clone(),
            source: e,
        })?;
        let file: ProjectFile = parse_yaml(&manifest, &text)?;
        let name = file.name;
        if installed.iter().any(|p| p.name == name) {
            return Err(DepsError::Duplicate(name));
        }
        let target = staging.join(&name);
        let placed = if link {
            std::os::unix::fs::symlink(&source, &target)
        } else {
            std::fs::remove_dir_all(source.join(".git")).ok();
            std::fs::rename(&source, &target)
        };
        placed.map_err(|e| DepsError::Io {
            path: target.clone(),
            source: e,
        })?;
        std::fs::remove_dir_all(&scratch).ok();
        installed.push(InstalledPackage {
            name,
            from: package,
        });
    }
    Ok(installed)
}

/// Clones `url` into `into` and checks out `revision` (a branch, tag or commit).
fn git_clone(url: &str, revision: Option<&str>, into: &Path) -> Result<(), String> {
    let run = |args: &[&str], dir: Option<&Path>| -> Result<(), String> {
        let mut command = Command::new("git");
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let out = command
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    let into_text = into.to_string_lossy();
    run(&["clone", "--quiet", url, &into_text], None)?;
    if let Some(revision) = revision {
        run(&["checkout", "--quiet", revision, "--"], Some(into))?;
    }
    Ok(())
}

/// Downloads hub package `name` (`owner/package`) at the newest version `version` allows
/// into `into`.
async fn hub_download(name: &str, version: &Json, into: &Path) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let index_url = format!("{HUB}/{name}.json");
    let unreachable =
        |e: reqwest::Error| format!("the dbt package hub is not reachable ({index_url}): {e}");
    let body = client
        .get(&index_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unreachable)?
        .bytes()
        .await
        .map_err(unreachable)?;
    let index: Json = serde_json::from_slice(&body)
        .map_err(|e| format!("the hub's answer for {name} is not JSON: {e}"))?;
    let wanted = version_constraints(version)?;
    let best = index
        .get("versions")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(v, info)| Some((semver::Version::parse(v).ok()?, info)))
        .filter(|(v, _)| v.pre.is_empty() && wanted.iter().all(|r| r.matches(v)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .ok_or_else(|| format!("no version of {name} matches {version}"))?;
    let tarball = best
        .1
        .pointer("/downloads/tarball")
        .and_then(Json::as_str)
        .ok_or_else(|| format!("the hub lists no download for {name} {}", best.0))?;
    let bytes = client
        .get(tarball)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("downloading {tarball}: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("downloading {tarball}: {e}"))?;
    let unpacked = into.with_extension("unpack");
    std::fs::create_dir_all(&unpacked).map_err(|e| e.to_string())?;
    let archive = unpacked.join("package.tar.gz");
    std::fs::write(&archive, &bytes).map_err(|e| e.to_string())?;
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "unpacking {tarball}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::remove_file(&archive).ok();
    // The archive holds one top-level folder: the package.
    let top = std::fs::read_dir(&unpacked)
        .map_err(|e| e.to_string())?
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .ok_or_else(|| format!("{tarball} holds no package folder"))?;
    std::fs::rename(top.path(), into).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(&unpacked).ok();
    Ok(())
}

/// dbt's `version:`: one version or range (`">=1.0.0"`), or a list of them, all to hold.
fn version_constraints(version: &Json) -> Result<Vec<semver::VersionReq>, String> {
    let items: Vec<String> = match version {
        Json::Null => Vec::new(),
        Json::String(s) => vec![s.clone()],
        Json::Number(n) => vec![n.to_string()],
        Json::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect(),
        other => return Err(format!("'version' must be a string or a list, got {other}")),
    };
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            // A bare version is exact, as in dbt.
            let req = if item.starts_with(|c: char| c.is_ascii_digit()) {
                format!("={item}")
            } else {
                item.to_string()
            };
            semver::VersionReq::parse(&req).map_err(|e| format!("version '{item}': {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_exact_or_ranges() {
        let reqs = version_constraints(&serde_json::json!([">=1.1.0", "<2.0.0"])).unwrap();
        let v = |s| semver::Version::parse(s).unwrap();
        assert!(reqs.iter().all(|r| r.matches(&v("1.3.0"))));
        assert!(!reqs.iter().all(|r| r.matches(&v("2.0.0"))));
        let exact = version_constraints(&serde_json::json!("1.3.0")).unwrap();
        assert!(!exact[0].matches(&v("1.3.1")));
    }
}
