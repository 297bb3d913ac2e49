//! The stream positions bronze holds for a table, rebuilt from the ingest log: each stream
//! file's row records the positions it holds, as ranges.

use serde::{Deserialize, Serialize};

use crate::meta::IngestRecord;

/// What a stream file's ingest-log row says about it (its `source_state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    /// The stream incarnation the positions belong to.
    epoch: String,
    /// Inclusive ranges of positions, sorted and disjoint.
    positions: Vec<[u64; 2]>,
}

/// A set of stream positions as sorted, disjoint, non-adjacent inclusive ranges: a consumer
/// mostly delivers runs of consecutive positions, so this stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    ranges: Vec<[u64; 2]>,
}

impl Positions {
    /// The positions that `records` (one table's log rows) hold under `epoch`.
    pub fn landed<'a>(records: impl IntoIterator<Item = &'a IngestRecord>, epoch: &str) -> Self {
        let mut ranges = Vec::new();
        for record in records {
            let Some(state) = record
                .source_state
                .as_deref()
                .and_then(|s| serde_json::from_str::<State>(s).ok())
            else {
                continue;
            };
            if state.epoch == epoch {
                ranges.extend(state.positions);
            }
        }
        Self::normalized(ranges)
    }

    /// The set of `positions`, in any order, repeats allowed.
    pub fn of(positions: impl IntoIterator<Item = u64>) -> Self {
        Self::normalized(positions.into_iter().map(|p| [p, p]).collect())
    }

    fn normalized(mut ranges: Vec<[u64; 2]>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<[u64; 2]> = Vec::with_capacity(ranges.len());
        for [first, last] in ranges {
            match merged.last_mut() {
                Some(prev) if first <= prev[1].saturating_add(1) => prev[1] = prev[1].max(last),
                _ => merged.push([first, last]),
            }
        }
        Self { ranges: merged }
    }

    pub fn contains(&self, position: u64) -> bool {
        let i = self.ranges.partition_point(|r| r[1] < position);
        self.ranges.get(i).is_some_and(|r| r[0] <= position)
    }

    pub fn extend(&mut self, other: &Self) {
        let mut ranges = std::mem::take(&mut self.ranges);
        ranges.extend_from_slice(&other.ranges);
        *self = Self::normalized(ranges);
    }

    /// The `source_state` of a file holding these positions of `epoch`.
    pub fn state(&self, epoch: &str) -> String {
        let state = State {
            epoch: epoch.to_string(),
            positions: self.ranges.clone(),
        };
        serde_json::to_string(&state).expect("stream state serializes")
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn record(state: Option<String>) -> IngestRecord {
        IngestRecord {
            batch_id: "b".into(),
            source: "s".into(),
            table_name: "t".into(),
            format: "ndjson".into(),
            source_path: "nats://h/S/x".into(),
            bronze_path: "bronze/s/t/x.ndjson".into(),
            bytes: 1,
            sha256: "00".into(),
            landed_at: Utc::now(),
            source_state: state,
        }
    }

    #[test]
    fn ranges_merge_and_answer_membership() {
        let set = Positions::of([5, 3, 4, 9, 10, 4, 1]);
        assert_eq!(set.ranges, [[1, 1], [3, 5], [9, 10]]);
        for (p, inside) in [
            (0, false),
            (1, true),
            (2, false),
            (4, true),
            (8, false),
            (10, true),
        ] {
            assert_eq!(set.contains(p), inside, "{p}");
        }
        let mut more = set.clone();
        more.extend(&Positions::of([2, 6, 7, 8, u64::MAX]));
        assert_eq!(more.ranges, [[1, 10], [u64::MAX, u64::MAX]]);
    }

    #[test]
    fn log_rows_of_other_epochs_or_kinds_are_ignored() {
        let rows = [
            record(Some(Positions::of(1..=100).state("S@1"))),
            record(Some(Positions::of([150, 151]).state("S@1"))),
            record(Some(Positions::of(1..=500).state("S@0"))),
            record(Some(r#"{"etag":"x"}"#.into())),
            record(None),
        ];
        let landed = Positions::landed(&rows, "S@1");
        assert_eq!(landed.ranges, [[1, 100], [150, 151]]);
    }
}
