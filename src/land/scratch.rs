//! Scratch files, and removing the ones killed runs left. Every file a land writes starts in
//! `_strata/tmp/<owner>/`, where the owner names the host, boot and process writing it, so the
//! next `land` can tell what a killed run left (removed) from what a running `land` or
//! `land --watch` is still writing (kept).
//!
//! Why owners rather than ages alone: a running land can leave a finished scratch file
//! untouched for as long as its table takes to fetch (HTTP and S3 files are published
//! together at the end), so no age tells a slow land from a dead one, while the process table
//! tells it exactly. Only for another host's files, whose processes cannot be seen, does an
//! age decide.
//!
//! On a local lake, object_store writes a file as `<name>#<n>` and renames it when done; its
//! listings skip such names, so a killed run's half-written files are invisible to the store.
//! Local scratch folders are therefore cleaned through the file system itself.

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::LandError;
use crate::lake::{Lake, LakeRoot, layout};

/// How long another host's scratch files must have been left untouched to count as a dead
/// run's: far longer than any landing spends on one file.
const OTHER_HOSTS_STALE_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A fresh scratch file of this process.
pub fn file() -> Path {
    layout::tmp_file(&Owner::current().name())
}

/// Removes what killed runs left under `_strata/tmp/` (each file removed is logged).
pub async fn remove_stale(lake: &Lake) -> Result<(), LandError> {
    match lake.root() {
        LakeRoot::Local(dir) => {
            let tmp = local_path(dir, &layout::tmp_dir());
            tokio::task::spawn_blocking(move || remove_stale_local(&tmp))
                .await
                .expect("removing scratch files does not panic")
                .map_err(|(path, e)| LandError::Scratch {
                    path: path.display().to_string(),
                    source: e,
                })
        }
        LakeRoot::Hdfs(_) | LakeRoot::S3(_) => remove_stale_in_store(lake).await,
    }
}

/// Removes this process's scratch folder once it is empty (a local lake keeps folders; object
/// stores have none), so a finished land leaves `_strata/tmp` as it found it.
pub fn remove_own_folder(lake: &Lake) {
    if let LakeRoot::Local(dir) = lake.root() {
        let own = local_path(dir, &layout::tmp_owner_dir(&Owner::current().name()));
        let _ = std::fs::remove_dir(own);
    }
}

fn local_path(dir: &FsPath, path: &Path) -> std::path::PathBuf {
    path.parts()
        .fold(dir.to_path_buf(), |p, part| p.join(part.as_ref()))
}

fn remove_stale_local(tmp: &FsPath) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    let entries = match std::fs::read_dir(tmp) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err((tmp.to_path_buf(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| (tmp.to_path_buf(), e))?;
        let path = entry.path();
        let owner = Owner::parse(&entry.file_name().to_string_lossy());
        let files: Vec<(std::path::PathBuf, SystemTime)> = walkdir::WalkDir::new(&path)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| !e.file_type().is_dir())
            .map(|e| {
                let modified = e.metadata().ok().and_then(|m| m.modified().ok());
                (e.into_path(), modified.unwrap_or(SystemTime::UNIX_EPOCH))
            })
            .collect();
        let newest = files.iter().map(|(_, m)| *m).max();
        // Entries that name no owner were written before owners existed, when every land
        // removed all scratch files.
        if owner.is_some_and(|o| !o.is_stale(newest)) {
            continue;
        }
        for (file, _) in &files {
            tracing::warn!(path = %file.display(), "removing a scratch file a killed land left");
        }
        let result = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err((path, e)),
        }
    }
    Ok(())
}

async fn remove_stale_in_store(lake: &Lake) -> Result<(), LandError> {
    let tmp = layout::tmp_dir();
    let listed: Vec<object_store::ObjectMeta> =
        match lake.store().list(Some(&tmp)).try_collect().await {
            Ok(listed) => listed,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LandError::lake(lake, &tmp, e)),
        };
    // Files by the owner folder they are in (`None`: directly under tmp, from before owners).
    let mut by_owner: BTreeMap<Option<String>, Vec<object_store::ObjectMeta>> = BTreeMap::new();
    let depth = tmp.parts().count();
    for meta in listed {
        let parts: Vec<_> = meta.location.parts().collect();
        let owner = (parts.len() > depth + 1).then(|| parts[depth].as_ref().to_string());
        by_owner.entry(owner).or_default().push(meta);
    }
    for (owner, files) in by_owner {
        let newest = files
            .iter()
            .map(|m| SystemTime::from(m.last_modified))
            .max();
        if owner
            .and_then(|o| Owner::parse(&o))
            .is_some_and(|o| !o.is_stale(newest))
        {
            continue;
        }
        for meta in files {
            tracing::warn!(path = %lake.url_of(&meta.location), "removing a scratch file a killed land left");
            match lake.store().delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(LandError::lake(lake, &meta.location, e)),
            }
        }
    }
    Ok(())
}

/// Who writes a scratch folder: `<host>.<boot id>.<pid>.<process start>`. The boot id and the
/// start time (in clock ticks since boot) make it unique even when pids are reused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    host: String,
    boot: String,
    pid: u32,
    start: u64,
}

/// Stands in for what a system without `/proc` cannot tell; such owners are judged by age.
const UNKNOWN: &str = "unknown";

impl Owner {
    fn current() -> &'static Owner {
        static CURRENT: OnceLock<Owner> = OnceLock::new();
        CURRENT.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                host: read_proc("/proc/sys/kernel/hostname")
                    .map(|h| {
                        h.chars()
                            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                            .collect()
                    })
                    .unwrap_or_else(|| UNKNOWN.to_string()),
                boot: read_proc("/proc/sys/kernel/random/boot_id")
                    .map(|b| b.replace('-', ""))
                    .unwrap_or_else(|| UNKNOWN.to_string()),
                pid,
                start: process_start(pid).unwrap_or(0),
            }
        })
    }

    fn name(&self) -> String {
        format!("{}.{}.{}.{}", self.host, self.boot, self.pid, self.start)
    }

    fn parse(name: &str) -> Option<Owner> {
        let mut parts = name.splitn(4, '.');
        Some(Owner {
            host: parts.next()?.to_string(),
            boot: parts.next()?.to_string(),
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
        })
    }

    /// Whether this owner's files were left by a run that is gone; `newest` is when its
    /// newest file was last written.
    fn is_stale(&self, newest: Option<SystemTime>) -> bool {
        let me = Owner::current();
        let knowable = self.host == me.host && me.boot != UNKNOWN;
        if knowable && self.boot == me.boot {
            return process_start(self.pid) != Some(self.start);
        }
        if knowable {
            // This host has rebooted since: every process of that boot is gone.
            return true;
        }
        newest
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age > OTHER_HOSTS_STALE_AFTER)
    }
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`);
/// `None` when no such process runs.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_and_tell_live_runs_from_dead_ones() {
        let me = Owner::current();
        assert_ne!(me.boot, UNKNOWN, "these tests run on Linux");
        assert_eq!(Owner::parse(&me.name()).as_ref(), Some(me));
        assert!(!me.is_stale(None), "this process is running");
        let dead = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(dead.is_stale(None), "same pid, other start: reused pid");
        let old_boot = Owner {
            boot: "0".repeat(32),
            ..me.clone()
        };
        assert!(old_boot.is_stale(None));
        let elsewhere = Owner {
            host: "other-host".to_string(),
            ..me.clone()
        };
        assert!(!elsewhere.is_stale(Some(SystemTime::now())));
        let long_ago = SystemTime::now() - OTHER_HOSTS_STALE_AFTER * 2;
        assert!(elsewhere.is_stale(Some(long_ago)));
        assert_eq!(Owner::parse("3f2a9c"), None);
    }
}
