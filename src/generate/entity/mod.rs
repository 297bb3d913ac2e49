//! The shop's seven source tables and how each is stored.

mod customers;
mod events;
mod order_items;
mod orders;
mod payments;
mod products;
mod shipments;

use std::io;

use indicatif::ProgressBar;

use super::dirt::Tally;
use super::output::{OutFile, Written};
use super::plan::Plan;
use super::text::{TextFile, TextFormat};
use crate::lake::RawFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entity {
    Customers,
    Products,
    Orders,
    OrderItems,
    Payments,
    Shipments,
    Events,
}

/// How an entity's files are laid out.
enum Layout {
    Text(TextFormat),
    Parquet,
}

impl Entity {
    pub(super) const ALL: [Entity; 7] = [
        Entity::Customers,
        Entity::Products,
        Entity::Orders,
        Entity::OrderItems,
        Entity::Payments,
        Entity::Shipments,
        Entity::Events,
    ];

    /// Directory and file-name stem.
    pub(super) fn name(self) -> &'static str {
        match self {
            Entity::Customers => "customers",
            Entity::Products => "products",
            Entity::Orders => "orders",
            Entity::OrderItems => "order_items",
            Entity::Payments => "payments",
            Entity::Shipments => "shipments",
            Entity::Events => "events",
        }
    }

    fn layout(self) -> Layout {
        match self {
            Entity::Customers | Entity::Orders => Layout::Text(TextFormat::Csv),
            Entity::Products => Layout::Text(TextFormat::JsonArray),
            Entity::Payments | Entity::Events => Layout::Text(TextFormat::Ndjson),
            Entity::Shipments => Layout::Text(TextFormat::Xml),
            Entity::OrderItems => Layout::Parquet,
        }
    }

    pub(super) fn format(self) -> RawFormat {
        match self.layout() {
            Layout::Text(format) => format.format(),
            Layout::Parquet => RawFormat::Parquet,
        }
    }

    /// Rough number of records over all batches, for the progress bar.
    pub(super) fn expected_records(self, plan: &Plan) -> u64 {
        let orders = plan.orders.total();
        match self {
            Entity::Customers => plan.customers.total(),
            Entity::Products => plan.products.total(),
            Entity::Orders => orders,
            Entity::OrderItems => orders * 5 / 2,
            Entity::Payments => orders,
            Entity::Shipments => orders * 4 / 5,
            Entity::Events => orders * 5,
        }
    }

    /// Writes this entity's file of `batch` (0-based) to `out`.
    pub(super) fn write(
        self,
        plan: &Plan,
        batch: u32,
        out: OutFile,
        progress: &ProgressBar,
    ) -> io::Result<(Tally, Written)> {
        // The stream index is the entity's position, so streams never change with --formats.
        let mut rng = plan.rng(self as u32, batch);
        let format = match self.layout() {
            Layout::Parquet => return order_items::write(plan, batch, out, &mut rng, progress),
            Layout::Text(format) => format,
        };
        let file = TextFile {
            format,
            root: self.name(),
            out,
            rng: &mut rng,
            rates: &plan.rates,
            progress,
        };
        match self {
            Entity::Customers => file.write(customers::Customers::new(plan, batch)),
            Entity::Products => file.write(products::Products::new(plan, batch)),
            Entity::Orders => file.write(orders::Orders::new(plan, batch)),
            Entity::Payments => file.write(payments::Payments::new(plan, batch)),
            Entity::Shipments => file.write(shipments::Shipments::new(plan, batch)),
            Entity::Events => file.write(events::Events::new(plan, batch)),
            Entity::OrderItems => unreachable!("order_items is written as Parquet"),
        }
    }
}
