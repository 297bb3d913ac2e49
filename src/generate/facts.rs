//! The clean truth shared between entities: who placed order N, what it contains, what a
//! product costs, where a customer lives.
//!
//! Each fact is a pure function of (seed, key). Writers on different threads recompute the
//! facts they need instead of sharing state, and still agree: the payment of an order carries
//! the order's total, its shipment goes to the customer's city. Dirt is applied on top by each
//! writer, from its own stream.

use rand::Rng;
use rand::rand_core::{RngCore, impls};

use super::calendar::{MS_PER_DAY, MS_PER_HOUR, START_DAY, days_from_civil};
use super::plan::Plan;
use super::vocab::{self, Category, Name, Place};

/// Orders are placed before 19:00 UTC, so their payments (+30 min) and shipments (+3 h) happen
/// before 22:00 UTC: written with a +02:00 offset they still show their UTC date.
const LAST_ORDER_HOUR: i64 = 19;

/// SplitMix64 keyed by (seed, domain, id): seeding a cipher per key would cost more than the
/// handful of numbers drawn per key, and facts need no cryptographic quality.
struct Keyed(u64);

#[derive(Clone, Copy)]
enum Domain {
    Customer = 1,
    Product = 2,
    Price = 3,
    Order = 4,
    Line = 5,
}

impl Keyed {
    fn new(seed: u64, domain: Domain, id: u64) -> Self {
        Keyed(mix(seed ^ mix(((domain as u64) << 56) ^ mix(id))))
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.random_range(0..items.len())]
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl RngCore for Keyed {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        impls::fill_bytes_via_next(self, dst)
    }
}

/// A customer as first registered.
#[derive(Clone, Copy)]
pub(super) struct Customer {
    pub first: Name,
    pub last: Name,
    pub place: Place,
    pub email_domain: &'static str,
    /// Number that tells apart namesakes' email addresses.
    pub email_tag: u32,
    pub phone: u64,
    pub signup_day: i64,
    pub segment: &'static str,
    pub loyalty_tier: &'static str,
}

pub(super) fn customer(plan: &Plan, id: u64) -> Customer {
    let mut k = Keyed::new(plan.seed, Domain::Customer, id);
    let batch = plan.customers.batch_of(id);
    // The first drop is the existing customer base; later ones are sign-ups of their day.
    let signup_day = if batch == 0 {
        k.random_range(days_from_civil(2019, 1, 1)..START_DAY)
    } else {
        plan.day(batch)
    };
    Customer {
        first: k.pick(vocab::FIRST_NAMES),
        last: k.pick(vocab::LAST_NAMES),
        place: k.pick(vocab::PLACES),
        email_domain: k.pick(vocab::EMAIL_DOMAINS),
        email_tag: k.random_range(1..1000),
        phone: k.random_range(2_000_000_000..10_000_000_000),
        signup_day,
        segment: k.pick(vocab::SEGMENTS),
        loyalty_tier: k.pick(vocab::LOYALTY_TIERS),
    }
}

/// A catalogue product.
#[derive(Clone, Copy)]
pub(super) struct Product {
    pub category: Category,
    pub adjective: &'static str,
    pub noun: &'static str,
    pub price_cents: i64,
    pub weight_g: i64,
    pub color: &'static str,
    pub size: &'static str,
    pub material: &'static str,
    pub created_day: i64,
}

pub(super) fn product(plan: &Plan, id: u64) -> Product {
    let (category, price_cents) = pricing(plan, id);
    let mut k = Keyed::new(plan.seed, Domain::Product, id);
    let batch = plan.products.batch_of(id);
    Product {
        category,
        adjective: k.pick(vocab::ADJECTIVES),
        noun: k.pick(category.nouns),
        price_cents,
        weight_g: k.random_range(category.weight_g.0..=category.weight_g.1),
        color: k.pick(vocab::COLORS),
        size: k.pick(vocab::SIZES),
        material: k.pick(vocab::MATERIALS),
        created_day: if batch == 0 {
            k.random_range(days_from_civil(2020, 1, 1)..START_DAY)
        } else {
            plan.day(batch)
        },
    }
}

/// A product's category and price: all an order line needs, drawn from their own key so a
/// line does not pay for the product's other facts.
fn pricing(plan: &Plan, id: u64) -> (Category, i64) {
    let mut k = Keyed::new(plan.seed, Domain::Price, id);
    let category = k.pick(vocab::CATEGORIES);
    // Prices end in .99 or .49 or .00 like real price tags.
    let dollars = k.random_range(category.price_cents.0 / 100..=category.price_cents.1 / 100);
    let cents = k.pick(&[99, 49, 0]);
    (category, dollars * 100 + cents)
}

/// An order header.
#[derive(Clone, Copy)]
pub(super) struct Order {
    pub customer_id: u64,
    pub placed_ms: i64,
    /// Index into [`vocab::STATUSES`].
    pub status: usize,
    pub channel: &'static str,
    pub lines: u32,
}

impl Order {
    pub(super) fn status_name(&self) -> &'static str {
        vocab::STATUSES[self.status].0
    }

    /// Whether the order has left the warehouse, so it has a shipment.
    pub(super) fn shipped(&self) -> bool {
        matches!(self.status_name(), "shipped" | "delivered" | "returned")
    }
}

/// Cumulative weights (percent) of [`vocab::STATUSES`].
const STATUS_WEIGHTS: [u32; 6] = [5, 15, 45, 87, 96, 100];

/// Order `id`, which `batch` introduced.
pub(super) fn order(plan: &Plan, id: u64, batch: u32) -> Order {
    let mut k = Keyed::new(plan.seed, Domain::Order, id);
    let late = batch > 0 && k.random::<f64>() < plan.rates.late;
    // A late order was placed on an earlier day but only arrives in this drop.
    let day = if late {
        plan.day(k.random_range(0..batch))
    } else {
        plan.day(batch)
    };
    let roll = k.random_range(0..100);
    Order {
        customer_id: k.random_range(1..=plan.customers.known(batch)),
        placed_ms: day * MS_PER_DAY
            + k.random_range(0..LAST_ORDER_HOUR * MS_PER_HOUR / 1000) * 1000,
        status: STATUS_WEIGHTS.iter().position(|&w| roll < w).unwrap_or(0),
        channel: k.pick(vocab::CHANNELS),
        lines: k.random_range(1..=4),
    }
}

/// One line of an order.
#[derive(Clone, Copy)]
pub(super) struct Line {
    pub product_id: u64,
    pub quantity: i64,
    pub unit_price_cents: i64,
    /// Percent off the line.
    pub discount_pct: i64,
}

impl Line {
    pub(super) fn total_cents(&self) -> i64 {
        (self.quantity * self.unit_price_cents * (100 - self.discount_pct) + 50) / 100
    }
}

/// Line `line_no` (1-based) of order `order_id`, which `batch` introduced.
pub(super) fn line(plan: &Plan, order_id: u64, line_no: u32, batch: u32) -> Line {
    let mut k = Keyed::new(
        plan.seed,
        Domain::Line,
        (order_id << 8) | u64::from(line_no),
    );
    let product_id = k.random_range(1..=plan.products.known(batch));
    Line {
        product_id,
        quantity: k.pick(&[1, 1, 1, 1, 2, 2, 3, 5]),
        unit_price_cents: pricing(plan, product_id).1,
        discount_pct: k.pick(&[0, 0, 0, 0, 0, 5, 10, 15, 20, 25]),
    }
}

/// What the customer pays for an order: the sum of its lines.
pub(super) fn order_total_cents(plan: &Plan, order_id: u64, order: &Order, batch: u32) -> i64 {
    (1..=order.lines)
        .map(|no| line(plan, order_id, no, batch).total_cents())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::options::GenerateArgs;

    #[test]
    fn facts_are_pure_and_consistent() {
        let plan = Plan::new(&GenerateArgs::new("unused".into()));
        let batch = 1;
        for id in plan.orders.new_in(batch) {
            let order = order(&plan, id, batch);
            assert!(order.customer_id >= 1 && order.customer_id <= plan.customers.known(batch));
            assert!((1..=4).contains(&order.lines));
            let again = super::order(&plan, id, batch);
            assert_eq!(order.placed_ms, again.placed_ms);
            assert!(order_total_cents(&plan, id, &order, batch) > 0);
        }
    }
}
