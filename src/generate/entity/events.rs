//! events: NDJSON web clickstream, the high-volume feed (about five events per order).
//! Events come in sessions; anonymous visitors have no customer id.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::generate::calendar::{MS_PER_DAY, MS_PER_HOUR, TsStyle, absurd_ms};
use crate::generate::dirt::{Table, chance, maybe, tally_ts};
use crate::generate::manifest::DirtCounts;
use crate::generate::plan::Plan;
use crate::generate::text::TextTable;
use crate::generate::text::encode::{JsonObject, push_hex, push_int};
use crate::generate::vocab::{DEVICES, PAGES, REFERRERS, SEARCH_TERMS, USER_AGENTS};

const COLUMNS: &[&str] = &[
    "event_id",
    "session_id",
    "customer_id",
    "event_type",
    "url",
    "ts",
    "user_agent",
    "properties",
];
/// Drift: the tracking SDK started sending the device class.
const DRIFTED: &[&str] = &[
    "event_id",
    "session_id",
    "customer_id",
    "event_type",
    "url",
    "ts",
    "user_agent",
    "properties",
    "device",
];
const EVENTS_PER_ORDER: u64 = 5;
/// Sessions start before 21:00 UTC and last minutes, so events keep their UTC date even when
/// written with a +02:00 offset.
const LAST_SESSION_HOUR: i64 = 21;
const SITE: &str = "https://shop.example.com";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    PageView,
    ProductView,
    Search,
    AddToCart,
    RemoveFromCart,
    CheckoutStart,
    Purchase,
}

/// Event kinds, repeated by how often they happen.
const KINDS: &[Kind] = &[
    Kind::PageView,
    Kind::PageView,
    Kind::PageView,
    Kind::ProductView,
    Kind::ProductView,
    Kind::Search,
    Kind::AddToCart,
    Kind::RemoveFromCart,
    Kind::CheckoutStart,
    Kind::Purchase,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PageView => "page_view",
            Kind::ProductView => "product_view",
            Kind::Search => "search",
            Kind::AddToCart => "add_to_cart",
            Kind::RemoveFromCart => "remove_from_cart",
            Kind::CheckoutStart => "checkout_start",
            Kind::Purchase => "purchase",
        }
    }

    fn has_cart_value(self) -> bool {
        matches!(
            self,
            Kind::AddToCart | Kind::RemoveFromCart | Kind::CheckoutStart | Kind::Purchase
        )
    }
}

pub(super) struct Events<'p> {
    plan: &'p Plan,
    batch: u32,
    left: u64,
    session: Session,
}

#[derive(Clone, Copy)]
struct Session {
    id: u64,
    customer_id: Option<u64>,
    user_agent: &'static str,
    device: &'static str,
    events_left: u32,
    ts_ms: i64,
}

#[derive(Clone, Copy, PartialEq)]
enum Required {
    EventId,
    SessionId,
    Timestamp,
}

#[derive(Clone, Copy)]
pub(super) struct Row {
    event_id: u128,
    session: Session,
    kind: Kind,
    ts_ms: i64,
    ts_style: TsStyle,
    product_id: u64,
    quantity: i64,
    cart_cents: i64,
    cart_as_currency: bool,
    page: &'static str,
    search: &'static str,
    results: u32,
    referrer: &'static str,
    null: Option<Required>,
    /// The cart value is negative (the timestamp impossible, for kinds without a cart).
    out_of_range: bool,
}

impl<'p> Events<'p> {
    pub(super) fn new(plan: &'p Plan, batch: u32) -> Self {
        let orders = plan.orders.new_in(batch);
        Events {
            plan,
            batch,
            left: (orders.end() + 1 - orders.start()) * EVENTS_PER_ORDER,
            session: Session {
                id: 0,
                customer_id: None,
                user_agent: USER_AGENTS[0],
                device: DEVICES[0],
                events_left: 0,
                ts_ms: 0,
            },
        }
    }

    fn drifted(&self) -> bool {
        self.plan.drifted(self.batch)
    }

    fn new_session(&self, rng: &mut ChaCha8Rng) -> Session {
        Session {
            id: rng.random(),
            // Four visitors in ten are logged in.
            customer_id: rng
                .random_bool(0.4)
                .then(|| rng.random_range(1..=self.plan.customers.known(self.batch))),
            user_agent: USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
            device: DEVICES[rng.random_range(0..DEVICES.len())],
            events_left: rng.random_range(1..=9),
            ts_ms: self.plan.day(self.batch) * MS_PER_DAY
                + rng.random_range(0..LAST_SESSION_HOUR * MS_PER_HOUR),
        }
    }
}

impl Table for Events<'_> {
    type Row = Row;

    fn columns(&self) -> &'static [&'static str] {
        if self.drifted() { DRIFTED } else { COLUMNS }
    }

    fn next_row(&mut self, rng: &mut ChaCha8Rng) -> Option<Row> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.session.events_left == 0 {
            self.session = self.new_session(rng);
        }
        self.session.events_left -= 1;
        self.session.ts_ms += rng.random_range(5_000..120_000);
        let rates = &self.plan.rates;
        let kind = KINDS[rng.random_range(0..KINDS.len())];
        let out_of_range = chance(rng, rates.out_of_range);
        let mut ts_ms = self.session.ts_ms;
        if out_of_range && !kind.has_cart_value() {
            ts_ms = absurd_ms(rng);
        } else if self.batch > 0 && chance(rng, rates.late) {
            // An app that was offline uploads yesterday's events.
            ts_ms -= i64::from(rng.random_range(1..=self.batch)) * MS_PER_DAY;
        }
        let quantity = rng.random_range(1..=3);
        Some(Row {
            event_id: rng.random(),
            session: self.session,
            kind,
            ts_ms,
            ts_style: TsStyle::pick(
                rng,
                rates,
                TsStyle::IsoMillisZ,
                &[TsStyle::EpochMillis, TsStyle::SqlSeconds],
            ),
            product_id: rng.random_range(1..=self.plan.products.known(self.batch)),
            quantity,
            cart_cents: rng.random_range(500..50_000) * if out_of_range { -1 } else { 1 },
            cart_as_currency: chance(rng, rates.currency_string),
            page: PAGES[rng.random_range(0..PAGES.len())],
            search: SEARCH_TERMS[rng.random_range(0..SEARCH_TERMS.len())],
            results: rng.random_range(0..200),
            referrer: REFERRERS[rng.random_range(0..REFERRERS.len())],
            null: maybe(
                rng,
                rates.null,
                &[Required::EventId, Required::SessionId, Required::Timestamp],
            ),
            out_of_range,
        })
    }

    fn nudge(&self, row: &mut Row, rng: &mut ChaCha8Rng) {
        // Sent again by a client retry, stamped a little later (whole seconds, so every
        // timestamp style shows it).
        row.ts_ms += rng.random_range(1..=3) * 1000;
        if row.null == Some(Required::Timestamp) {
            row.null = None;
        }
    }
}

impl TextTable for Events<'_> {
    fn render(&self, row: &Row, out: &mut Vec<u8>, dirt: &mut DirtCounts) {
        let session = &row.session;
        let mut object = JsonObject::open(out);
        match row.null {
            Some(Required::EventId) => object.null("event_id"),
            _ => object.plain_string("event_id", |b| push_uuid(b, row.event_id)),
        }
        match row.null {
            Some(Required::SessionId) => object.null("session_id"),
            _ => object.plain_string("session_id", |b| {
                b.extend_from_slice(b"s-");
                push_hex(b, u128::from(session.id), 16);
            }),
        }
        match session.customer_id {
            Some(id) => object.int("customer_id", id),
            None => object.null("customer_id"),
        }
        object.text("event_type", row.kind.name());
        object.plain_string("url", |b| {
            b.extend_from_slice(SITE.as_bytes());
            match row.kind {
                Kind::PageView => b.extend_from_slice(row.page.as_bytes()),
                Kind::ProductView => {
                    b.extend_from_slice(b"/p/");
                    push_int(b, row.product_id);
                }
                Kind::Search => b.extend_from_slice(b"/search"),
                Kind::AddToCart | Kind::RemoveFromCart => b.extend_from_slice(b"/cart"),
                Kind::CheckoutStart => b.extend_from_slice(b"/checkout"),
                Kind::Purchase => b.extend_from_slice(b"/checkout/complete"),
            }
        });
        match row.null {
            Some(Required::Timestamp) => object.null("ts"),
            _ => object.timestamp("ts", row.ts_ms, row.ts_style),
        }
        object.text("user_agent", session.user_agent);
        object.object("properties", |p| match row.kind {
            Kind::PageView => p.text("referrer", row.referrer),
            Kind::ProductView => p.int("product_id", row.product_id),
            Kind::Search => {
                p.text("query", row.search);
                p.int("results", row.results);
            }
            Kind::AddToCart | Kind::RemoveFromCart => {
                p.int("product_id", row.product_id);
                p.int("quantity", row.quantity);
                p.amount("cart_value", row.cart_cents, row.cart_as_currency);
            }
            Kind::CheckoutStart | Kind::Purchase => {
                p.int("items", row.quantity);
                p.amount("cart_value", row.cart_cents, row.cart_as_currency);
            }
        });
        if self.drifted() {
            object.text("device", session.device);
        }
        object.close();
        let cart_shown = row.kind.has_cart_value();
        dirt.null_required += u64::from(row.null.is_some());
        dirt.currency_strings += u64::from(cart_shown && row.cart_as_currency);
        dirt.out_of_range += u64::from(cart_shown && row.out_of_range);
        if row.null != Some(Required::Timestamp) {
            tally_ts(dirt, row.ts_ms, row.ts_style, self.plan.day(self.batch));
        }
    }
}

/// Appends 128 random bits formatted as a version-4 UUID.
fn push_uuid(buf: &mut Vec<u8>, bits: u128) {
    let bits = (bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    push_hex(buf, bits >> 96, 8);
    buf.push(b'-');
    push_hex(buf, (bits >> 80) & 0xffff, 4);
    buf.push(b'-');
    push_hex(buf, (bits >> 64) & 0xffff, 4);
    buf.push(b'-');
    push_hex(buf, (bits >> 48) & 0xffff, 4);
    buf.push(b'-');
    push_hex(buf, bits & 0xffff_ffff_ffff, 12);
}
