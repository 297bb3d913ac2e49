//! orders: CSV, the main table. Several upstream systems feed it, which shows: statuses in
//! several spellings, timestamps in several formats, totals sometimes as currency strings.

use std::ops::RangeInclusive;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generate::calendar::{TsStyle, absurd_ms, push_ts};
use crate::generate::dirt::{Table, chance, maybe, tally_ts};
use crate::generate::facts;
use crate::generate::manifest::DirtCounts;
use crate::generate::plan::Plan;
use crate::generate::text::TextTable;
use crate::generate::text::encode::{CsvRecord, push_currency, push_fixed, push_int};
use crate::generate::vocab::STATUSES;

const COLUMNS: &[&str] = &[
    "order_id",
    "customer_id",
    "order_ts",
    "status",
    "total_amount",
    "currency",
    "channel",
];
/// Drift: a new release of the order service renamed `total_amount`.
const DRIFTED: &[&str] = &[
    "order_id",
    "customer_id",
    "order_ts",
    "status",
    "order_total",
    "currency",
    "channel",
];

pub(super) struct Orders<'p> {
    plan: &'p Plan,
    batch: u32,
    ids: RangeInclusive<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Required {
    Customer,
    Timestamp,
}

#[derive(Clone, Copy, PartialEq)]
enum OutOfRange {
    NegativeTotal,
    AbsurdTimestamp,
}

#[derive(Clone, Copy)]
pub(super) struct Row {
    id: u64,
    customer_id: u64,
    ts_ms: i64,
    ts_style: TsStyle,
    /// Index into [`STATUSES`].
    status: usize,
    /// 0 for the canonical spelling, `k` for the status's k-th variant.
    spelling: usize,
    total_cents: i64,
    total_as_currency: bool,
    channel: &'static str,
    null: Option<Required>,
    out_of_range: Option<OutOfRange>,
}

impl<'p> Orders<'p> {
    pub(super) fn new(plan: &'p Plan, batch: u32) -> Self {
        Orders {
            plan,
            batch,
            ids: plan.orders.new_in(batch),
        }
    }
}

impl Table for Orders<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        if self.plan.drifted(self.batch) {
            DRIFTED
        } else {
            COLUMNS
        }
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        let id = self.ids.next()?;
        let rates = &self.plan.rates;
        let order = facts::order(self.plan, id, self.batch);
        let total_cents = facts::order_total_cents(self.plan, id, &order, self.batch);
        let out_of_range = maybe(
            rng,
            rates.out_of_range,
            &[OutOfRange::NegativeTotal, OutOfRange::AbsurdTimestamp],
        );
        Some(Row {
            id,
            customer_id: order.customer_id,
            ts_ms: match out_of_range {
                Some(OutOfRange::AbsurdTimestamp) => absurd_ms(rng),
                _ => order.placed_ms,
            },
            ts_style: TsStyle::pick(
                rng,
                rates,
                TsStyle::IsoZ,
                &[
                    TsStyle::UsMinutes,
                    TsStyle::SqlSeconds,
                    TsStyle::EpochSeconds,
                ],
            ),
            status: order.status,
            spelling: if chance(rng, rates.variant_spelling) {
                rng.random_range(1..=STATUSES[order.status].1.len())
            } else {
                0
            },
            total_cents: match out_of_range {
                Some(OutOfRange::NegativeTotal) => -total_cents,
                _ => total_cents,
            },
            total_as_currency: chance(rng, rates.currency_string),
            channel: order.channel,
            null: maybe(rng, rates.null, &[Required::Customer, Required::Timestamp]),
            out_of_range,
        })
    }

    fn nudge(&self, row: &mut Row, rng: &mut ChaCha8Rng) {
        // Re-sent after the order moved on (pending → paid → shipped → delivered), or by a
        // system that spells the status its own way.
        if row.status < 3 && rng.random_bool(0.5) {
            row.status += 1;
        } else {
            row.spelling = row.spelling % STATUSES[row.status].1.len() + 1;
        }
    }
}

impl TextTable for Orders<'_> {
    fn render(&self, row: &Row, out: &mut Vec<u8>, dirt: &mut DirtCounts) {
        let (canonical, variants) = STATUSES[row.status];
        let ts_shown = row.null != Some(Required::Timestamp);
        CsvRecord::new(out)
            .int(row.id)
            .plain_if(row.null != Some(Required::Customer), |b| {
                push_int(b, row.customer_id)
            })
            .plain_if(ts_shown, |b| push_ts(b, row.ts_ms, row.ts_style))
            .text(match row.spelling {
                0 => canonical,
                k => variants[k - 1],
            })
            .field(|b| {
                if row.total_as_currency {
                    push_currency(b, row.total_cents)
                } else {
                    push_fixed(b, row.total_cents, 2)
                }
            })
            .text("USD")
            .text(row.channel);
        dirt.null_required += u64::from(row.null.is_some());
        dirt.currency_strings += u64::from(row.total_as_currency);
        dirt.out_of_range += u64::from(row.out_of_range == Some(OutOfRange::NegativeTotal));
        if ts_shown {
            tally_ts(dirt, row.ts_ms, row.ts_style, self.plan.day(self.batch));
        }
    }
}
