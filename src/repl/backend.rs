//! What the shell talks to: the embedded engine over the lake, or a PostgreSQL server. Both
//! answer statements with the same [`ResultSet`] and the catalog questions meta commands and
//! completion ask, so rendering, meta commands and completion are shared.

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::error::ReplError;
use crate::sql::results::ResultSet;

/// A table or view as catalogs list it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    #[cfg(test)]
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
