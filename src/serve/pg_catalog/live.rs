//! A snapshot of the session's catalog as PostgreSQL sees it: namespaces and relations with
//! stable oids, their columns and descriptions. The catalog tables and functions are all
//! built from it, so one client query sees one consistent catalog.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::FieldRef;
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::common::Result;
use datafusion::datasource::TableType;
use futures::future::join_all;
use parking_lot::Mutex;

use super::descriptions::Descriptions;
use crate::warehouse::catalog::PUBLIC;

/// Namespace oids PostgreSQL fixes; clients sometimes compare against them.
pub const PG_CATALOG_OID: i32 = 11;
pub const PUBLIC_OID: i32 = 2200;
pub const INFORMATION_SCHEMA_OID: i32 = 13_000;
pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";
/// oid of the database, the owner role and the first oid PostgreSQL gives user objects.
pub const DATABASE_OID: i32 = 16_384;
pub const OWNER_OID: i32 = 10;
const FIRST_USER_OID: u32 = 16_385;

/// How long a snapshot serves: long enough for the several catalog tables one client query
/// reads, short enough that a model built meanwhile shows up on the next command.
const FRESH_FOR: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Namespace {
    pub oid: i32,
    pub name: String,
}

#[derive(Debug)]
pub struct LiveRelation {
    pub oid: i32,
    pub namespace: i32,
    pub schema: String,
    pub name: String,
    pub view: bool,
    /// A view's SQL.
    pub definition: Option<String>,
    pub columns: Vec<FieldRef>,
    pub description: Option<String>,
    /// Column descriptions by attnum - 1.
    pub column_descriptions: Vec<Option<String>>,
}

#[derive(Debug, Default)]
pub struct Snapshot {
    pub namespaces: Vec<Namespace>,
    pub relations: Vec<LiveRelation>,
    by_oid: HashMap<i32, usize>,
}

impl Snapshot {
    pub fn relation(&self, oid: i32) -> Option<&LiveRelation> {
        self.by_oid.get(&oid).map(|i| &self.relations[*i])
    }
}

/// The live catalog of one session, snapshotted on demand.
#[derive(Debug)]
pub struct Live {
    catalog: Arc<dyn CatalogProvider>,
    descriptions: Arc<Descriptions>,
    latest: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

impl Live {
    pub fn new(catalog: Arc<dyn CatalogProvider>, descriptions: Arc<Descriptions>) -> Self {
        Self {
            catalog,
            descriptions,
            latest: Mutex::new(None),
        }
    }

    /// A fresh snapshot (or one taken within [`FRESH_FOR`]).
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>> {
        if let Some((at, snapshot)) = self.latest.lock().as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(snapshot));
        }
        let snapshot = Arc::new(self.take().await?);
        *self.latest.lock() = Some((Instant::now(), Arc::clone(&snapshot)));
        Ok(snapshot)
    }

    /// The last snapshot taken, for the synchronous functions (`obj_description`,
    /// `pg_table_is_visible`), which always run after the scan of the catalog table that
    /// produced their oid arguments.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.latest.lock().as_ref().map(|(_, s)| Arc::clone(s))
    }

    async fn take(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::default();
        let mut pending = Vec::new();
        for schema_name in self.catalog.schema_names() {
            let Some(schema) = self.catalog.schema(&schema_name) else {
                continue;
            };
            let oid = namespace_oid(&schema_name);
            snapshot.namespaces.push(Namespace {
                oid,
                name: schema_name.clone(),
            });
            for table in schema.table_names() {
                pending.push(self.relation(Arc::clone(&schema), oid, schema_name.clone(), table));
            }
        }
        for relation in join_all(pending).await.into_iter().flatten() {
            snapshot
                .by_oid
                .insert(relation.oid, snapshot.relations.len());
            snapshot.relations.push(relation);
        }
        Ok(snapshot)
    }

    /// One relation, or None when it is gone or cannot be opened (a broken view must not
    /// hide the rest of the catalog).
    async fn relation(
        &self,
        schema: Arc<dyn SchemaProvider>,
        namespace: i32,
        schema_name: String,
        name: String,
    ) -> Option<LiveRelation> {
        let provider = match schema.table(&name).await {
            Ok(Some(provider)) => provider,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("pg_catalog skips {schema_name}.{name}: {e}");
                return None;
            }
        };
        let columns: Vec<FieldRef> = provider.schema().fields().iter().cloned().collect();
        let doc = self.descriptions.relation(&schema_name, &name);
        let column_descriptions = columns
            .iter()
            .map(|f| doc.and_then(|d| d.columns.get(f.name()).cloned()))
            .collect();
        Some(LiveRelation {
            oid: relation_oid(&schema_name, &name),
            namespace,
            view: provider.table_type() == TableType::View,
            definition: provider.get_table_definition().map(str::to_string),
            description: doc.and_then(|d| d.description.clone()),
            schema: schema_name,
            name,
            columns,
            column_descriptions,
        })
    }
}

pub fn namespace_oid(name: &str) -> i32 {
    match name {
        PG_CATALOG => PG_CATALOG_OID,
        PUBLIC => PUBLIC_OID,
        INFORMATION_SCHEMA => INFORMATION_SCHEMA_OID,
        _ => user_oid(&[name]),
    }
}

/// PostgreSQL's own oids for the catalog tables clients name in `'…'::regclass` casts and
/// compare `classoid` with; other relations get an oid derived from their name, so it stays
/// the same across connections (clients cache oids).
pub fn relation_oid(schema: &str, name: &str) -> i32 {
    if schema == PG_CATALOG {
        let fixed = match name {
            "pg_type" => Some(1247),
            "pg_attribute" => Some(1249),
            "pg_proc" => Some(1255),
            "pg_class" => Some(1259),
            "pg_database" => Some(1262),
            "pg_constraint" => Some(2606),
            "pg_description" => Some(2609),
            "pg_index" => Some(2610),
            "pg_namespace" => Some(2615),
            _ => None,
        };
        if let Some(oid) = fixed {
            return oid;
        }
    }
    user_oid(&[schema, name])
}

/// FNV-1a of the parts, folded into PostgreSQL's user oid range below 2^31 (oids travel
/// as int4 here).
fn user_oid(parts: &[&str]) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in parts.join(".").bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    let span = i32::MAX as u32 - FIRST_USER_OID;
    (FIRST_USER_OID + hash % span) as i32
}
