//! shipments: XML from the warehouse system, one `<shipment>` element per line so a reader
//! can resync after a broken one. Every order that left the warehouse has one, addressed to
//! the customer's city.

use std::ops::RangeInclusive;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generate::calendar::{MS_PER_DAY, MS_PER_HOUR, TsStyle, absurd_ms, push_ts};
use crate::generate::dirt::{Table, chance, maybe, tally_ts};
use crate::generate::facts;
use crate::generate::manifest::DirtCounts;
use crate::generate::plan::Plan;
use crate::generate::text::TextTable;
use crate::generate::text::encode::{push_int, push_padded, push_xml_text, xml_element};
use crate::generate::vocab::{CARRIERS, Place};

const COLUMNS: &[&str] = &[
    "id",
    "order_id",
    "carrier",
    "tracking_no",
    "shipped_at",
    "delivered_at",
    "address",
];

pub(super) struct Shipments<'p> {
    plan: &'p Plan,
    batch: u32,
    orders: RangeInclusive<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Required {
    OrderId,
    TrackingNo,
}

#[derive(Clone, Copy)]
enum Delivered {
    /// Not delivered yet, and the element left out.
    Absent,
    /// Not delivered yet, written as `<delivered_at/>`.
    Empty,
    At(i64),
}

#[derive(Clone, Copy)]
pub(super) struct Row {
    order_id: u64,
    place: Place,
    carrier: (&'static str, &'static str),
    tracking: u64,
    shipped_ms: i64,
    delivered: Delivered,
    ts_style: TsStyle,
    null: Option<Required>,
}

impl<'p> Shipments<'p> {
    pub(super) fn new(plan: &'p Plan, batch: u32) -> Self {
        Shipments {
            plan,
            batch,
            orders: plan.orders.new_in(batch),
        }
    }
}

impl Table for Shipments<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        COLUMNS
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        let (order_id, order) = loop {
            let id = self.orders.next()?;
            let order = facts::order(self.plan, id, self.batch);
            if order.shipped() {
                break (id, order);
            }
        };
        let rates = &self.plan.rates;
        // Packed and handed to the carrier within three hours.
        let shipped_ms = order.placed_ms + rng.random_range(3_600..3 * 3_600) * 1000;
        let delivered = if order.status_name() == "shipped" {
            if rng.random_bool(0.5) {
                Delivered::Absent
            } else {
                Delivered::Empty
            }
        } else {
            Delivered::At(shipped_ms + rng.random_range(MS_PER_DAY / 2..5 * MS_PER_DAY))
        };
        Some(Row {
            order_id,
            place: facts::customer(self.plan, order.customer_id).place,
            carrier: CARRIERS[rng.random_range(0..CARRIERS.len())],
            tracking: rng.random_range(0..1_000_000_000_000),
            shipped_ms: if chance(rng, rates.out_of_range) {
                absurd_ms(rng)
            } else {
                shipped_ms
            },
            delivered,
            ts_style: TsStyle::pick(
                rng,
                rates,
                TsStyle::IsoZ,
                &[TsStyle::UsMinutes, TsStyle::SqlSeconds],
            ),
            null: maybe(rng, rates.null, &[Required::OrderId, Required::TrackingNo]),
        })
    }

    fn nudge(&self, row: &mut Row, _rng: &mut ChaCha8Rng) {
        // Re-sent by the carrier's update: delivered now, or the delivery time corrected.
        row.delivered = Delivered::At(match row.delivered {
            Delivered::At(ms) => ms + MS_PER_HOUR,
            Delivered::Absent | Delivered::Empty => row.shipped_ms + 2 * MS_PER_DAY,
        });
    }
}

impl TextTable for Shipments<'_> {
    fn render(&self, row: &Row, out: &mut Vec<u8>, dirt: &mut DirtCounts) {
        let (carrier, tracking_prefix) = row.carrier;
        out.extend_from_slice(b"<shipment id=\"SHP-");
        push_padded(out, row.order_id, 8);
        out.extend_from_slice(b"\">");
        xml_element(out, "order_id", |b| {
            if row.null != Some(Required::OrderId) {
                push_int(b, row.order_id)
            }
        });
        xml_element(out, "carrier", |b| push_xml_text(b, carrier));
        xml_element(out, "tracking_no", |b| {
            if row.null != Some(Required::TrackingNo) {
                b.extend_from_slice(tracking_prefix.as_bytes());
                push_padded(b, row.tracking, 12);
            }
        });
        xml_element(out, "shipped_at", |b| {
            push_ts(b, row.shipped_ms, row.ts_style)
        });
        match row.delivered {
            Delivered::Absent => {}
            Delivered::Empty => out.extend_from_slice(b"<delivered_at/>"),
            Delivered::At(ms) => xml_element(out, "delivered_at", |b| push_ts(b, ms, row.ts_style)),
        }
        xml_element(out, "address", |b| {
            xml_element(b, "city", |b| push_xml_text(b, row.place.city));
            xml_element(b, "country", |b| push_xml_text(b, row.place.country));
        });
        out.extend_from_slice(b"</shipment>");
        dirt.null_required += u64::from(row.null.is_some());
        tally_ts(
            dirt,
            row.shipped_ms,
            row.ts_style,
            self.plan.day(self.batch),
        );
    }
}
