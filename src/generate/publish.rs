//! `strata generate --publish-events`: the generated clickstream, one message per event, onto a
//! NATS JetStream subject, so a stream source can land what the folder source lands from files.

use std::path::Path;

use bytes::Bytes;

use super::{GenerateError, Manifest};
use crate::land::stream::nats::{PublishTarget, Published};

/// The entity whose records are events.
const EVENTS: &str = "events";

/// Publishes every line of the manifest's events files (in date order) to `target`. Message
/// ids are the file's hash and the line number, so publishing the same output twice within the
/// stream's duplicate window stores it once, while the duplicates the generator writes on
/// purpose stay distinct messages. Events are sliced from the files' bytes as they are sent.
pub async fn publish_events(
    manifest: &Manifest,
    out: &Path,
    target: &PublishTarget,
) -> Result<Published, GenerateError> {
    let mut files = Vec::new();
    for file in manifest.files.iter().filter(|f| f.entity == EVENTS) {
        let path = out.join(&file.path);
        let bytes = std::fs::read(&path).map_err(|source| GenerateError::Io {
            path: path.clone(),
            source,
        })?;
        files.push((&file.sha256[..16], Bytes::from(bytes)));
    }
    let mut events = files
        .iter()
        .flat_map(|(hash, bytes)| {
            bytes
                .split(|&b| b == b'\n')
                .enumerate()
                .filter(|(_, line)| !line.is_empty())
                .map(move |(n, line)| (format!("{hash}:{}", n + 1), bytes.slice_ref(line)))
        })
        .peekable();
    if events.peek().is_none() {
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
