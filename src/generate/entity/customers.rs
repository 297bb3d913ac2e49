//! customers: CSV. The first drop is the customer base; later drops add sign-ups and re-send
//! some earlier customers with a changed email or city.

use std::ops::RangeInclusive;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generate::calendar::{DateStyle, days_from_civil, push_date};
use crate::generate::dirt::{Table, chance, maybe, other};
use crate::generate::facts::{self, Customer};
use crate::generate::manifest::DirtCounts;
use crate::generate::plan::Plan;
use crate::generate::text::TextTable;
use crate::generate::text::encode::{CsvRecord, push_int};
use crate::generate::vocab::{self, Place};

const COLUMNS: &[&str] = &[
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "city",
    "signup_date",
    "segment",
];
const DRIFTED: &[&str] = &[
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "country",
    "city",
    "signup_date",
    "segment",
    "loyalty_tier",
];

pub(super) struct Customers<'p> {
    plan: &'p Plan,
    drifted: bool,
    /// Earlier customers, each of which may be re-sent changed.
    earlier: RangeInclusive<u64>,
    new: RangeInclusive<u64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Required {
    Id,
    Email,
}

#[derive(Clone, Copy)]
enum Email {
    AsRegistered,
    /// Upper-cased by some upstream form: the same address to a human, not to a join.
    Shouted,
    /// A new address at another provider.
    Changed(&'static str),
}

#[derive(Clone, Copy)]
pub(super) struct Row {
    id: u64,
    facts: Customer,
    place: Place,
    email: Email,
    /// A trailing space after the city.
    padded_city: bool,
    signup_day: i64,
    signup_style: DateStyle,
    null: Option<Required>,
    /// A copy of a customer sent in an earlier batch, with something changed.
    changed: bool,
}

impl<'p> Customers<'p> {
    pub(super) fn new(plan: &'p Plan, batch: u32) -> Self {
        let known_before = batch.checked_sub(1).map_or(0, |b| plan.customers.known(b));
        Customers {
            plan,
            drifted: plan.drifted(batch),
            earlier: 1..=known_before,
            new: plan.customers.new_in(batch),
        }
    }

    fn fresh(&self, id: u64, rng: &mut ChaCha8Rng) -> Row {
        let rates = &self.plan.rates;
        let facts = facts::customer(self.plan, id);
        let absurd = chance(rng, rates.out_of_range);
        Row {
            id,
            facts,
            place: facts.place,
            email: Email::AsRegistered,
            padded_city: false,
            signup_day: if absurd {
                days_from_civil(if rng.random_bool(0.5) { 1900 } else { 2099 }, 1, 1)
            } else {
                facts.signup_day
            },
            signup_style: DateStyle::pick(rng, rates),
            null: maybe(rng, rates.null, &[Required::Id, Required::Email]),
            changed: false,
        }
    }
}

impl Table for Customers<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        if self.drifted { DRIFTED } else { COLUMNS }
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        // Customers who changed come first, as an export sorted by update time would have it.
        while let Some(id) = self.earlier.next() {
            if chance(rng, self.plan.rates.duplicate) {
                let mut row = self.fresh(id, rng);
                row.changed = true;
                if rng.random_bool(0.5) {
                    row.email =
                        Email::Changed(other(rng, vocab::EMAIL_DOMAINS, row.facts.email_domain));
                } else {
                    row.place = other(rng, vocab::PLACES, row.place);
                }
                return Some(row);
            }
        }
        let id = self.new.next()?;
        Some(self.fresh(id, rng))
    }

    fn nudge(&self, row: &mut Row, rng: &mut ChaCha8Rng) {
        if row.null != Some(Required::Email) && rng.random_bool(0.5) {
            row.email = Email::Shouted;
        } else {
            row.padded_city = true;
        }
    }
}

impl TextTable for Customers<'_> {
    fn render(&self, row: &Row, out: &mut Vec<u8>, dirt: &mut DirtCounts) {
        let facts = &row.facts;
        let mut record = CsvRecord::new(out);
        record
            .plain_if(row.null != Some(Required::Id), |b| push_int(b, row.id))
            .text(facts.first.display)
            .text(facts.last.display)
            .plain_if(row.null != Some(Required::Email), |b| {
                push_email(b, facts, row.email)
            })
            .plain(|b| {
                b.push(b'+');
                push_int(b, row.place.calling_code);
                b.push(b' ');
                push_int(b, facts.phone);
            })
            .text(row.place.country)
            .field(|b| {
                b.extend_from_slice(row.place.city.as_bytes());
                if row.padded_city {
                    b.push(b' ');
                }
            })
            .plain(|b| push_date(b, row.signup_day, row.signup_style))
            .text(facts.segment);
        if self.drifted {
            record.text(facts.loyalty_tier);
        }
        dirt.null_required += u64::from(row.null.is_some());
        dirt.near_duplicates += u64::from(row.changed);
        dirt.mixed_date_formats += u64::from(!row.signup_style.is_iso());
        dirt.out_of_range += u64::from(row.signup_day != facts.signup_day);
    }
}

fn push_email(buf: &mut Vec<u8>, facts: &Customer, email: Email) {
    let start = buf.len();
    buf.extend_from_slice(facts.first.slug.as_bytes());
    buf.push(b'.');
    buf.extend_from_slice(facts.last.slug.as_bytes());
    push_int(buf, facts.email_tag);
    buf.push(b'@');
    let domain = match email {
        Email::Changed(domain) => domain,
        Email::AsRegistered | Email::Shouted => facts.email_domain,
    };
    buf.extend_from_slice(domain.as_bytes());
    if let Email::Shouted = email {
        buf[start..].make_ascii_uppercase();
    }
}
