//! The project DAG and node selection, as dbt users know them (dbt-core's `graph/`).
//!
//! Pure data structures, no I/O: the caller parses the project into [`GraphNode`]s, builds a
//! [`Graph`] (which rejects unknown dependencies and cycles), resolves `--select`/`--exclude`
//! with [`Graph::select`], and drives a parallel run with the [`Schedule`] that
//! [`Graph::schedule`] returns.
//!
//! Every result is deterministic: nodes are kept in id order and ties are broken by id.

mod schedule;
mod select;
mod selector;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Component, Path, PathBuf};

pub use select::Selection;
pub use selector::SelectError;

use select::NodeMeta;

/// What kind of resource a node is (dbt's `resource_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeKind {
    #[default]
    Model,
    Seed,
    Test,
    Source,
    Snapshot,
}

impl NodeKind {
    /// The name dbt's `resource_type:` selector uses.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Model => "model",
            NodeKind::Seed => "seed",
            NodeKind::Test => "test",
            NodeKind::Source => "source",
            NodeKind::Snapshot => "snapshot",
        }
    }
}

impl std::fmt::Display for NodeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// dbt's `test_type:` of a test node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestType {
    /// Declared in a `.yml` file's `data_tests:`.
    Generic,
    /// A `.sql` file of its own.
    Singular,
    /// A `unit_tests:` entry: runs before the model it tests, on given rows.
    Unit,
}

/// One node of the project, as the parser found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphNode {
    /// Unique id, e.g. `model.shop.stg_orders`; `depends_on` refers to these.
    pub id: String,
    /// The name users select by: the model, seed or test name, or a source's table name.
    pub name: String,
    /// The dbt project (package) defining the node: the first part of its FQN, and what
    /// `package:` selects. May be left empty; selectors naming a package then match nothing.
    pub package: String,
    pub kind: NodeKind,
    /// The defining file, relative to the project root (`models/silver/stg_orders.sql`).
    /// For generic tests and sources this is the `.yml` file declaring them; a test whose file
    /// is a `.sql` file is a singular test. The folders between the first one (the resource
    /// folder: `models/`, `seeds/`, `tests/`) and the file make up the middle of the node's
    /// FQN (`silver.stg_orders`), which bare selectors match.
    pub path: PathBuf,
    pub tags: Vec<String>,
    /// `config.materialized` (`view`, `table`, `incremental`, ...); empty when not applicable.
    pub materialized: String,
    /// For sources, the source's name (`shop` in `source('shop', 'orders')`; `name` is then
    /// `orders`). `None` for every other kind.
    pub source_name: Option<String>,
    /// Ids of the nodes this one reads (refs, sources; for tests, the tested nodes).
    pub depends_on: Vec<String>,
    /// A unit test: its one dependency is the model it tests, which it runs before (on the
    /// model's own inputs' schedule) rather than after.
    pub unit_test: bool,
    /// The `state:` values the node matches against a saved manifest (`new`, `modified`,
    /// `modified.body`, ...); empty without one.
    pub state: Vec<String>,
}

impl GraphNode {
    /// A node with the given id, name and kind and everything else empty; fill in the rest
    /// with the `with_*` methods or by assigning the public fields.
    pub fn new(id: impl Into<String>, name: impl Into<String>, kind: NodeKind) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            kind,
            ..Self::default()
        }
    }

    pub fn with_package(mut self, package: impl Into<String>) -> Self {
        self.package = package.into();
        self
    }

    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = path.into();
        self
    }

    pub fn with_tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_materialized(mut self, materialized: impl Into<String>) -> Self {
        self.materialized = materialized.into();
        self
    }

    pub fn with_source_name(mut self, source_name: impl Into<String>) -> Self {
        self.source_name = Some(source_name.into());
        self
    }

    pub fn with_depends_on<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> Self {
        self.depends_on = ids.into_iter().map(Into::into).collect();
        self
    }

    /// Marks a test as a unit test of the model it depends on.
    pub fn with_unit_test(mut self) -> Self {
        self.unit_test = true;
        self
    }

    /// The test's type (singular: a `.sql` file of its own; generic: declared in a `.yml`
    /// file); `None` for nodes that are not tests.
    pub fn test_type(&self) -> Option<TestType> {
        if self.kind != NodeKind::Test {
            return None;
        }
        let singular = self
            .path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("sql"));
        Some(match (self.unit_test, singular) {
            (true, _) => TestType::Unit,
            (false, true) => TestType::Singular,
            (false, false) => TestType::Generic,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("duplicate node id `{0}`")]
    DuplicateId(String),
    #[error("`{node}` depends on `{dependency}`, which is not in the project")]
    UnknownDependency { node: String, dependency: String },
    /// `path` names the nodes in dependency order (`a -> b` means `b` depends on `a`) and
    /// ends where it started; `ids` holds the same nodes' ids, without the repetition.
    #[error("found a cycle: {path}")]
    Cycle { path: String, ids: Vec<String> },
}

/// The project's DAG: nodes in id order with their parent and child edges.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Sorted by id, so index order is id order.
    nodes: Vec<GraphNode>,
    index: BTreeMap<String, usize>,
    /// Sorted, deduplicated indices.
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
    /// Topological order, ties broken by id.
    topo: Vec<usize>,
    /// Per node, what selectors match against.
    meta: Vec<NodeMeta>,
}

impl Graph {
    /// Builds the graph. Fails on a duplicate id, a dependency on an id that is not among
    /// `nodes`, or a cycle (reported with node names: `a -> b -> c -> a`).
    pub fn new(mut nodes: Vec<GraphNode>) -> Result<Graph, GraphError> {
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut index = BTreeMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if index.insert(node.id.clone(), i).is_some() {
                return Err(GraphError::DuplicateId(node.id.clone()));
            }
        }
        let mut parents = Vec::with_capacity(nodes.len());
        let mut children = vec![Vec::new(); nodes.len()];
        for (i, node) in nodes.iter().enumerate() {
            let mut ps = Vec::with_capacity(node.depends_on.len());
            for dep in &node.depends_on {
                match index.get(dep) {
                    Some(&p) => ps.push(p),
                    None => {
                        return Err(GraphError::UnknownDependency {
                            node: node.id.clone(),
                            dependency: dep.clone(),
                        });
                    }
                }
            }
            ps.sort_unstable();
            ps.dedup();
            for &p in &ps {
                children[p].push(i);
            }
            parents.push(ps);
        }
        // Children were pushed in increasing child index, so they are already sorted.
        let meta = nodes.iter().map(NodeMeta::new).collect();
        let mut graph = Graph {
            nodes,
            index,
            parents,
            children,
            topo: Vec::new(),
            meta,
        };
        graph.topo = graph.sort_topologically()?;
        Ok(graph)
    }

    /// Kahn's algorithm, always taking the smallest ready id; on a cycle, reports one.
    fn sort_topologically(&self) -> Result<Vec<usize>, GraphError> {
        let mut waiting: Vec<usize> = self.parents.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<usize> =
            (0..self.nodes.len()).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &c in &self.children[i] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        if order.len() == self.nodes.len() {
            return Ok(order);
        }
        Err(self.cycle_error(&waiting))
    }

    /// Every node Kahn's algorithm left behind still waits on a parent that was also left
    /// behind, so walking up through such parents must come back on itself.
    fn cycle_error(&self, waiting: &[usize]) -> GraphError {
        let stuck = |i: usize| waiting[i] > 0;
        let Some(start) = (0..self.nodes.len()).find(|&i| stuck(i)) else {
            // Unreachable by construction; report something sensible rather than panic.
            return GraphError::Cycle {
                path: String::new(),
                ids: Vec::new(),
            };
        };
        let mut seen_at = BTreeMap::new();
        let mut walk = Vec::new();
        let mut at = start;
        while !seen_at.contains_key(&at) {
            seen_at.insert(at, walk.len());
            walk.push(at);
            match self.parents[at].iter().copied().find(|&p| stuck(p)) {
                Some(p) => at = p,
                None => break,
            }
        }
        // `walk` goes child -> parent; the cycle is its tail from the repeated node.
        let mut cycle: Vec<usize> = walk[seen_at.get(&at).copied().unwrap_or(0)..].to_vec();
        cycle.reverse(); // parent -> child, the direction data flows
        // Start at the smallest id, so the message does not depend on where the walk began.
        if let Some(min_pos) = cycle
            .iter()
            .enumerate()
            .min_by_key(|(_, i)| **i)
            .map(|(p, _)| p)
        {
            cycle.rotate_left(min_pos);
        }
        let mut names: Vec<&str> = cycle.iter().map(|&i| self.nodes[i].name.as_str()).collect();
        if let Some(&first) = names.first() {
            names.push(first);
        }
        GraphError::Cycle {
            path: names.join(" -> "),
            ids: cycle.iter().map(|&i| self.nodes[i].id.clone()).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Every id in dependency order (parents before children), ties broken by id.
    pub fn topological(&self) -> Vec<&str> {
        self.topo.iter().map(|&i| self.id(i)).collect()
    }

    /// The ancestors of the nodes at `ids`, as indices (see [`reach_from`]).
    fn ancestors_of(
        &self,
        ids: impl IntoIterator<Item = usize>,
        depth: Option<usize>,
    ) -> BTreeSet<usize> {
        reach_from(&self.parents, ids, depth)
    }

    /// The descendants of the nodes at `ids`, as indices (see [`reach_from`]).
    fn descendants_of(
        &self,
        ids: impl IntoIterator<Item = usize>,
        depth: Option<usize>,
    ) -> BTreeSet<usize> {
        reach_from(&self.children, ids, depth)
    }

    fn id(&self, i: usize) -> &str {
        &self.nodes[i].id
    }
}

/// Breadth-first search from `starts` along `edges`, keeping nodes whose shortest distance
/// from some start is between 1 and `depth`. A start is included only if it is reachable
/// from another start.
fn reach_from(
    edges: &[Vec<usize>],
    starts: impl IntoIterator<Item = usize>,
    depth: Option<usize>,
) -> BTreeSet<usize> {
    let mut found = BTreeSet::new();
    let mut dist: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::new();
    for s in starts {
        if s < edges.len() && dist.insert(s, 0).is_none() {
            queue.push_back(s);
        }
    }
    // A start can also be someone else's ancestor; BFS from all starts at distance 0 would
    // hide that, so track reachability (found) separately from the BFS frontier.
    while let Some(at) = queue.pop_front() {
        let d = dist[&at];
        if depth.is_some_and(|max| d >= max) {
            continue;
        }
        for &next in &edges[at] {
            found.insert(next);
            if let std::collections::btree_map::Entry::Vacant(e) = dist.entry(next) {
                e.insert(d + 1);
                queue.push_back(next);
            }
        }
    }
    found
}

/// A path's normal components, `/`-joined (`./models\silver/x.sql` -> `models/silver/x.sql`).
fn path_components(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .flat_map(|s| s.split('\\').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small dbt-like project shared by the graph tests.
    //!
    //! ```text
    //! source shop.orders ──> stg_orders ──┬──> fct_orders ──> rpt_daily
    //! source shop.customers ─> stg_customers ──┘      (stg_customers -> dim_customers)
    //! seed country_codes ──> dim_customers
    //! ```
    use super::*;

    pub fn model(name: &str, path: &str, deps: &[&str]) -> GraphNode {
        GraphNode::new(format!("model.shop.{name}"), name, NodeKind::Model)
            .with_path(path)
            .with_materialized("view")
            .with_depends_on(deps.iter().copied())
    }

    pub fn test(name: &str, path: &str, deps: &[&str]) -> GraphNode {
        GraphNode::new(format!("test.shop.{name}"), name, NodeKind::Test)
            .with_path(path)
            .with_materialized("test")
            .with_depends_on(deps.iter().copied())
    }

    pub fn source(source: &str, table: &str) -> GraphNode {
        GraphNode::new(
            format!("source.shop.{source}.{table}"),
            table,
            NodeKind::Source,
        )
        .with_path("models/bronze/sources.yml")
        .with_source_name(source)
    }

    pub fn seed(name: &str) -> GraphNode {
        GraphNode::new(format!("seed.shop.{name}"), name, NodeKind::Seed)
            .with_path(format!("seeds/{name}.csv"))
            .with_materialized("seed")
    }

    pub const SRC_ORDERS: &str = "source.shop.shop.orders";
    pub const SRC_CUSTOMERS: &str = "source.shop.shop.customers";
    pub const SRC_EVENTS: &str = "source.shop.web.events";
    pub const SEED: &str = "seed.shop.country_codes";
    pub const STG_ORDERS: &str = "model.shop.stg_orders";
    pub const STG_CUSTOMERS: &str = "model.shop.stg_customers";
    pub const STG_EVENTS: &str = "model.shop.stg_events";
    pub const DIM_CUSTOMERS: &str = "model.shop.dim_customers";
    pub const FCT_ORDERS: &str = "model.shop.fct_orders";
    pub const RPT_DAILY: &str = "model.shop.rpt_daily";
    pub const T_NN_STG_ORDERS: &str = "test.shop.not_null_stg_orders_id";
    pub const T_UQ_STG_ORDERS: &str = "test.shop.unique_stg_orders_id";
    pub const T_REL_ORDERS_CUSTOMERS: &str = "test.shop.relationships_stg_orders_customer_id";
    pub const T_NN_FCT: &str = "test.shop.not_null_fct_orders_id";
    pub const T_SINGULAR_DAILY: &str = "test.shop.assert_daily_positive";
    pub const T_SRC_ORDERS: &str = "test.shop.source_not_null_shop_orders_id";

    pub fn nodes() -> Vec<GraphNode> {
        vec![
            source("shop", "orders"),
            source("shop", "customers"),
            source("web", "events"),
            seed("country_codes"),
            model("stg_orders", "models/silver/stg_orders.sql", &[SRC_ORDERS])
                .with_tags(["nightly", "silver"]),
            model(
                "stg_customers",
                "models/silver/stg_customers.sql",
                &[SRC_CUSTOMERS],
            )
            .with_tags(["silver"]),
            model(
                "stg_events",
                "models/silver/web/stg_events.sql",
                &[SRC_EVENTS],
            )
            .with_tags(["hourly"])
            .with_materialized("incremental"),
            model(
                "dim_customers",
                "models/gold/dim_customers.sql",
                &[STG_CUSTOMERS, SEED],
            )
            .with_tags(["nightly"])
            .with_materialized("table"),
            model(
                "fct_orders",
                "models/gold/fct_orders.sql",
                &[STG_ORDERS, STG_CUSTOMERS],
            )
            .with_tags(["nightly"])
            .with_materialized("incremental"),
            model(
                "rpt_daily",
                "models/gold/reports/rpt_daily.sql",
                &[FCT_ORDERS],
            )
            .with_materialized("table"),
            test(
                "not_null_stg_orders_id",
                "models/silver/schema.yml",
                &[STG_ORDERS],
            ),
            test(
                "unique_stg_orders_id",
                "models/silver/schema.yml",
                &[STG_ORDERS],
            ),
            test(
                "relationships_stg_orders_customer_id",
                "models/silver/schema.yml",
                &[STG_ORDERS, STG_CUSTOMERS],
            ),
            test(
                "not_null_fct_orders_id",
                "models/gold/schema.yml",
                &[FCT_ORDERS],
            ),
            test(
                "assert_daily_positive",
                "tests/assert_daily_positive.sql",
                &[RPT_DAILY],
            ),
            test(
                "source_not_null_shop_orders_id",
                "models/bronze/sources.yml",
                &[SRC_ORDERS],
            ),
        ]
    }

    pub fn graph() -> Graph {
        Graph::new(nodes()).expect("fixture graph is valid")
    }

    /// `ids` as an owned set, for comparisons.
    pub fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }
}

/// Reading the graph node by node, for tests; runs read it through selection and schedules.
#[cfg(test)]
impl Graph {
    /// The nodes `id` depends on, transitively, up to `depth` edges away (`None`: no limit;
    /// `Some(1)`: the parents). Excludes `id` itself; empty for an unknown id.
    pub fn ancestors(&self, id: &str, depth: Option<usize>) -> BTreeSet<&str> {
        self.reach(id, depth, &self.parents)
    }

    /// The nodes depending on `id`, transitively, up to `depth` edges away (`None`: no
    /// limit). Excludes `id` itself; empty for an unknown id.
    pub fn descendants(&self, id: &str, depth: Option<usize>) -> BTreeSet<&str> {
        self.reach(id, depth, &self.children)
    }

    fn reach<'a>(
        &'a self,
        id: &str,
        depth: Option<usize>,
        edges: &[Vec<usize>],
    ) -> BTreeSet<&'a str> {
        match self.index.get(id) {
            Some(&i) => reach_from(edges, [i], depth)
                .into_iter()
                .map(|j| self.id(j))
                .collect(),
            None => BTreeSet::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&GraphNode> {
        self.index.get(id).map(|&i| &self.nodes[i])
    }

    /// All nodes, in id order.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &GraphNode> {
        self.nodes.iter()
    }

    /// The direct parents (dependencies) of `id`, in id order; empty for an unknown id.
    pub fn parents(&self, id: &str) -> Vec<&str> {
        self.neighbours(id, &self.parents)
    }

    /// The direct children (dependents) of `id`, in id order; empty for an unknown id.
    pub fn children(&self, id: &str) -> Vec<&str> {
        self.neighbours(id, &self.children)
    }

    fn neighbours<'a>(&'a self, id: &str, edges: &[Vec<usize>]) -> Vec<&'a str> {
        match self.index.get(id) {
            Some(&i) => edges[i].iter().map(|&j| self.id(j)).collect(),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;

    fn chain(edges: &[(&str, &[&str])]) -> Result<Graph, GraphError> {
        Graph::new(
            edges
                .iter()
                .map(|(id, deps)| {
                    GraphNode::new(*id, format!("{id}_name"), NodeKind::Model)
                        .with_depends_on(deps.iter().copied())
                })
                .collect(),
        )
    }

    #[test]
    fn topological_order_is_deterministic_with_ties_by_id() {
        let g = chain(&[
            ("d", &["b", "c"]),
            ("c", &["a"]),
            ("b", &["a"]),
            ("a", &[]),
            ("e", &[]),
        ])
        .unwrap();
        assert_eq!(g.topological(), ["a", "b", "c", "d", "e"]);
        let g = chain(&[("z", &[]), ("y", &["z"]), ("x", &["y"]), ("a", &["x"])]).unwrap();
        assert_eq!(g.topological(), ["z", "y", "x", "a"]);
    }

    #[test]
    fn fixture_topological_puts_parents_first() {
        let g = graph();
        let order = g.topological();
        assert_eq!(order.len(), g.len());
        let pos = |id: &str| order.iter().position(|x| *x == id).unwrap();
        for node in g.nodes() {
            for dep in &node.depends_on {
                assert!(pos(dep) < pos(&node.id), "{dep} before {}", node.id);
            }
        }
        // Same input in another order gives the same graph order.
        let mut reversed = nodes();
        reversed.reverse();
        assert_eq!(Graph::new(reversed).unwrap().topological(), order);
    }

    #[test]
    fn cycle_is_reported_with_names_in_dependency_order() {
        let err = chain(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("d", &["c"])]).unwrap_err();
        assert_eq!(
            err,
            GraphError::Cycle {
                path: "a_name -> b_name -> c_name -> a_name".into(),
                ids: vec!["a".into(), "b".into(), "c".into()],
            }
        );
        assert_eq!(
            err.to_string(),
            "found a cycle: a_name -> b_name -> c_name -> a_name"
        );
    }

    #[test]
    fn cycle_downstream_of_other_stuck_nodes_is_found() {
        // `a` is stuck only because it sits downstream of the cycle y <-> z.
        let err = chain(&[("a", &["z"]), ("y", &["z"]), ("z", &["y"])]).unwrap_err();
        assert_eq!(err.to_string(), "found a cycle: y_name -> z_name -> y_name");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let err = chain(&[("a", &["a"])]).unwrap_err();
        assert_eq!(err.to_string(), "found a cycle: a_name -> a_name");
    }

    #[test]
    fn unknown_dependency_and_duplicate_id_are_errors() {
        assert_eq!(
            chain(&[("a", &["ghost"])]).unwrap_err(),
            GraphError::UnknownDependency {
                node: "a".into(),
                dependency: "ghost".into()
            }
        );
        assert_eq!(
            chain(&[("a", &[]), ("a", &[])]).unwrap_err(),
            GraphError::DuplicateId("a".into())
        );
    }

    #[test]
    fn duplicate_dependencies_are_collapsed() {
        let g = chain(&[("a", &[]), ("b", &["a", "a"])]).unwrap();
        assert_eq!(g.parents("b"), ["a"]);
        assert_eq!(g.children("a"), ["b"]);
    }

    #[test]
    fn empty_graph_is_fine() {
        let g = Graph::new(Vec::new()).unwrap();
        assert!(g.is_empty());
        assert!(g.topological().is_empty());
    }

    #[test]
    fn parents_children_ancestors_descendants() {
        let g = graph();
        assert_eq!(g.parents(FCT_ORDERS), [STG_CUSTOMERS, STG_ORDERS]);
        assert_eq!(
            g.children(STG_ORDERS),
            [
                FCT_ORDERS,
                T_NN_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS,
                T_UQ_STG_ORDERS
            ]
        );
        let anc: Vec<_> = g.ancestors(RPT_DAILY, None).into_iter().collect();
        assert_eq!(
            anc,
            [
                FCT_ORDERS,
                STG_CUSTOMERS,
                STG_ORDERS,
                SRC_CUSTOMERS,
                SRC_ORDERS
            ]
        );
        let anc1: Vec<_> = g.ancestors(RPT_DAILY, Some(2)).into_iter().collect();
        assert_eq!(anc1, [FCT_ORDERS, STG_CUSTOMERS, STG_ORDERS]);
        assert!(g.ancestors(RPT_DAILY, Some(0)).is_empty());
        let desc: Vec<_> = g.descendants(STG_CUSTOMERS, Some(1)).into_iter().collect();
        assert_eq!(desc, [DIM_CUSTOMERS, FCT_ORDERS, T_REL_ORDERS_CUSTOMERS]);
        let desc: Vec<_> = g.descendants(STG_CUSTOMERS, None).into_iter().collect();
        assert_eq!(
            desc,
            [
                DIM_CUSTOMERS,
                FCT_ORDERS,
                RPT_DAILY,
                T_SINGULAR_DAILY,
                T_NN_FCT,
                T_REL_ORDERS_CUSTOMERS,
            ]
        );
        assert!(g.parents("nope").is_empty());
        assert!(g.descendants("nope", None).is_empty());
    }

    #[test]
    fn depth_uses_the_shortest_distance() {
        // a -> b -> c -> d and a -> d: d is one step from a even though also three.
        let g = chain(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["c", "a"])]).unwrap();
        let d1: Vec<_> = g.descendants("a", Some(1)).into_iter().collect();
        assert_eq!(d1, ["b", "d"]);
        let a1: Vec<_> = g.ancestors("d", Some(1)).into_iter().collect();
        assert_eq!(a1, ["a", "c"]);
    }

    #[test]
    fn singular_tests_are_sql_files() {
        let g = graph();
        let test_type = |id| g.node(id).unwrap().test_type();
        assert_eq!(test_type(T_SINGULAR_DAILY), Some(TestType::Singular));
        assert_eq!(test_type(T_NN_FCT), Some(TestType::Generic));
        assert_eq!(test_type(FCT_ORDERS), None);
    }

    #[test]
    fn path_components_normalise() {
        assert_eq!(
            path_components(Path::new("./models//silver/x.sql")),
            ["models", "silver", "x.sql"]
        );
        assert_eq!(
            path_components(Path::new("models\\silver\\x.sql")),
            ["models", "silver", "x.sql"]
        );
        assert!(path_components(Path::new("")).is_empty());
    }
}
