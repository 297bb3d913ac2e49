//! View definitions, one SQL file per view in the lake, replaced atomically.

use bytes::Bytes;
use object_store::ObjectStoreExt;

use crate::lake::{Lake, layout};

/// Saves (or replaces) the definition of `schema.name`.
pub async fn save(lake: &Lake, schema: &str, name: &str, sql: &str) -> object_store::Result<()> {
    // A put is atomic on every store Strata uses: readers see the old or the new definition.
    lake.store()
        .put(
            &layout::view_file(schema, name),
            Bytes::from(sql.to_string()).into(),
        )
        .await
        .map(|_| ())
}

/// The definition of `schema.name`, if it is a view.
pub async fn load(lake: &Lake, schema: &str, name: &str) -> object_store::Result<Option<String>> {
    match lake.store().get(&layout::view_file(schema, name)).await {
        Ok(found) => Ok(Some(
            String::from_utf8_lossy(&found.bytes().await?).into_owned(),
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes the definition of `schema.name` (a model that became a table).
pub async fn remove(lake: &Lake, schema: &str, name: &str) -> object_store::Result<()> {
    match lake.store().delete(&layout::view_file(schema, name)).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
