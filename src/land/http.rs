//! The `http` source kind: one file at a URL, or the files a listing at that URL links to
//! (a JSON index or an HTML directory page), fetched with conditional GETs.
//!
//! Each landed file's validators (ETag, Last-Modified) are kept in its ingest-log row, and the
//! next run sends them back (`If-None-Match`, `If-Modified-Since`): a `304 Not Modified` file is
//! not downloaded again. A changed file is streamed into a scratch file while it is hashed;
//! content a table already holds (same sha256) is dropped, anything else renamed into bronze.
//! Connection failures, timeouts, 5xx and 429 answers and bodies cut short are retried with
//! exponential backoff; any other 4xx fails the file at once, naming its URL.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt, stream};
use globset::{Glob, GlobMatcher};
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{Client, Response, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use super::copy::{self, Digested};
use super::declaration::{Listing, TableDecl};
use super::source::{Landing, ScratchFile, Source, TableFailure, TableOutcome, extension_of};
use super::{LandError, error_chain, progress_bar, redacted};
use crate::meta::IngestRecord;

/// Attempts per request before giving up (the first try included).
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A response or body that sends nothing for this long is a timeout (retried).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

pub struct HttpSource {
    source: String,
    url: String,
    listing: Option<Listing>,
    client: Client,
}

/// A landed file's HTTP validators, kept in its ingest-log row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_modified: Option<String>,
}

impl Validators {
    fn of(response: &Response) -> Self {
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        }
    }

    fn state(&self) -> Option<String> {
        (self.etag.is_some() || self.last_modified.is_some())
            .then(|| serde_json::to_string(self).expect("validators serialize"))
    }
}

/// What one attempt at a request came to.
enum Attempt<T> {
    Done(T),
    /// Worth another try: a connection failure, a timeout, a 5xx or 429, a body cut short.
    Retry(String),
}

/// The outcome of fetching one file.
enum Fetched {
    NotModified,
    /// In a scratch file, not yet visible.
    Scratch(object_store::path::Path, Digested, Validators),
}

impl HttpSource {
    pub fn new(source: &str, url: &str, listing: Option<Listing>) -> Self {
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        Self {
            source: source.to_string(),
            url: url.to_string(),
            listing,
            client,
        }
    }

    fn error(url: &str, message: impl Into<String>) -> LandError {
        LandError::Http {
            url: redacted(url),
            message: message.into(),
        }
    }

    /// Runs `attempt` until it is done, fails for good, or has been tried [`ATTEMPTS`] times,
    /// waiting longer before each retry.
    async fn retrying<T, F, Fut>(&self, url: &str, mut attempt: F) -> Result<T, LandError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Attempt<T>, LandError>>,
    {
        let mut backoff = FIRST_BACKOFF;
        for n in 1..=ATTEMPTS {
            match attempt().await? {
                Attempt::Done(value) => return Ok(value),
                Attempt::Retry(why) if n == ATTEMPTS => {
                    return Err(Self::error(
                        url,
                        format!("{why} (gave up after {ATTEMPTS} attempts)"),
                    ));
                }
                Attempt::Retry(why) => {
                    let url = redacted(url);
                    tracing::warn!(source = %self.source, url, "{why}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Sends a GET, sorting the answer into done (2xx, 304), retry or a clear failure.
    async fn get(
        &self,
        url: &str,
        validators: Option<&Validators>,
    ) -> Result<Attempt<Response>, LandError> {
        let mut request = self.client.get(url);
        if let Some(v) = validators {
            if let Some(etag) = &v.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(date) = &v.last_modified {
                request = request.header(IF_MODIFIED_SINCE, date);
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_builder() => return Err(Self::error(url, e.to_string())),
            Err(e) => return Ok(Attempt::Retry(describe(e))),
        };
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Ok(Attempt::Retry(format!("HTTP {status}")));
        }
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Ok(Attempt::Done(response));
        }
        Err(Self::error(url, format!("HTTP {status}")))
    }

    /// The files offered for `table`: the source URL itself, or the listing's links, whose
    /// paths (relative to the listing) match the table's pattern.
    async fn discover(&self, table: &TableDecl) -> Result<Vec<Url>, LandError> {
        let base = Url::parse(&self.url).map_err(|e| Self::error(&self.url, e.to_string()))?;
        let matcher = Glob::new(table.file_pattern())
            .expect("patterns are validated when the declaration loads")
            .compile_matcher();
        let Some(listing) = self.listing else {
            let name = base.path_segments().and_then(|mut s| s.next_back());
            return Ok(if matcher.is_match(name.unwrap_or_default()) {
                vec![base]
            } else {
                Vec::new()
            });
        };
        let body = self
            .retrying(&self.url, || async {
                Ok(match self.get(&self.url, None).await? {
                    Attempt::Done(response) => match response.text().await {
                        Ok(text) => Attempt::Done(text),
                        Err(e) => Attempt::Retry(describe(e)),
                    },
                    Attempt::Retry(why) => Attempt::Retry(why),
                })
            })
            .await?;
        let links = match listing {
            Listing::Json => json_links(&body)
                .map_err(|e| Self::error(&self.url, format!("not a JSON listing: {e}")))?,
            Listing::Html => html_links(&body),
        };
        let mut seen = HashSet::new();
        let mut files = Vec::new();
        for link in links {
            let Ok(url) = base.join(&link) else { continue };
            if matches(&base, &url, &matcher) && seen.insert(url.clone()) {
                files.push(url);
            }
        }
        Ok(files)
    }

    /// Downloads `url` into a scratch file unless it is unchanged since `previous`, retrying
    /// transient failures, a body cut short included.
    async fn fetch(
        &self,
        landing: &Landing<'_>,
        url: &str,
        previous: Option<&Validators>,
        progress: &indicatif::ProgressBar,
    ) -> Result<Fetched, LandError> {
        self.retrying(url, || async {
            let response = match self.get(url, previous).await? {
                Attempt::Done(response) => response,
                Attempt::Retry(why) => return Ok(Attempt::Retry(why)),
            };
            if response.status() == StatusCode::NOT_MODIFIED {
                return Ok(Attempt::Done(Fetched::NotModified));
            }
            let validators = Validators::of(&response);
            let owned = url.to_string();
            let body = response
                .bytes_stream()
                .map_err(move |e| Self::error(&owned, format!("body cut short: {}", describe(e))))
                .boxed();
            match copy::write_scratch(landing.lake, body, |n| progress.inc(n)).await {
                Ok((tmp, written)) => Ok(Attempt::Done(Fetched::Scratch(tmp, written, validators))),
                Err(LandError::Http { message, .. }) => Ok(Attempt::Retry(message)),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn land_table(
        &self,
        table: &TableDecl,
        landing: &Landing<'_>,
        outcome: &mut TableOutcome,
    ) -> Result<(), TableFailure> {
        let urls = self.discover(table).await.map_err(TableFailure::Source)?;
        outcome.report.offered = urls.len();
        let history: Vec<&IngestRecord> = landing.history_of(table).collect();
        // The validators of each URL's latest landed version.
        let previous = |url: &str| {
            history
                .iter()
                .rev()
                .find(|r| r.source_path == redacted(url))
                .and_then(|r| serde_json::from_str::<Validators>(r.source_state.as_deref()?).ok())
        };
        let progress = progress_bar(landing.show_progress, 0);
        let fetched: Vec<(Url, Result<Fetched, LandError>)> = stream::iter(urls)
            .map(|url| {
                let validators = previous(url.as_str());
                let progress = &progress;
                async move {
                    let result = self
                        .fetch(landing, url.as_str(), validators.as_ref(), progress)
                        .await;
                    (url, result)
                }
            })
            .buffered(landing.concurrency)
            .collect()
            .await;
        progress.finish_and_clear();

        let mut scratch = Vec::new();
        for (url, result) in fetched {
            match result {
                Ok(Fetched::NotModified) => outcome.report.skipped += 1,
                Ok(Fetched::Scratch(tmp, written, validators)) => scratch.push(ScratchFile {
                    location: redacted(url.as_str()),
                    extension: extension_of(url.path()),
                    tmp,
                    written,
                    state: validators.state(),
                }),
                Err(error) => outcome.failures.push(error),
            }
        }
        landing
            .publish(table, scratch, &mut outcome.report)
            .await
            .map_err(TableFailure::Abort)
    }
}

/// Whether a listed `url` belongs to a table: its path relative to the listing's directory
/// (or, for a link elsewhere, its file name) matches the table's glob.
fn matches(base: &Url, url: &Url, matcher: &GlobMatcher) -> bool {
    let dir = &base.path()[..base.path().rfind('/').map_or(0, |i| i + 1)];
    let same_origin = url.origin() == base.origin();
    let relative = match url.path().strip_prefix(dir) {
        Some(rest) if same_origin => rest,
        _ => url.path().rsplit('/').next().unwrap_or_default(),
    };
    !relative.is_empty() && !relative.ends_with('/') && matcher.is_match(relative)
}

/// Links of a JSON listing: an array (or an object's `files` array) of strings or of objects
/// with a `url`, `href`, `path` or `name` field.
fn json_links(body: &str) -> Result<Vec<String>, String> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let entries = match &value {
        serde_json::Value::Array(entries) => entries,
        serde_json::Value::Object(fields) => match fields.get("files") {
            Some(serde_json::Value::Array(entries)) => entries,
            _ => return Err("expected an array, or an object with a `files` array".into()),
        },
        _ => return Err("expected an array, or an object with a `files` array".into()),
    };
    entries
        .iter()
        .map(|entry| match entry {
            serde_json::Value::String(link) => Ok(link.clone()),
            serde_json::Value::Object(fields) => ["url", "href", "path", "name"]
                .iter()
                .find_map(|key| fields.get(*key)?.as_str().map(str::to_string))
                .ok_or_else(|| format!("entry {entry} has no url, href, path or name")),
            other => Err(format!("entry {other} is not a string or an object")),
        })
        .collect()
}

/// The `href`s of an HTML page's links, minus sorting links, anchors and parent directories.
fn html_links(body: &str) -> Vec<String> {
    let mut links = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("href=") {
        let start = from + at + "href=".len();
        let rest = &body[start..];
        let (link, used) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
                Some(end) => (&rest[1..1 + end], end + 2),
                None => break,
            },
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .unwrap_or(rest.len());
                (&rest[..end], end)
            }
        };
        from = start + used;
        let link = html_unescape(link.trim());
        if link.is_empty() || link.starts_with(['?', '#']) || link.starts_with("../") {
            continue;
        }
        links.push(link);
    }
    links
}

/// The character references a server puts into `href`s.
fn html_unescape(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// A reqwest error with its causes (the top level alone says little: "error sending request"),
/// without its URL: messages name the URL once, masked.
fn describe(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_listings_yield_file_links() {
        let page = r#"<html><body><a href="?C=N;O=D">Name</a> <a href="../">Parent</a>
            <A HREF="orders_1.csv">orders_1.csv</A> <a href='sub/orders_2.csv'>x</a>
            <a href=notes.txt>n</a> <a href="a&amp;b.csv">ab</a></body></html>"#;
        assert_eq!(
            html_links(page),
            ["orders_1.csv", "sub/orders_2.csv", "notes.txt", "a&b.csv"]
        );
    }

    #[test]
    fn json_listings_take_strings_or_objects() {
        assert_eq!(
            json_links(r#"["a.csv", "b.csv"]"#).unwrap(),
            ["a.csv", "b.csv"]
        );
        assert_eq!(
            json_links(r#"{"files": [{"url": "x/a.csv", "size": 3}, {"name": "b.csv"}]}"#).unwrap(),
            ["x/a.csv", "b.csv"]
        );
        assert!(json_links(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(redacted("https://u:pw@h/a.csv"), "https://u:***@h/a.csv");
        assert_eq!(redacted("https://h/a.csv"), "https://h/a.csv");
    }

    #[test]
    fn links_match_relative_to_the_listing() {
        let base = Url::parse("http://h/data/index.json").unwrap();
        let glob = |p: &str| Glob::new(p).unwrap().compile_matcher();
        let url = |l: &str| base.join(l).unwrap();
        assert!(matches(&base, &url("orders/a.csv"), &glob("orders/*.csv")));
        assert!(!matches(&base, &url("a.csv"), &glob("orders/*.csv")));
        assert!(matches(&base, &url("http://other/x/a.csv"), &glob("*.csv")));
        assert!(!matches(&base, &url("orders/"), &glob("*")));
    }
}
