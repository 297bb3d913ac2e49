//! Strata's catalog: `bronze` (schema-on-read), `public` (session-local temporary views) and a
//! schema per modelled layer, whose tables are looked up in the lake when a query names them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::datasource::ViewTable;
use datafusion::execution::SessionState;
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::RwLock;
use tracing::Instrument;

use super::lake_table::LakeTable;
use super::views;
use crate::lake::snapshots::Snapshots;
use crate::lake::{Lake, layout};

/// Schema of session-local objects.
pub const PUBLIC: &str = "public";
/// Schema of the raw layer.
pub const BRONZE: &str = "bronze";
/// Schema of Strata's own metadata tables (ingest log, runs).
pub const META: &str = "_strata";

/// The session a catalog serves, set once that session exists: views are planned and Delta
/// stores registered in it. Weak, because the session owns the catalog.
#[derive(Debug, Default)]
pub struct SessionHandle(RwLock<Option<Weak<RwLock<SessionState>>>>);

impl SessionHandle {
    pub fn set(&self, state: Weak<RwLock<SessionState>>) {
        *self.0.write() = Some(state);
    }

    fn state(&self) -> Result<SessionState> {
        let state = self.0.read().as_ref().and_then(Weak::upgrade);
        match state {
            Some(state) => Ok(state.read().clone()),
            None => Err(DataFusionError::Internal(
                "the catalog's session is gone".into(),
            )),
        }
    }
}

#[derive(Debug)]
pub struct LakeCatalog {
    lake: Lake,
    snapshots: Arc<Snapshots>,
    bronze: Arc<dyn SchemaProvider>,
    public: Arc<dyn SchemaProvider>,
    session: Arc<SessionHandle>,
    /// Tables and views per modelled schema as of the last [`LakeCatalog::refresh`] (listing
    /// is synchronous in DataFusion; lookups by name always go to the lake).
    listing: Arc<RwLock<BTreeMap<String, BTreeSet<String>>>>,
    /// Schemas registered by the embedder (the server's `pg_catalog`), which take precedence
    /// over layers of the same name.
    registered: RwLock<BTreeMap<String, Arc<dyn SchemaProvider>>>,
}

impl LakeCatalog {
    /// A catalog over `lake`, reading Delta tables through `snapshots` (shared by the
    /// sessions over one lake).
    pub fn new(lake: Lake, snapshots: Arc<Snapshots>, bronze: Arc<dyn SchemaProvider>) -> Self {
        Self {
            lake,
            snapshots,
            bronze,
            public: Arc::new(MemorySchemaProvider::new()),
            session: Arc::default(),
            listing: Arc::default(),
            registered: RwLock::default(),
        }
    }

    pub fn session(&self) -> &Arc<SessionHandle> {
        &self.session
    }

    fn model_schema(&self, name: &str) -> ModelSchema {
        ModelSchema {
            lake: self.lake.clone(),
            snapshots: Arc::clone(&self.snapshots),
            schema: name.to_string(),
            session: Arc::clone(&self.session),
            listing: Arc::clone(&self.listing),
        }
    }

    /// Lists the modelled schemas and their tables and views.
    pub async fn refresh(&self) -> Result<()> {
        let store = self.lake.store();
        let mut listing: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for schema in child_dirs(store, None).await? {
            if layout::RESERVED_SCHEMAS.contains(&schema.as_str()) {
                continue;
            }
            let tables = child_dirs(store, Some(&Path::from(schema.as_str()))).await?;
            listing.entry(schema).or_default().extend(tables);
        }
        let meta_tables = child_dirs(store, Some(&Path::from(META))).await?;
        listing.insert(
            META.to_string(),
            meta_tables
                .into_iter()
                .filter(|t| !layout::META_SCRATCH.contains(&t.as_str()))
                .collect(),
        );
        for schema in child_dirs(store, Some(&layout::view_dir(""))).await? {
            let views = store
                .list_with_delimiter(Some(&layout::view_dir(&schema)))
                .await?;
            let names = views.objects.iter().filter_map(|o| {
                o.location
                    .filename()?
                    .strip_suffix(".sql")
                    .map(str::to_string)
            });
            listing.entry(schema).or_default().extend(names);
        }
        *self.listing.write() = listing;
        Ok(())
    }
}

/// Names of the directories directly under `prefix`.
async fn child_dirs(store: &Arc<dyn ObjectStore>, prefix: Option<&Path>) -> Result<Vec<String>> {
    match store.list_with_delimiter(prefix).await {
        Ok(list) => Ok(list
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect()),
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// A name usable as a schema or table directory.
fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with('_')
}

impl CatalogProvider for LakeCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = vec![BRONZE.to_string(), PUBLIC.to_string()];
        names.extend(self.listing.read().keys().filter(|k| *k != META).cloned());
        names.push(META.to_string());
        names.extend(self.registered.read().keys().cloned());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some(schema) = self.registered.read().get(name) {
            return Some(Arc::clone(schema));
        }
        match name {
            BRONZE => Some(Arc::clone(&self.bronze)),
            PUBLIC => Some(Arc::clone(&self.public)),
            META => Some(Arc::new(self.model_schema(META))),
            // Any plain name may be a layer: models create schemas by writing to them.
            _ if plain_identifier(name) => Some(Arc::new(self.model_schema(name))),
            _ => None,
        }
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        Ok(self.registered.write().insert(name.to_string(), schema))
    }
}

/// One modelled schema (or `_strata`): Delta tables, read at their latest version, and views.
#[derive(Debug)]
struct ModelSchema {
    lake: Lake,
    snapshots: Arc<Snapshots>,
    schema: String,
    session: Arc<SessionHandle>,
    listing: Arc<RwLock<BTreeMap<String, BTreeSet<String>>>>,
}

impl ModelSchema {
    /// The table or view `name` of this schema: a Delta table at its latest version.
    async fn lookup(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if !plain_identifier(name) || (self.schema == META && !self.table_exist(name)) {
            return Ok(None);
        }
        let path = layout::model_table(&self.schema, name);
        let qualified = format!("{}.{name}", self.schema);
        let state = self.session.state()?;
        if let Some(table) =
            LakeTable::latest(&self.lake, &self.snapshots, path, qualified, &state).await?
        {
            return Ok(Some(Arc::new(table)));
        }
        if let Some(sql) = views::load(&self.lake, &self.schema, name).await? {
            let plan = state
                .create_logical_plan(&sql)
                .await
                .map_err(|e| e.context(format!("planning view {}.{name}", self.schema)))?;
            return Ok(Some(Arc::new(ViewTable::new(plan, Some(sql)))));
        }
        Ok(None)
    }
}

#[async_trait]
impl SchemaProvider for ModelSchema {
    fn table_names(&self) -> Vec<String> {
        self.listing
            .read()
            .get(&self.schema)
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let span = tracing::debug_span!("table", schema = %self.schema, name);
        self.lookup(name).instrument(span).await
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        plan_err!(
            "{}.{name} is built by models; create temporary views in {PUBLIC} instead",
            self.schema
        )
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names().iter().any(|n| n == name)
    }
}
