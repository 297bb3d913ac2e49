//! `catalog/sources.yml`: the sources Strata lands from and the tables each one offers.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::LandError;
use crate::lake::RawFormat;

/// The whole declaration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesFile {
    pub sources: Vec<SourceDecl>,
}

/// One source system and the tables landed from it.
#[derive(Debug, Clone, Deserialize)]
pub struct SourceDecl {
    pub name: String,
    /// Where and how to read; one variant per source kind.
    #[serde(flatten)]
    pub kind: SourceKind,
    pub tables: Vec<TableDecl>,
}

/// Source kinds: each is one module under `land::` implementing [`super::Source`].
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceKind {
    /// A local directory (relative paths resolve against the project directory).
    Folder { location: PathBuf },
}

impl SourceKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Folder { .. } => "folder",
        }
    }
}

/// One table of a source: which files belong to it and how bronze reads them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDecl {
    pub name: String,
    /// Glob relative to the source location, e.g. `orders/*.csv`.
    pub pattern: String,
    pub format: RawFormat,
    /// Reader options for schema-on-read (e.g. `row_tag` for XML, `delimiter` for CSV).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl SourcesFile {
    /// Reads and validates the declaration; errors name the file and, for YAML errors, the line.
    pub fn load(path: &Path) -> Result<Self, LandError> {
        let text = std::fs::read_to_string(path).map_err(|source| LandError::ReadDeclaration {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, LandError> {
        let invalid = |message: String| LandError::InvalidDeclaration {
            path: path.to_path_buf(),
            message,
        };
        let file: Self = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut sources = HashSet::new();
        for source in &file.sources {
            check_identifier(&source.name).map_err(|m| invalid(format!("source: {m}")))?;
            if !sources.insert(source.name.as_str()) {
                return Err(invalid(format!(
                    "source {:?} is declared twice",
                    source.name
                )));
            }
            let mut tables = HashSet::new();
            for table in &source.tables {
                check_identifier(&table.name)
                    .map_err(|m| invalid(format!("source {}: table: {m}", source.name)))?;
                if !tables.insert(table.name.as_str()) {
                    return Err(invalid(format!(
                        "source {}: table {:?} is declared twice",
                        source.name, table.name
                    )));
                }
                globset::Glob::new(&table.pattern).map_err(|e| {
                    invalid(format!(
                        "source {}.{}: pattern: {e}",
                        source.name, table.name
                    ))
                })?;
            }
        }
        Ok(file)
    }

    /// Sources and tables picked by `selectors` (`source` or `source.table`); all when empty.
    pub fn select(
        &self,
        selectors: &[String],
    ) -> Result<Vec<(&SourceDecl, Vec<&TableDecl>)>, LandError> {
        let mut picked = Vec::new();
        for sel in selectors {
            let (source, table) = match sel.split_once('.') {
                Some((s, t)) => (s, Some(t)),
                None => (sel.as_str(), None),
            };
            let decl = self
                .sources
                .iter()
                .find(|s| s.name == source)
                .ok_or_else(|| LandError::UnknownSelection(sel.clone()))?;
            if let Some(t) = table {
                decl.tables
                    .iter()
                    .find(|d| d.name == t)
                    .ok_or_else(|| LandError::UnknownSelection(sel.clone()))?;
            }
            picked.push((source, table));
        }
        let wanted = |s: &str, t: &str| {
            picked.is_empty()
                || picked
                    .iter()
                    .any(|(ps, pt)| *ps == s && pt.is_none_or(|pt| pt == t))
        };
        Ok(self
            .sources
            .iter()
            .map(|s| {
                let tables = s
                    .tables
                    .iter()
                    .filter(|t| wanted(&s.name, &t.name))
                    .collect();
                (s, tables)
            })
            .filter(|(_, tables): &(_, Vec<_>)| !tables.is_empty())
            .collect())
    }
}

/// Source and table names become SQL identifiers and path segments: keep them plain.
fn check_identifier(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must be lowercase letters, digits and underscores"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "
sources:
  - name: shop
    kind: folder
    location: ../drop
    tables:
      - name: orders
        pattern: 'orders/*.csv'
        format: csv
      - name: shipments
        pattern: 'shipments/*.xml'
        format: xml
        options: { row_tag: shipment }
";

    #[test]
    fn parses_and_selects() {
        let file = SourcesFile::parse(YAML, Path::new("sources.yml")).unwrap();
        assert_eq!(file.select(&[]).unwrap()[0].1.len(), 2);
        let one = file.select(&["shop.orders".into()]).unwrap();
        assert_eq!(one[0].1[0].name, "orders");
        assert!(file.select(&["shop.nope".into()]).is_err());
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let bad = YAML.replace("format: csv", "format: cvs");
        let err = SourcesFile::parse(&bad, Path::new("catalog/sources.yml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("catalog/sources.yml"), "{msg}");
        assert!(msg.contains("line"), "{msg}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dup =
            format!("{YAML}  - name: shop\n    kind: folder\n    location: x\n    tables: []\n");
        assert!(SourcesFile::parse(&dup, Path::new("s.yml")).is_err());
    }
}
