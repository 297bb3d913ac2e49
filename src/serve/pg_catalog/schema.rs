//! A schema of Strata's own tables over another schema's: `pg_catalog` (the lake's tables
//! first, then PostgreSQL's fixed catalog data from datafusion-pg-catalog) and
//! `information_schema` (PostgreSQL's spelling first, then DataFusion's own tables).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::Result;

#[derive(Debug)]
pub struct Overlay {
    own: BTreeMap<&'static str, Arc<dyn TableProvider>>,
    fixed: Arc<dyn SchemaProvider>,
}

impl Overlay {
    pub fn new(
        own: impl IntoIterator<Item = (&'static str, Arc<dyn TableProvider>)>,
        fixed: Arc<dyn SchemaProvider>,
    ) -> Self {
        Self {
            own: own.into_iter().collect(),
            fixed,
        }
    }
}

#[async_trait]
impl SchemaProvider for Overlay {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.own.keys().map(|n| n.to_string()).collect();
        names.extend(
            self.fixed
                .table_names()
                .into_iter()
                .filter(|n| !self.own.contains_key(n.as_str())),
        );
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        match self.own.get(name) {
            Some(table) => Ok(Some(Arc::clone(table))),
            None => self.fixed.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.own.contains_key(name) || self.fixed.table_exist(name)
    }
}
