//! What the shell talks to: the embedded engine over the lake, or a PostgreSQL server. Both
//! answer statements with the same [`ResultSet`] and the catalog questions meta commands and
//! completion ask, so rendering, meta commands and completion are shared.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::error::ReplError;

/// How a column's values are shown: numbers right-aligned and bare in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Bool,
    Text,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// The type as the backend names it (`Int64`, `int8`, …).
    pub type_name: String,
    pub kind: Kind,
}

impl Column {
    pub fn text(name: &str) -> Self {
        Self {
            name: name.to_string(),
            type_name: "text".to_string(),
            kind: Kind::Text,
        }
    }

    pub fn number(name: &str) -> Self {
        Self {
            name: name.to_string(),
            type_name: "bigint".to_string(),
            kind: Kind::Number,
        }
    }
}

/// A statement's rows as display text (`None` is NULL), possibly only the first ones.
#[derive(Debug, Clone)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows the statement returned, kept or not.
    pub total_rows: u64,
}

impl ResultSet {
    /// A result whose rows are all kept.
    pub fn new(columns: Vec<Column>, rows: Vec<Vec<Option<String>>>) -> Self {
        let total_rows = rows.len() as u64;
        Self {
            columns,
            rows,
            total_rows,
        }
    }
}

/// A table or view as catalogs list it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: &str, name: &str) -> Self {
        Self {
            schema: schema.to_string(),
            name: name.to_string(),
        }
    }

    /// A name as typed: `t` (schema empty) or `s.t`; unquoted parts fold to lower case, as
    /// SQL identifiers do, and `"Quoted"` parts keep theirs.
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut part = String::new();
        let mut quoted = false;
        for c in text.trim().chars() {
            match c {
                '"' => quoted = !quoted,
                '.' if !quoted => parts.push(std::mem::take(&mut part)),
                c if quoted => part.push(c),
                c => part.extend(c.to_lowercase()),
            }
        }
        parts.push(part);
        let name = parts.pop().unwrap_or_default();
        Self {
            schema: parts.pop().unwrap_or_default(),
            name,
        }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// What `\d name` shows.
#[derive(Debug, Clone)]
pub struct Description {
    /// `table`, `view`, `bronze table (schema-on-read)`, …
    pub kind: String,
    /// Name, type and nullability of each column.
    pub columns: Vec<(String, String, bool)>,
    pub delta: Option<DeltaState>,
}

/// The Delta table behind a name, at its latest version.
#[derive(Debug, Clone)]
pub struct DeltaState {
    pub version: u64,
    pub files: usize,
    pub location: String,
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// What the shell is connected to, for its greeting.
    fn describe(&self) -> String;

    /// Runs one statement. Keeps at most `keep` rows (all when `None`) while counting every
    /// row; `None` for a statement that returns no columns. When `cancel` fires the query is
    /// stopped and the result is [`ReplError::Cancelled`].
    async fn run(
        &self,
        sql: &str,
        keep: Option<usize>,
        cancel: &CancellationToken,
    ) -> Result<Option<ResultSet>, ReplError>;

    /// Databases (`\l`): the catalog, or the server's databases.
    async fn databases(&self) -> Result<ResultSet, ReplError>;

    async fn schemas(&self) -> Result<Vec<String>, ReplError>;

    /// Every table and view; `with_kinds` adds each one's kind (may load each table).
    async fn tables(&self, with_kinds: bool) -> Result<Vec<(TableName, String)>, ReplError>;

    /// Column names of a table, for completion.
    async fn columns(&self, table: &TableName) -> Result<Vec<String>, ReplError>;

    async fn describe_table(&self, table: &TableName) -> Result<Description, ReplError>;

    /// The versions of a Delta table, newest first (`\history`).
    async fn history(&self, table: &TableName) -> Result<ResultSet, ReplError>;
}
