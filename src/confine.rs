//! Keeping local reads inside their folders by real path. A path's text says nothing about
//! where a symbolic link on it leads (`lake/bronze/evil -> /etc` reads like a lake path), so
//! SQL's raw reads and folder sources resolve real paths, and walk folders without following
//! a link out of them.

use std::path::{Path, PathBuf};

use globset::Glob;
use regex_automata::hybrid::dfa::DFA;
use regex_automata::nfa::thompson;
use regex_automata::util::{start, syntax};
use regex_automata::{Anchored, MatchKind};

/// Folders, by real path, that local reads must stay inside.
#[derive(Debug, Clone)]
pub struct Confined {
    roots: Vec<PathBuf>,
}

impl Confined {
    /// The real paths of `dirs`; a folder that does not exist (yet) holds nothing to read.
    pub fn new<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> Self {
        Self {
            roots: dirs
                .into_iter()
                .filter_map(|d| d.canonicalize().ok())
                .collect(),
        }
    }

    /// The real path of `path` when it is inside the folders, `None` when it leads out; an
    /// error when it cannot be resolved (it, or where a link on it points, does not exist).
    pub fn real(&self, path: &Path) -> std::io::Result<Option<PathBuf>> {
        let real = path.canonicalize()?;
        Ok(self
            .roots
            .iter()
            .any(|r| real.starts_with(r))
            .then_some(real))
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Regular files, by the path the walk reached them at, in name order.
    pub files: Vec<PathBuf>,
    /// Symbolic links (or, for the walk's start, paths through one) whose real path leaves the
    /// folders: neither read nor followed.
    pub escapes: Vec<Escape>,
    /// Symbolic links to nothing.
    pub broken: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escape {
    pub path: PathBuf,
    /// Whether it leads to a folder (whose files a pattern could match).
    pub is_dir: bool,
}

/// Walks `start` (a folder, or the one file it names). With `confined`, a link is followed
/// only when its real path stays inside those folders; without, every link is followed.
pub fn walk(start: &Path, confined: Option<&Confined>) -> Result<Walked, walkdir::Error> {
    let mut walked = Walked::default();
    let mut escapes = Vec::new();
    let entries = walkdir::WalkDir::new(start)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            let Some(confined) = confined else {
                return true;
            };
            // Below the start, only a link can lead elsewhere; the start itself may lie
            // behind a link anywhere on its path.
            if entry.depth() > 0 && !entry.path_is_symlink() {
                return true;
            }
            match confined.real(entry.path()) {
                Ok(Some(_)) => true,
                Ok(None) => {
                    escapes.push(Escape {
                        path: entry.path().to_path_buf(),
                        is_dir: entry.file_type().is_dir(),
                    });
                    false
                }
                // Gone since it was listed: the walk reports it as it does any missing entry.
                Err(_) => true,
            }
        });
    for entry in entries {
        match entry {
            Ok(entry) if entry.file_type().is_file() => walked.files.push(entry.into_path()),
            Ok(_) => {}
            Err(e) => match e.path().filter(|p| is_broken_link(p, &e)) {
                Some(path) => walked.broken.push(path.to_path_buf()),
                None => return Err(e),
            },
        }
    }
    walked.escapes = escapes;
    Ok(walked)
}

fn is_broken_link(path: &Path, error: &walkdir::Error) -> bool {
    error
        .io_error()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        && path.symlink_metadata().is_ok_and(|m| m.is_symlink())
}

/// Whether `glob` could match a path below the folder `dir` (written as the glob sees paths).
/// A link out of the folders is only worth refusing where a match could lie behind it; this
/// runs the glob's automaton over `dir/` and asks whether a match is still possible.
pub fn may_match_below(glob: &Glob, dir: &str) -> bool {
    let dfa = DFA::builder()
        .syntax(syntax::Config::new().utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .configure(DFA::config().match_kind(MatchKind::All))
        .build(glob.regex());
    // A pattern the automaton cannot take is treated as matching anything: refusing is safe.
    let Ok(dfa) = dfa else {
        return true;
    };
    let mut cache = dfa.create_cache();
    let config = start::Config::new().anchored(Anchored::Yes);
    let Ok(mut state) = dfa.start_state(&mut cache, &config) else {
        return true;
    };
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    for &byte in prefix.as_bytes() {
        match dfa.next_state(&mut cache, state, byte) {
            Ok(next) if next.is_dead() => return false,
            Ok(next) => state = next,
            Err(_) => return true,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use globset::GlobBuilder;

    use super::*;

    fn glob(pattern: &str, literal_separator: bool) -> Glob {
        GlobBuilder::new(pattern)
            .literal_separator(literal_separator)
            .build()
            .unwrap()
    }

    #[test]
    fn a_glob_may_match_below_a_folder_only_where_its_text_allows() {
        let g = glob("proj/lake/bronze/*/orders/*.csv", true);
        assert!(may_match_below(&g, "proj/lake/bronze/evil"));
        assert!(!may_match_below(&g, "proj/lake/silver"));
        assert!(!may_match_below(&g, "proj/lake/bronze/evil/x/y"));
        assert!(may_match_below(&glob("a/**/x.csv", true), "a/b/c/d"));
        assert!(!may_match_below(&glob("a/*.csv", true), "a/b"));
        // Without literal separators (folder sources' patterns), `*` crosses folders.
        assert!(may_match_below(&glob("*.csv", false), "sub/deeper"));
        assert!(!may_match_below(&glob("orders/*.csv", false), "shipments"));
        assert!(may_match_below(&glob("{orders,x/y}/*.csv", true), "x/y"));
    }

    #[test]
    fn walks_follow_links_only_inside_the_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("sub/a.csv"), "a").unwrap();
        std::fs::write(outside.join("secret.csv"), "s").unwrap();
        symlink(&outside, root.join("out")).unwrap();
        symlink(outside.join("secret.csv"), root.join("secret.csv")).unwrap();
        symlink(root.join("sub"), root.join("alias")).unwrap();
        symlink(root.join("nowhere"), root.join("broken.csv")).unwrap();

        let confined = Confined::new([root.as_path()]);
        let walked = walk(&root, Some(&confined)).unwrap();
        assert_eq!(
            walked.files,
            [root.join("alias/a.csv"), root.join("sub/a.csv")]
        );
        assert_eq!(
            walked.escapes,
            [
                Escape {
                    path: root.join("out"),
                    is_dir: true
                },
                Escape {
                    path: root.join("secret.csv"),
                    is_dir: false
                },
            ]
        );
        assert_eq!(walked.broken, [root.join("broken.csv")]);
        // A start reached through a link out is itself an escape.
        let through = walk(&root.join("out/secret.csv"), Some(&confined)).unwrap();
        assert!(through.files.is_empty());
        assert_eq!(through.escapes[0].path, root.join("out/secret.csv"));
        // Unconfined, every link is followed.
        assert_eq!(walk(&root, None).unwrap().files.len(), 4);
    }
}
