//! `strata generate --publish-events`: the generated clickstream, one message per event, onto a
//! NATS JetStream subject, so a stream source can land what the folder source lands from files.

use std::path::Path;

use bytes::Bytes;

use super::{GenerateError, Manifest};
use crate::land::stream::nats::{PublishTarget, Published};

/// The entity whose records are events.
const EVENTS: &str = "events";

/// Publishes every line of the manifest's events files (in date order) to `target`. Message ids are the file's hash and the line number, so
/// publishing the same output twice within the stream's duplicate window stores it once, while
/// the duplicates the generator writes on purpose stay distinct messages.
pub async fn publish_events(
    manifest: &Manifest,
    out: &Path,
    target: &PublishTarget,
) -> Result<Published, GenerateError> {
    let mut events = Vec::new();
    for file in manifest.files.iter().filter(|f| f.entity == EVENTS) {
        let path = out.join(&file.path);
        let bytes = Bytes::from(std::fs::read(&path).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?);
        let mut start = 0;
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let end = start + line.len();
            if !line.is_empty() {
                let id = format!("{}:{}", &file.sha256[..16], n + 1);
                events.push((id, bytes.slice(start..end)));
            }
            start = end + 1;
        }
    }
    if events.is_empty() {
        return Err(GenerateError::InvalidArgs(
            "--publish-events needs the events entity: include ndjson in --formats".into(),
        ));
    }
    target
        .publish(events)
        .await
        .map_err(|source| GenerateError::Publish {
            target: target.to_string(),
            source,
        })
}
