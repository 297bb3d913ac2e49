//! The shape of a run, fixed before any file is written: which ids each batch introduces,
//! batch dates, and one independent random stream per (entity, batch).
//!
//! Everything here is a pure function of the arguments, so files can be written on any thread
//! in any order and still agree with each other.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::calendar::START_DAY;
use super::options::{GenerateArgs, Rates};

/// Batches are 0-based in code and 1-based in file names and the manifest.
pub(super) struct Plan {
    pub seed: u64,
    pub batches: u32,
    pub rates: Rates,
    pub drift: bool,
    pub customers: Ids,
    pub products: Ids,
    pub orders: Ids,
}

impl Plan {
    pub(super) fn new(args: &GenerateArgs) -> Self {
        let batches = args.batches;
        let customers = (args.scale / 10).max(10);
        let products = (args.scale / 100).max(20);
        Plan {
            seed: args.seed,
            batches,
            rates: args.rates(),
            drift: args.drift(),
            // Reference data mostly arrives in the first drop, a trickle of new rows after.
            customers: Ids::spread(customers, batches, customers * 7 / 10),
            products: Ids::spread(products, batches, products * 8 / 10),
            orders: Ids::spread(args.scale, batches, args.scale / u64::from(batches)),
        }
    }

    /// Day number of a batch's drop.
    pub(super) fn day(&self, batch: u32) -> i64 {
        START_DAY + i64::from(batch)
    }

    /// Whether a batch carries the drifted schema.
    pub(super) fn drifted(&self, batch: u32) -> bool {
        self.drift && batch > 0
    }

    /// The random stream of one (entity, batch): ChaCha streams are independent by design, so
    /// no file's values depend on another's.
    pub(super) fn rng(&self, entity: u32, batch: u32) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream((u64::from(entity) << 32) | u64::from(batch));
        rng
    }
}

/// Sequential ids (from 1) handed out batch by batch.
pub(super) struct Ids {
    /// `ends[b]` is the last id that exists once batch `b` is written.
    ends: Vec<u64>,
}

impl Ids {
    /// `total` ids: `first` in batch 0 (all of them if there is one batch), the rest spread
    /// evenly over later batches, earlier batches taking the remainder.
    fn spread(total: u64, batches: u32, first: u64) -> Self {
        let later = u64::from(batches - 1);
        let first = if later == 0 { total } else { first.min(total) };
        let rest = total - first;
        let mut ends = vec![first];
        for b in 0..later {
            let share = rest / later + u64::from(b < rest % later);
            ends.push(ends[ends.len() - 1] + share);
        }
        Ids { ends }
    }

    /// Ids introduced by `batch`.
    pub(super) fn new_in(&self, batch: u32) -> std::ops::RangeInclusive<u64> {
        let b = batch as usize;
        let start = if b == 0 { 1 } else { self.ends[b - 1] + 1 };
        start..=self.ends[b]
    }

    /// Ids `1..=known(batch)` exist once `batch` is written.
    pub(super) fn known(&self, batch: u32) -> u64 {
        self.ends[batch as usize]
    }

    /// The batch that introduced `id`.
    pub(super) fn batch_of(&self, id: u64) -> u32 {
        self.ends.partition_point(|&end| end < id) as u32
    }

    pub(super) fn total(&self) -> u64 {
        self.ends[self.ends.len() - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_covers_every_id_once() {
        let ids = Ids::spread(10, 4, 4);
        assert_eq!(ids.new_in(0), 1..=4);
        assert_eq!(ids.new_in(1), 5..=6);
        assert_eq!(ids.new_in(3), 9..=10);
        assert_eq!(ids.known(2), 8);
        assert_eq!(
            (ids.batch_of(4), ids.batch_of(5), ids.batch_of(10)),
            (0, 1, 3)
        );
        assert_eq!(Ids::spread(7, 1, 2).new_in(0), 1..=7);
        assert_eq!(Ids::spread(3, 3, 1).total(), 3);
    }
}
