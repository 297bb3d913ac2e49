//! S3-compatible object storage: `s3://bucket/prefix` locations, the connection settings a
//! project may give (endpoint, region, plain HTTP) on top of the standard `AWS_*` environment
//! variables, and the stores built from them for lakes and for S3 sources. Credentials only
//! ever come from the environment (or the machine's AWS credential chain), never from files
//! in the project, and are never printed.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::ObjectStore;
use object_store::RetryConfig;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::path::Path;
use parking_lot::RwLock;
use serde::Deserialize;
use url::Url;

/// Connection settings for an S3-compatible service. Each one given here wins over its
/// `AWS_*` variable (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ALLOW_HTTP`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// The service's URL (`http://127.0.0.1:9000`); AWS itself when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Allow an `http://` endpoint (plain text, for services on loopback or a private network).
    #[serde(default)]
    pub allow_http: Option<bool>,
}

/// A validated `s3://bucket/prefix` location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `s3://bucket/prefix`, without a trailing slash.
    url: Url,
}

impl S3Location {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut url = Url::parse(text).map_err(|e| format!("{text}: {e}"))?;
        if url.scheme() != "s3" {
            return Err(format!("{text}: the scheme is not s3://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{text}: a bucket is needed, s3://bucket/prefix"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!("{text}: only s3://bucket/prefix is allowed"));
        }
        let trimmed = url.path().trim_end_matches('/').to_string();
        url.set_path(&trimmed);
        Ok(Self { url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `s3://bucket`: what a store serves and DataFusion registers it under.
    pub fn bucket_url(&self) -> Url {
        Url::parse(&format!("s3://{}", self.url.authority())).expect("s3://bucket is a URL")
    }

    /// The prefix as a store path (empty for the bucket's root).
    pub fn prefix(&self) -> Path {
        Path::from(self.url.path())
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.url)
    }
}

/// A store over `location`'s bucket: the `AWS_*` environment first, then `settings`.
pub fn store(
    location: &S3Location,
    settings: &S3Settings,
    retry: RetryConfig,
) -> Result<AmazonS3, object_store::Error> {
    builder(location, settings).with_retry(retry).build()
}

/// A store for a lake in `location`'s bucket, registered so Delta tables under it open with it.
///
/// Delta commits and bronze publishes must never overwrite: commits use S3's conditional put
/// (`If-None-Match: *`, object_store's default) and renames a copy that is completed only if
/// the target is absent (`multipart`), unless `AWS_COPY_IF_NOT_EXISTS` chooses another safe way.
/// Both need a service that honours those conditions (AWS S3, MinIO, moto do).
pub fn lake_store(
    location: &S3Location,
    settings: &S3Settings,
) -> Result<Arc<dyn ObjectStore>, object_store::Error> {
    let mut builder = builder(location, settings);
    if builder
        .get_config_value(&AmazonS3ConfigKey::CopyIfNotExists)
        .is_none()
    {
        builder = builder.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    }
    let store: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
    register_for_delta(location, Arc::clone(&store));
    Ok(store)
}

fn builder(location: &S3Location, settings: &S3Settings) -> AmazonS3Builder {
    let mut builder = AmazonS3Builder::from_env().with_url(location.bucket_url().as_str());
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let Some(allow) = settings.allow_http {
        builder = builder.with_allow_http(allow);
    }
    builder
}

/// Stores of the S3 lakes opened in this process, by bucket URL.
static LAKE_STORES: LazyLock<RwLock<HashMap<Url, Arc<dyn ObjectStore>>>> =
    LazyLock::new(Default::default);

/// Makes delta-rs open `s3://` tables in `location`'s bucket with `store`: it resolves stores
/// by URL scheme through global registries, and the lake's own store carries the project's
/// endpoint and safety settings (delta-rs' own S3 support would bring the AWS SDK for them).
fn register_for_delta(location: &S3Location, store: Arc<dyn ObjectStore>) {
    LAKE_STORES.write().insert(location.bucket_url(), store);
    let scheme = Url::parse("s3://").expect("valid URL");
    let factory = Arc::new(LakeStoreFactory);
    object_store_factories().insert(scheme.clone(), factory.clone());
    logstore_factories().insert(scheme, factory);
}

/// delta-rs' store and log-store factory for the `s3` scheme, over the opened lakes' stores.
struct LakeStoreFactory;

impl ObjectStoreFactory for LakeStoreFactory {
    fn parse_url_opts(
        &self,
        url: &Url,
        _config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let location =
            S3Location::parse(url.as_str()).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        let store = LAKE_STORES
            .read()
            .get(&location.bucket_url())
            .cloned()
            .ok_or_else(|| {
                DeltaTableError::Generic(format!("{url}: no lake is open in this bucket"))
            })?;
        Ok((store, location.prefix()))
    }
}

impl LogStoreFactory for LakeStoreFactory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        // The default log store commits with put-if-absent, which the lake's store provides.
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_keep_bucket_and_prefix() {
        let l = S3Location::parse("s3://data-bucket/exports/shop/").unwrap();
        assert_eq!(l.url().as_str(), "s3://data-bucket/exports/shop");
        assert_eq!(l.bucket_url().as_str(), "s3://data-bucket");
        assert_eq!(l.prefix().as_ref(), "exports/shop");
        assert_eq!(S3Location::parse("s3://b").unwrap().prefix().as_ref(), "");
    }

    #[test]
    fn bad_locations_are_refused() {
        for bad in [
            "s3:///x",
            "http://b/x",
            "s3://b/x?versionId=1",
            "s3://k:s@b/x",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }
}
