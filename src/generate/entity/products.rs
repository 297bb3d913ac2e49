//! products: one JSON array document per drop, mostly the catalogue in the first one.

use std::ops::RangeInclusive;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generate::calendar::{MS_PER_DAY, MS_PER_HOUR, TsStyle};
use crate::generate::dirt::{Table, chance, maybe};
use crate::generate::facts::{self, Product};
use crate::generate::manifest::DirtCounts;
use crate::generate::plan::Plan;
use crate::generate::text::TextTable;
use crate::generate::text::encode::{JsonObject, push_fixed, push_padded};

const COLUMNS: &[&str] = &[
    "product_id",
    "sku",
    "name",
    "category",
    "price",
    "currency",
    "weight_kg",
    "created_at",
    "attributes",
];

pub(super) struct Products<'p> {
    plan: &'p Plan,
    ids: RangeInclusive<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Required {
    Sku,
    Name,
    Price,
}

#[derive(Clone, Copy)]
pub(super) struct Row {
    id: u64,
    facts: Product,
    /// Differs from the catalogue price when re-sent after a price change, and is negative
    /// when out of range.
    price_cents: i64,
    price_as_currency: bool,
    created_ms: i64,
    created_style: TsStyle,
    null: Option<Required>,
    /// A trailing space after the name.
    padded_name: bool,
}

impl<'p> Products<'p> {
    pub(super) fn new(plan: &'p Plan, batch: u32) -> Self {
        Products {
            plan,
            ids: plan.products.new_in(batch),
        }
    }
}

impl Table for Products<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        COLUMNS
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        let id = self.ids.next()?;
        let rates = &self.plan.rates;
        let facts = facts::product(self.plan, id);
        let negative = chance(rng, rates.out_of_range);
        Some(Row {
            id,
            facts,
            price_cents: if negative {
                -facts.price_cents
            } else {
                facts.price_cents
            },
            price_as_currency: chance(rng, rates.currency_string),
            created_ms: facts.created_day * MS_PER_DAY
                + rng.random_range(9 * MS_PER_HOUR / 1000..17 * MS_PER_HOUR / 1000) * 1000,
            created_style: TsStyle::pick(
                rng,
                rates,
                TsStyle::IsoZ,
                &[
                    TsStyle::SqlSeconds,
                    TsStyle::UsMinutes,
                    TsStyle::EpochSeconds,
                ],
            ),
            null: maybe(
                rng,
                rates.null,
                &[Required::Sku, Required::Name, Required::Price],
            ),
            padded_name: false,
        })
    }

    fn nudge(&self, row: &mut Row, rng: &mut ChaCha8Rng) {
        // Whichever change is chosen must show: not on a field that is null.
        if row.null == Some(Required::Name)
            || (row.null != Some(Required::Price) && rng.random_bool(0.5))
        {
            // Re-sent after a price change.
            row.price_cents += row.price_cents.signum() * (row.price_cents.abs() / 10).max(1);
        } else {
            row.padded_name = true;
        }
    }
}

impl TextTable for Products<'_> {
    fn render(&self, row: &Row, out: &mut Vec<u8>, dirt: &mut DirtCounts) {
        let facts = &row.facts;
        let mut object = JsonObject::open(out);
        object.int("product_id", row.id);
        if row.null == Some(Required::Sku) {
            object.null("sku");
        } else {
            object.plain_string("sku", |b| {
                b.extend_from_slice(facts.category.sku.as_bytes());
                b.push(b'-');
                push_padded(b, row.id, 6);
            });
        }
        if row.null == Some(Required::Name) {
            object.null("name");
        } else {
            let pad = if row.padded_name { " " } else { "" };
            object.text_parts("name", &[facts.adjective, " ", facts.noun, pad]);
        }
        object.text("category", facts.category.name);
        if row.null == Some(Required::Price) {
            object.null("price");
        } else {
            object.amount("price", row.price_cents, row.price_as_currency);
        }
        object.text("currency", "USD");
        object.raw("weight_kg", |b| push_fixed(b, facts.weight_g, 3));
        object.timestamp("created_at", row.created_ms, row.created_style);
        object.object("attributes", |attributes| {
            attributes.text("color", facts.color);
            attributes.text("size", facts.size);
            attributes.text("material", facts.material);
        });
        object.close();
        let price_shown = row.null != Some(Required::Price);
        dirt.null_required += u64::from(row.null.is_some());
        dirt.currency_strings += u64::from(price_shown && row.price_as_currency);
        dirt.out_of_range += u64::from(price_shown && row.price_cents < 0);
        dirt.mixed_date_formats += u64::from(!row.created_style.is_iso());
    }
}
