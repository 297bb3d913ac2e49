//! Where the shell keeps its history between sessions.

use std::path::PathBuf;

/// Overrides the history file's location (tests point it at a temporary directory).
pub const HISTORY_ENV: &str = "STRATA_HISTORY";

/// `$STRATA_HISTORY`, else `$XDG_DATA_HOME/strata/history`, else
/// `~/.local/share/strata/history`; `None` without a home directory.
pub fn location() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = var(HISTORY_ENV) {
        return Some(PathBuf::from(path));
    }
    let data = var("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(data.join("strata").join("history"))
}
