//! `catalog/sources.yml`: the sources Strata lands from and the tables each one offers.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::LandError;
use super::schedule::CronSchedule;
use crate::lake::RawFormat;
use crate::lake::s3::S3Location;

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
    /// When `land --watch` lands this source (cron, UTC); without one, every `--interval`.
    #[serde(default)]
    pub schedule: Option<CronSchedule>,
    pub tables: Vec<TableDecl>,
}

/// Source kinds: each is one module under `land::` implementing [`super::Source`]. A key no
/// kind knows is refused (a misspelt option must not be silently ignored).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceKind {
    /// A local directory (relative paths resolve against the project directory).
    Folder {
        location: PathBuf,
        /// Land the files that symbolic links in the folder point to outside it (by default
        /// such links fail, named, and are not followed).
        #[serde(default)]
        follow_symlinks: bool,
    },
    /// A PostgreSQL database: tables or queries extracted into Parquet files.
    Postgres {
        /// A libpq-style connection string (`host=… dbname=…` or `postgresql://…`).
        #[serde(default)]
        connection: Option<String>,
        /// The environment variable holding the connection string, to keep passwords out of
        /// the project.
        #[serde(default)]
        connection_env: Option<String>,
    },
    /// Files over HTTP(S): one URL, or the files a listing at that URL links to.
    Http {
        url: String,
        #[serde(default)]
        listing: Option<Listing>,
    },
    /// Objects under `s3://bucket/prefix` on AWS S3 or an S3-compatible service; credentials
    /// from the `AWS_*` environment. The settings are those of [`crate::lake::s3::S3Settings`],
    /// spelled out: serde cannot flatten a struct that refuses unknown fields.
    S3 {
        url: String,
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        allow_http: Option<bool>,
    },
    /// A NATS JetStream stream: each table reads one subject through a durable pull consumer
    /// and lands its events as micro-batch files.
    Nats {
        /// The server, `nats://host:port` (or `tls://`); credentials go in `credentials_env`.
        url: String,
        /// The JetStream stream holding the tables' subjects.
        stream: String,
        /// The durable consumer's name; each table consumes as `<consumer>_<table>`.
        consumer: String,
        /// The environment variable holding `user:password` or a token, to keep secrets out
        /// of the project.
        #[serde(default)]
        credentials_env: Option<String>,
        /// How long the server waits for an acknowledgement before redelivering an event (ms).
        #[serde(default)]
        ack_wait_ms: Option<u64>,
    },
}

/// How an HTTP source's URL lists its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// A JSON document: an array of links, or of objects with a `url`, `href`, `path` or
    /// `name` field, optionally under a top-level `files` field.
    Json,
    /// An HTML page whose `<a href>` links are the files (a web server's directory index).
    Html,
}

impl SourceKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Folder { .. } => "folder",
            Self::Postgres { .. } => "postgres",
            Self::Http { .. } => "http",
            Self::S3 { .. } => "s3",
            Self::Nats { .. } => "nats",
        }
    }
}

/// How a PostgreSQL table is extracted on each run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtractMode {
    /// Every row, every run (a full copy per run, committed all at once).
    #[default]
    Snapshot,
    /// Only rows whose `cursor` column is above the high-water mark of earlier runs.
    Incremental,
}

/// One table of a source: which files (or which rows) belong to it and how bronze reads them.
/// File kinds (folder, http, s3) use `pattern` and `format`; the postgres kind uses `table` or
/// `query`, `mode`, `cursor` and `rows_per_file`; the nats kind `subject`, `format` and the
/// micro-batch limits. [`SourcesFile::parse`] checks each table against its source's kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDecl {
    pub name: String,
    /// Glob relative to the source location, e.g. `orders/*.csv`.
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub format: Option<RawFormat>,
    /// Reader options for schema-on-read (e.g. `row_tag` for XML, `delimiter` for CSV).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
    /// PostgreSQL: the relation to extract, `table` or `schema.table`.
    #[serde(default)]
    pub table: Option<String>,
    /// PostgreSQL: a SELECT whose rows are extracted (instead of `table`).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub mode: ExtractMode,
    /// PostgreSQL, incremental mode: the column whose values only grow for new or changed rows.
    #[serde(default)]
    pub cursor: Option<String>,
    /// PostgreSQL: rows per Parquet file (a file is closed only between distinct cursor values).
    #[serde(default)]
    pub rows_per_file: Option<usize>,
    /// Streams: the subject (wildcards allowed) whose events the table holds.
    #[serde(default)]
    pub subject: Option<String>,
    /// Streams: events per micro-batch file at most.
    #[serde(default)]
    pub max_rows: Option<usize>,
    /// Streams: bytes of events per micro-batch file at most (as the broker counts them).
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// Streams: how long a micro-batch waits to fill before it is landed anyway (ms).
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
}

impl TableDecl {
    /// The glob of a file table (checked when the declaration loads).
    pub fn file_pattern(&self) -> &str {
        self.pattern
            .as_deref()
            .expect("file tables have a pattern (checked at load)")
    }

    /// The raw format of a file table, or Parquet for the tables Strata writes itself.
    pub fn raw_format(&self) -> RawFormat {
        self.format.unwrap_or(RawFormat::Parquet)
    }
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
            check_source(&source.kind)
                .map_err(|m| invalid(format!("source {}: {m}", source.name)))?;
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
                check_table(&source.kind, table)
                    .map_err(|m| invalid(format!("source {}.{}: {m}", source.name, table.name)))?;
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

/// Source-level settings each kind needs.
fn check_source(kind: &SourceKind) -> Result<(), String> {
    match kind {
        SourceKind::Folder { .. } => Ok(()),
        SourceKind::Postgres {
            connection,
            connection_env,
        } => match (connection, connection_env) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err("give exactly one of `connection` and `connection_env`".into()),
        },
        SourceKind::Http { url, .. } => match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            Ok(u) => Err(format!(
                "url {url}: scheme {}:// is not http(s)",
                u.scheme()
            )),
            Err(e) => Err(format!("url {url:?}: {e}")),
        },
        SourceKind::S3 { url, .. } => S3Location::parse(url).map(|_| ()),
        SourceKind::Nats {
            url,
            stream,
            consumer,
            ack_wait_ms,
            ..
        } => {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "nats" | "tls") && u.password().is_none() => {}
                Ok(u) if u.password().is_some() => {
                    return Err("url: put credentials in `credentials_env`, not the url".into());
                }
                Ok(u) => {
                    return Err(format!(
                        "url: scheme {}:// is not nats:// or tls://",
                        u.scheme()
                    ));
                }
                Err(e) => return Err(format!("url {url:?}: {e}")),
            }
            check_nats_name("stream", stream)?;
            check_nats_name("consumer", consumer)?;
            if *ack_wait_ms == Some(0) {
                return Err("`ack_wait_ms` must be positive".into());
            }
            Ok(())
        }
    }
}

/// JetStream stream and consumer names are subject tokens: no dots, wildcards or spaces.
fn check_nats_name(what: &str, name: &str) -> Result<(), String> {
    let bad = |c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\');
    if name.is_empty() || name.contains(bad) {
        return Err(format!(
            "{what} {name:?} must be non-empty, without dots, wildcards, slashes or spaces"
        ));
    }
    Ok(())
}

/// A table's fields against its source's kind: file tables pick files, PostgreSQL tables rows,
/// stream tables a subject.
fn check_table(kind: &SourceKind, table: &TableDecl) -> Result<(), String> {
    let postgres = [
        ("table", table.table.is_some()),
        ("query", table.query.is_some()),
        ("mode", table.mode != ExtractMode::default()),
        ("cursor", table.cursor.is_some()),
        ("rows_per_file", table.rows_per_file.is_some()),
    ];
    let stream = [
        ("subject", table.subject.is_some()),
        ("max_rows", table.max_rows.is_some()),
        ("max_bytes", table.max_bytes.is_some()),
        ("max_wait_ms", table.max_wait_ms.is_some()),
    ];
    let refuse = |fields: &[(&str, bool)], owner: &str| match fields.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(format!("`{field}` is for {owner} sources")),
        None => Ok(()),
    };
    match kind {
        SourceKind::Postgres { .. } => {
            refuse(&stream, "nats")?;
            check_postgres_table(table)
        }
        SourceKind::Nats { .. } => {
            refuse(&postgres, "postgres")?;
            refuse(&[("pattern", table.pattern.is_some())], "file")?;
            check_stream_table(table)
        }
        SourceKind::Folder { .. } | SourceKind::Http { .. } | SourceKind::S3 { .. } => {
            refuse(&postgres, "postgres")?;
            refuse(&stream, "nats")?;
            let pattern = table
                .pattern
                .as_deref()
                .ok_or_else(|| format!("a {} table needs a `pattern`", kind.label()))?;
            globset::Glob::new(pattern).map_err(|e| format!("pattern: {e}"))?;
            if table.format.is_none() {
                return Err(format!("a {} table needs a `format`", kind.label()));
            }
            Ok(())
        }
    }
}

fn check_postgres_table(table: &TableDecl) -> Result<(), String> {
    for (field, set) in [
        ("pattern", table.pattern.is_some()),
        ("format", table.format.is_some()),
        ("options", !table.options.is_empty()),
    ] {
        if set {
            return Err(format!(
                "`{field}` is for file sources; postgres tables land as Parquet"
            ));
        }
    }
    match (&table.table, &table.query) {
        (Some(_), None) | (None, Some(_)) => {}
        _ => return Err("give exactly one of `table` and `query`".into()),
    }
    match (table.mode, &table.cursor) {
        (ExtractMode::Incremental, None) => Err("incremental mode needs a `cursor` column".into()),
        (ExtractMode::Snapshot, Some(_)) => Err("`cursor` is only used in incremental mode".into()),
        _ if table.rows_per_file == Some(0) => Err("`rows_per_file` must be positive".into()),
        _ => Ok(()),
    }
}

fn check_stream_table(table: &TableDecl) -> Result<(), String> {
    let subject = table
        .subject
        .as_deref()
        .ok_or("a nats table needs a `subject`")?;
    if subject.is_empty() || subject.contains(char::is_whitespace) {
        return Err(format!(
            "subject {subject:?} must be non-empty and without spaces"
        ));
    }
    if table.format != Some(RawFormat::Ndjson) {
        return Err("a nats table needs `format: ndjson`".into());
    }
    for (field, value) in [
        ("max_rows", table.max_rows.map(|v| v as u64)),
        ("max_bytes", table.max_bytes.map(|v| v as u64)),
        ("max_wait_ms", table.max_wait_ms),
    ] {
        if value == Some(0) {
            return Err(format!("`{field}` must be positive"));
        }
    }
    Ok(())
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
    fn postgres_and_http_sources_parse() {
        let yaml = "
sources:
  - name: crm
    kind: postgres
    connection_env: CRM_PG
    tables:
      - name: customers
        table: public.customers
        mode: incremental
        cursor: updated_at
        rows_per_file: 5000
      - name: open_orders
        query: SELECT * FROM orders WHERE open
  - name: web
    kind: http
    url: https://example.com/exports/
    listing: html
    tables:
      - name: rates
        pattern: 'rates_*.csv'
        format: csv
";
        let file = SourcesFile::parse(yaml, Path::new("s.yml")).unwrap();
        let customers = &file.sources[0].tables[0];
        assert_eq!(customers.mode, ExtractMode::Incremental);
        assert_eq!(customers.raw_format(), RawFormat::Parquet);
        assert_eq!(file.sources[0].tables[1].mode, ExtractMode::Snapshot);
        assert!(matches!(
            file.sources[1].kind,
            SourceKind::Http {
                listing: Some(Listing::Html),
                ..
            }
        ));
    }

    #[test]
    fn nats_sources_parse() {
        let yaml = "
sources:
  - name: clicks
    kind: nats
    url: nats://127.0.0.1:4222
    stream: EVENTS
    consumer: strata
    credentials_env: CLICKS_NATS
    tables:
      - name: events
        subject: shop.events.>
        format: ndjson
        max_rows: 500
        max_wait_ms: 200
";
        let file = SourcesFile::parse(yaml, Path::new("s.yml")).unwrap();
        let events = &file.sources[0].tables[0];
        assert_eq!(events.raw_format(), RawFormat::Ndjson);
        assert_eq!(
            (events.max_rows, events.max_bytes, events.max_wait_ms),
            (Some(500), None, Some(200))
        );
        assert!(matches!(
            &file.sources[0].kind,
            SourceKind::Nats { stream, ack_wait_ms: None, .. } if stream == "EVENTS"
        ));
        for (from, to, why) in [
            ("subject: shop.events.>", "table: x", "postgres"),
            ("        subject: shop.events.>\n", "", "needs a `subject`"),
            ("stream: EVENTS", "stream: a b", "stream"),
            ("nats://", "http://", "nats://"),
        ] {
            let err = SourcesFile::parse(&yaml.replace(from, to), Path::new("s.yml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{to} → {err}");
        }
        let folder = YAML.replace("format: csv", "format: csv\n        subject: x");
        let err = SourcesFile::parse(&folder, Path::new("s.yml")).unwrap_err();
        assert!(err.to_string().contains("nats sources"), "{err}");
    }

    #[test]
    fn tables_must_fit_their_source_kind() {
        let pg = |source: &str, table: &str| {
            format!(
                "sources:\n  - name: s\n    kind: postgres\n{source}    tables:\n      - name: t\n{table}"
            )
        };
        let conn = "    connection: host=db\n";
        for (yaml, why) in [
            (pg("", "        table: x\n"), "connection"),
            (
                pg(
                    &format!("{conn}    connection_env: X\n"),
                    "        table: x\n",
                ),
                "connection",
            ),
            (pg(conn, "        mode: snapshot\n"), "`table` and `query`"),
            (
                pg(conn, "        table: x\n        query: select 1\n"),
                "`table` and `query`",
            ),
            (
                pg(conn, "        table: x\n        mode: incremental\n"),
                "cursor",
            ),
            (
                pg(conn, "        table: x\n        cursor: c\n"),
                "incremental mode",
            ),
            (
                pg(conn, "        table: x\n        pattern: '*.csv'\n"),
                "file sources",
            ),
            (
                YAML.replace("format: csv", "format: csv\n        cursor: c"),
                "postgres",
            ),
            (
                YAML.replace("        format: csv\n", ""),
                "needs a `format`",
            ),
            (
                YAML.replace(
                    "kind: folder\n    location: ../drop",
                    "kind: http\n    url: ftp://x/y",
                ),
                "http",
            ),
        ] {
            let err = SourcesFile::parse(&yaml, Path::new("s.yml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{yaml}\n→ {err}");
        }
    }

    #[test]
    fn s3_sources_parse_and_need_a_bucket() {
        let yaml = YAML.replace(
            "kind: folder\n    location: ../drop",
            "kind: s3\n    url: s3://drop-bucket/exports\n    endpoint: http://127.0.0.1:9000\n    allow_http: true",
        );
        let file = SourcesFile::parse(&yaml, Path::new("s.yml")).unwrap();
        assert!(matches!(
            &file.sources[0].kind,
            SourceKind::S3 { url, allow_http: Some(true), region: None, .. } if url == "s3://drop-bucket/exports"
        ));
        let err = SourcesFile::parse(
            &yaml.replace("s3://drop-bucket/exports", "s3:///exports"),
            Path::new("s.yml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bucket"), "{err}");
    }

    #[test]
    fn folder_sources_take_follow_symlinks_and_refuse_unknown_keys() {
        let file = SourcesFile::parse(YAML, Path::new("s.yml")).unwrap();
        assert!(matches!(
            file.sources[0].kind,
            SourceKind::Folder {
                follow_symlinks: false,
                ..
            }
        ));
        let follow = YAML.replace(
            "location: ../drop",
            "location: ../drop\n    follow_symlinks: true",
        );
        let file = SourcesFile::parse(&follow, Path::new("s.yml")).unwrap();
        assert!(matches!(
            file.sources[0].kind,
            SourceKind::Folder {
                follow_symlinks: true,
                ..
            }
        ));
        let typo = YAML.replace(
            "location: ../drop",
            "location: ../drop\n    follow_symlink: true",
        );
        let err = SourcesFile::parse(&typo, Path::new("s.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("follow_symlink") && err.contains("s.yml"),
            "{err}"
        );
        let http = "sources:\n  - name: w\n    kind: http\n    url: https://x/\n    follow_symlinks: true\n    tables: []\n";
        assert!(SourcesFile::parse(http, Path::new("s.yml")).is_err());
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dup =
            format!("{YAML}  - name: shop\n    kind: folder\n    location: x\n    tables: []\n");
        assert!(SourcesFile::parse(&dup, Path::new("s.yml")).is_err());
    }
}
