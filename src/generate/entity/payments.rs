//! payments: NDJSON from the payment provider's webhook. One payment per order, preceded by a
//! failed attempt now and then; the amount is the order's total.

use std::ops::RangeInclusive;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generate::calendar::{TsStyle, absurd_ms};
use crate::generate::dirt::{Table, chance, maybe, tally_ts};
use crate::generate::facts::{self, Order};
use crate::generate::manifest::DirtCounts;
use crate::generate::plan::Plan;
use crate::generate::text::TextTable;
use crate::generate::text::encode::JsonObject;
use crate::generate::vocab::PAYMENT_METHODS;

const COLUMNS: &[&str] = &[
    "payment_id",
    "order_id",
    "method",
    "amount",
    "paid_at",
    "status",
];
/// Drift: the provider started reporting its fee.
const DRIFTED: &[&str] = &[
    "payment_id",
    "order_id",
    "method",
    "amount",
    "paid_at",
    "status",
    "fee",
];
/// Share of orders whose first payment attempt fails.
const FAILED_FIRST_ATTEMPT: f64 = 0.06;

pub(super) struct Payments<'p> {
    plan: &'p Plan,
    batch: u32,
    orders: RangeInclusive<u64>,
    /// The order whose failed attempt was just written, still to be paid.
    retry: Option<(u64, Order, &'static str)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Required {
    PaymentId,
    OrderId,
    Amount,
}

#[derive(Clone, Copy, PartialEq)]
enum OutOfRange {
    NegativeAmount,
    AbsurdTimestamp,
}

#[derive(Clone, Copy)]
pub(super) struct Row {
    payment_id: u64,
    order_id: u64,
    method: &'static str,
    amount_cents: i64,
    as_currency: bool,
    paid_ms: i64,
    ts_style: TsStyle,
    status: &'static str,
    null: Option<Required>,
    out_of_range: Option<OutOfRange>,
}

impl<'p> Payments<'p> {
    pub(super) fn new(plan: &'p Plan, batch: u32) -> Self {
        Payments {
            plan,
            batch,
            orders: plan.orders.new_in(batch),
            retry: None,
        }
    }

    fn drifted(&self) -> bool {
        self.plan.drifted(self.batch)
    }
}

impl Table for Payments<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        if self.drifted() { DRIFTED } else { COLUMNS }
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        let (order_id, order, method, attempt, status) = match self.retry.take() {
            Some((id, order, method)) => (id, order, method, 2, settled_status(&order)),
            None => {
                let id = self.orders.next()?;
                let order = facts::order(self.plan, id, self.batch);
                let method = PAYMENT_METHODS[rng.random_range(0..PAYMENT_METHODS.len())];
                if chance(rng, FAILED_FIRST_ATTEMPT) {
                    self.retry = Some((id, order, method));
                    (id, order, method, 1, "failed")
                } else {
                    (id, order, method, 1, settled_status(&order))
                }
            }
        };
        let rates = &self.plan.rates;
        let amount = facts::order_total_cents(self.plan, order_id, &order, self.batch);
        let out_of_range = maybe(
            rng,
            rates.out_of_range,
            &[OutOfRange::NegativeAmount, OutOfRange::AbsurdTimestamp],
        );
        Some(Row {
            payment_id: order_id * 10 + attempt,
            order_id,
            method,
            amount_cents: match out_of_range {
                Some(OutOfRange::NegativeAmount) => -amount,
                _ => amount,
            },
            as_currency: chance(rng, rates.currency_string),
            // Paid within half an hour of ordering, the retry after the failed attempt.
            paid_ms: match out_of_range {
                Some(OutOfRange::AbsurdTimestamp) => absurd_ms(rng),
                _ => order.placed_ms + attempt as i64 * rng.random_range(30_000..900_000),
            },
            ts_style: TsStyle::pick(
                rng,
                rates,
                TsStyle::IsoMillisZ,
                &[TsStyle::EpochSeconds, TsStyle::SqlSeconds],
            ),
            status,
            null: maybe(
                rng,
                rates.null,
                &[Required::PaymentId, Required::OrderId, Required::Amount],
            ),
            out_of_range,
        })
    }

    fn nudge(&self, row: &mut Row, rng: &mut ChaCha8Rng) {
        // A webhook retry reporting the settlement a few minutes later (whole minutes, so
        // even a minutes-only timestamp shows it).
        row.paid_ms += rng.random_range(1..=5) * 60_000;
    }
}

/// What the provider reports once an order's payment went through.
fn settled_status(order: &Order) -> &'static str {
    match order.status_name() {
        "pending" => "pending",
        "cancelled" => "refunded",
        _ => "captured",
    }
}

/// The provider's fee: percentage plus fixed part, nothing for some methods.
fn fee_cents(method: &str, amount_cents: i64) -> i64 {
    match method {
        "card" | "apple_pay" => (amount_cents * 29 + 500) / 1000 + 30,
        "paypal" => (amount_cents * 349 + 5000) / 10_000 + 49,
        _ => 0,
    }
}

impl TextTable for Payments<'_> {
    fn render(&self, row: &Row, out: &mut Vec<u8>, dirt: &mut DirtCounts) {
        let mut object = JsonObject::open(out);
        match row.null {
            Some(Required::PaymentId) => object.null("payment_id"),
            _ => object.int("payment_id", row.payment_id),
        }
        match row.null {
            Some(Required::OrderId) => object.null("order_id"),
            _ => object.int("order_id", row.order_id),
        }
        object.text("method", row.method);
        match row.null {
            Some(Required::Amount) => object.null("amount"),
            _ => object.amount("amount", row.amount_cents, row.as_currency),
        }
        object.timestamp("paid_at", row.paid_ms, row.ts_style);
        object.text("status", row.status);
        if self.drifted() {
            let fee = fee_cents(row.method, row.amount_cents.abs());
            object.amount("fee", fee, row.as_currency);
        }
        object.close();
        let amount_shown = row.null != Some(Required::Amount);
        dirt.null_required += u64::from(row.null.is_some());
        dirt.currency_strings += u64::from(row.as_currency && (amount_shown || self.drifted()));
        dirt.out_of_range +=
            u64::from(amount_shown && row.out_of_range == Some(OutOfRange::NegativeAmount));
        tally_ts(dirt, row.paid_ms, row.ts_style, self.plan.day(self.batch));
    }
}
