//! `--select` / `--exclude`: dbt's node selection syntax and semantics.
//!
//! Each argument holds space-separated selectors (a union); a selector may join criteria with
//! commas (an intersection); each criterion is `[@][N+][method:]value[+N]`. The set algebra,
//! including how tests are pulled in after their models ("indirect selection"), follows
//! dbt-core's `NodeSelector` step for step, so that the same selectors pick the same nodes,
//! with two deliberate differences (see [`Graph::select_with`] and `FqnSelector`): an
//! exclusion always takes the tests of what it excludes, and a dotless name glob (`stg_*`)
//! matches names in any folder.

use std::collections::BTreeSet;

use super::selector::{Criterion, Intersection, Method, SelectError, parse_union};
use super::{Graph, NodeKind, path_components};

/// How tests are pulled in when the nodes they test are selected (dbt's
/// `--indirect-selection`). Only tests are ever selected indirectly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IndirectSelection {
    /// A test is selected when ANY node it depends on is selected (dbt's default).
    #[default]
    Eager,
    /// A test is selected only when ALL the nodes it depends on are selected.
    Cautious,
    /// A test is selected when all the nodes it depends on are selected or are ancestors of
    /// selected nodes (or sources).
    Buildable,
    /// Tests are selected only when a selector matches them directly.
    Empty,
}

impl IndirectSelection {
    /// The flag value: `eager`, `cautious`, `buildable` or `empty`.
    pub fn as_str(self) -> &'static str {
        match self {
            IndirectSelection::Eager => "eager",
            IndirectSelection::Cautious => "cautious",
            IndirectSelection::Buildable => "buildable",
            IndirectSelection::Empty => "empty",
        }
    }
}

impl std::fmt::Display for IndirectSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IndirectSelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "eager" => Ok(IndirectSelection::Eager),
            "cautious" => Ok(IndirectSelection::Cautious),
            "buildable" => Ok(IndirectSelection::Buildable),
            "empty" => Ok(IndirectSelection::Empty),
            other => Err(format!(
                "unknown indirect selection `{other}` (expected eager, cautious, buildable or empty)"
            )),
        }
    }
}

/// The outcome of [`Graph::select`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The selected node ids. May contain sources when a selector reaches them (`+model`,
    /// `source:shop`); [`Graph::schedule`] leaves sources out, since they are never run.
    pub ids: BTreeSet<String>,
    /// Selectors (as written, one per space-separated element of `--select` or `--exclude`)
    /// that matched no node. Not an error: dbt warns about each and carries on.
    pub unmatched: Vec<String>,
}

/// dbt's pair of sets: nodes selected, and tests held back because not all their parents
/// are (yet) selected; a later union may complete them (cautious and buildable modes).
#[derive(Debug, Default)]
struct Bundle {
    direct: BTreeSet<usize>,
    indirect: BTreeSet<usize>,
}

#[derive(Clone, Copy)]
enum SetOp {
    Union,
    Intersection,
    Difference,
}

impl SetOp {
    fn combine(self, mut sets: impl Iterator<Item = BTreeSet<usize>>) -> BTreeSet<usize> {
        let Some(first) = sets.next() else {
            return BTreeSet::new();
        };
        sets.fold(first, |acc, set| match self {
            SetOp::Union => &acc | &set,
            SetOp::Intersection => &acc & &set,
            SetOp::Difference => &acc - &set,
        })
    }
}

impl Graph {
    /// Resolves `--select` and `--exclude` arguments the way dbt does, with dbt's default
    /// indirect selection ([`IndirectSelection::Eager`]: a test comes along when any node it
    /// tests is selected).
    ///
    /// No selectors at all selects every node but sources. A selector that matches nothing is
    /// listed in [`Selection::unmatched`]; an unknown method or malformed selector is an error.
    pub fn select<S: AsRef<str>>(
        &self,
        select: &[S],
        exclude: &[S],
    ) -> Result<Selection, SelectError> {
        self.select_with(select, exclude, IndirectSelection::default())
    }

    /// [`Graph::select`] with an explicit indirect selection mode (`--indirect-selection`).
    /// The mode applies to `select`; `exclude` always takes the tests of what it matches
    /// along (eagerly), so that no test of an excluded node is left selected. (Recent dbt
    /// versions apply the mode to `exclude` too, so that `cautious` can keep a test one of
    /// whose tested nodes was excluded.)
    pub fn select_with<S: AsRef<str>>(
        &self,
        select: &[S],
        exclude: &[S],
        mode: IndirectSelection,
    ) -> Result<Selection, SelectError> {
        let included = parse_union(select)?;
        let excluded = parse_union(exclude)?;
        let mut unmatched = Vec::new();
        let included = if included.is_empty() {
            Bundle {
                direct: (0..self.len())
                    .filter(|&i| self.nodes[i].kind != NodeKind::Source)
                    .collect(),
                indirect: BTreeSet::new(),
            }
        } else {
            self.eval_union(&included, mode, &mut unmatched)
        };
        let excluded = self.eval_union(&excluded, IndirectSelection::Eager, &mut unmatched);
        let result = self.combine(vec![included, excluded], SetOp::Difference, mode);
        let mut seen = BTreeSet::new();
        unmatched.retain(|raw| seen.insert(raw.clone()));
        Ok(Selection {
            ids: result
                .direct
                .into_iter()
                .map(|i| self.nodes[i].id.clone())
                .collect(),
            unmatched,
        })
    }

    fn eval_union(
        &self,
        union: &[Intersection],
        mode: IndirectSelection,
        unmatched: &mut Vec<String>,
    ) -> Bundle {
        let bundles = union
            .iter()
            .map(|intersection| {
                let bundles = intersection
                    .criteria
                    .iter()
                    .map(|c| self.eval_criterion(c, mode))
                    .collect();
                let bundle = self.combine(bundles, SetOp::Intersection, mode);
                if bundle.direct.is_empty() {
                    unmatched.push(intersection.raw.clone());
                }
                bundle
            })
            .collect();
        self.combine(bundles, SetOp::Union, mode)
    }

    /// dbt's `select_nodes_recursively` for a group: combine the direct sets, and the
    /// direct-or-indirect sets, then let held-back tests in if their parents now are.
    fn combine(&self, bundles: Vec<Bundle>, op: SetOp, mode: IndirectSelection) -> Bundle {
        let (directs, all): (Vec<_>, Vec<_>) = bundles
            .into_iter()
            .map(|b| {
                let all = &b.direct | &b.indirect;
                (b.direct, all)
            })
            .unzip();
        let mut direct = op.combine(directs.into_iter());
        let indirect = op.combine(all.into_iter());
        let admissible = match mode {
            IndirectSelection::Cautious => Some(direct.clone()),
            IndirectSelection::Buildable => {
                Some(&direct | &self.ancestors_of(direct.iter().copied(), None))
            }
            IndirectSelection::Eager | IndirectSelection::Empty => None,
        };
        if let Some(admissible) = admissible {
            let admitted: Vec<usize> = indirect
                .iter()
                .copied()
                .filter(|&t| {
                    !direct.contains(&t) && self.parents[t].iter().all(|p| admissible.contains(p))
                })
                .collect();
            direct.extend(admitted);
        }
        Bundle { direct, indirect }
    }

    /// dbt's `get_nodes_from_criteria`: the matches, their relatives as the graph operators
    /// ask, and the tests that come along with them.
    fn eval_criterion(&self, criterion: &Criterion, mode: IndirectSelection) -> Bundle {
        let collected: BTreeSet<usize> = (0..self.len())
            .filter(|&i| self.matches(&criterion.method, i))
            .collect();
        let mut selected = collected.clone();
        if criterion.childrens_parents {
            let mut with_children = self.descendants_of(collected.iter().copied(), None);
            with_children.extend(collected.iter().copied());
            selected.extend(self.ancestors_of(with_children.iter().copied(), None));
            selected.extend(with_children);
        }
        if let Some(depth) = criterion.parents {
            selected.extend(self.ancestors_of(collected.iter().copied(), depth));
        }
        if let Some(depth) = criterion.children {
            selected.extend(self.descendants_of(collected.iter().copied(), depth));
        }
        self.expand_tests(selected, mode)
    }

    /// dbt's `expand_selection`: tests that are children of selected nodes are selected
    /// (eager), held back until all their parents are (cautious), or also admitted when their
    /// other parents are upstream of the selection (buildable).
    fn expand_tests(&self, selected: BTreeSet<usize>, mode: IndirectSelection) -> Bundle {
        if mode == IndirectSelection::Empty {
            return Bundle {
                direct: selected,
                indirect: BTreeSet::new(),
            };
        }
        // The nodes a test's parents must all be among for the test to be taken now.
        let admissible = match mode {
            IndirectSelection::Eager | IndirectSelection::Empty => None,
            IndirectSelection::Cautious => Some(selected.clone()),
            IndirectSelection::Buildable => {
                let mut set = &selected | &self.ancestors_of(selected.iter().copied(), None);
                set.extend((0..self.len()).filter(|&i| self.nodes[i].kind == NodeKind::Source));
                Some(set)
            }
        };
        let tests: BTreeSet<usize> = selected
            .iter()
            .flat_map(|&i| self.children[i].iter().copied())
            .filter(|&c| self.nodes[c].kind == NodeKind::Test)
            .collect();
        let mut direct = selected;
        let mut indirect = BTreeSet::new();
        for t in tests {
            let take = admissible
                .as_ref()
                .is_none_or(|set| self.parents[t].iter().all(|p| set.contains(p)));
            if take {
                direct.insert(t);
            } else {
                indirect.insert(t);
            }
        }
        Bundle { direct, indirect }
    }

    fn matches(&self, method: &Method, i: usize) -> bool {
        let node = &self.nodes[i];
        let meta = &self.meta[i];
        match method {
            Method::Fqn(selector) => {
                // dbt's FQN method never matches sources (they have `source:`), and tries the
                // FQN with and without its leading package name.
                node.kind != NodeKind::Source
                    && (selector.matches(&meta.fqn)
                        || (!node.package.is_empty() && selector.matches(&meta.fqn[1..]))
                        || selector.matches_name(&node.name))
            }
            Method::Path(pattern) => pattern.is_match(&meta.path),
            Method::File(pattern) => meta.path.last().is_some_and(|file| {
                let stem = file
                    .rsplit_once('.')
                    .map_or(file.as_str(), |(stem, _)| stem);
                pattern.is_match(file) || pattern.is_match(stem)
            }),
            Method::Tag(pattern) => node.tags.iter().any(|t| pattern.is_match(t)),
            Method::Materialized(value) => {
                node.kind != NodeKind::Source && node.materialized == *value
            }
            Method::ConfigTag(value) => node.tags.iter().any(|t| t == value),
            Method::ResourceType(kind) => Some(node.kind) == *kind,
            Method::TestType(test_type) => node.test_type() == Some(*test_type),
            Method::Source {
                package,
                source,
                table,
            } => {
                node.kind == NodeKind::Source
                    && package
                        .as_ref()
                        .is_none_or(|p| node.package.is_empty() || p.is_match(&node.package))
                    && node
                        .source_name
                        .as_deref()
                        .is_some_and(|s| source.is_match(s))
                    && table.as_ref().is_none_or(|t| t.is_match(&node.name))
            }
            Method::Package(pattern) => pattern.is_match(&node.package),
            Method::State(value) => node.state.iter().any(|s| s == value),
        }
    }
}

/// What selection needs of a node beyond its fields, computed once.
#[derive(Debug, Clone)]
pub(super) struct NodeMeta {
    /// The file's path components (`["models", "silver", "stg_orders.sql"]`).
    pub path: Vec<String>,
    /// dbt's fully qualified name: package (when known), the folders under the resource
    /// folder, the source name for sources, then the name:
    /// `["shop", "silver", "stg_orders"]`.
    pub fqn: Vec<String>,
}

impl NodeMeta {
    pub(super) fn new(node: &super::GraphNode) -> Self {
        let path = path_components(&node.path);
        let mut fqn = Vec::new();
        if !node.package.is_empty() {
            fqn.push(node.package.clone());
        }
        if path.len() > 2 {
            fqn.extend(path[1..path.len() - 1].iter().cloned());
        }
        if node.kind == NodeKind::Source
            && let Some(source) = &node.source_name
        {
            fqn.push(source.clone());
        }
        fqn.push(node.name.clone());
        NodeMeta { path, fqn }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{GraphNode, NodeKind};
    use super::*;

    fn sel(g: &Graph, select: &[&str]) -> BTreeSet<String> {
        g.select(select, &[]).unwrap().ids
    }

    fn sel_ex(g: &Graph, select: &[&str], exclude: &[&str]) -> BTreeSet<String> {
        g.select(select, exclude).unwrap().ids
    }

    fn all_but_sources(g: &Graph) -> BTreeSet<String> {
        g.nodes()
            .filter(|n| n.kind != NodeKind::Source)
            .map(|n| n.id.clone())
            .collect()
    }

    #[test]
    fn select_reports_the_first_error() {
        let g = graph();
        assert!(matches!(
            g.select(&["stg_orders", "bogus:x"], &[]),
            Err(SelectError::UnknownMethod { method, .. }) if method == "bogus"
        ));
        assert!(g.select(&["stg_orders"], &["tag:"]).is_err());
    }

    // ---- methods ----

    #[test]
    fn empty_selection_is_everything_but_sources() {
        let g = graph();
        let none: [&str; 0] = [];
        let s = g.select(&none, &none).unwrap();
        assert_eq!(s.ids, all_but_sources(&g));
        assert!(s.unmatched.is_empty());
        assert_eq!(sel(&g, &["  "]), all_but_sources(&g));
        assert_eq!(sel(&g, &["*"]), all_but_sources(&g));
        assert_eq!(sel(&g, &["fqn:*"]), all_but_sources(&g));
    }

    #[test]
    fn by_name_pulls_in_its_tests() {
        let g = graph();
        assert_eq!(
            sel(&g, &["stg_orders"]),
            set(&[
                STG_ORDERS,
                T_NN_STG_ORDERS,
                T_UQ_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS
            ])
        );
        assert_eq!(sel(&g, &["country_codes"]), set(&[SEED]));
        // A test by name is just the test.
        assert_eq!(sel(&g, &["unique_stg_orders_id"]), set(&[T_UQ_STG_ORDERS]));
        // The source table is not matched by name.
        assert_eq!(sel(&g, &["orders"]), set(&[]));
    }

    #[test]
    fn by_fqn_like_dbt() {
        let g = graph();
        let web = set(&[STG_EVENTS]);
        assert_eq!(sel(&g, &["silver.web.stg_events"]), web);
        assert_eq!(sel(&g, &["web.stg_events"]), set(&[]));
        // A folder (the FQN's first level) selects everything in it, tests declared there too.
        assert_eq!(
            sel(&g, &["gold.reports"]),
            set(&[RPT_DAILY, T_SINGULAR_DAILY])
        );
        assert_eq!(sel(&g, &["silver.web"]), web);
        // A wildcard globs the rest of the FQN.
        assert_eq!(sel(&g, &["silver.*events"]), web);
        assert_eq!(sel(&g, &["fqn:silver.web.*"]), web);
        // Beyond dbt: a dotless glob matches names in any folder.
        assert_eq!(
            sel(&g, &["stg_*"]),
            sel(&g, &["stg_orders stg_customers stg_events"])
        );
        // The three models and the three tests on stg_orders (one also on stg_customers).
        assert_eq!(sel(&g, &["stg_*"]).len(), 6);
    }

    #[test]
    fn fqn_with_a_package_matches_scoped_and_unscoped() {
        let mut nodes = nodes();
        for n in &mut nodes {
            n.package = "shop".into();
        }
        let g = Graph::new(nodes).unwrap();
        assert_eq!(sel(&g, &["shop.silver.web.stg_events"]), set(&[STG_EVENTS]));
        assert_eq!(sel(&g, &["silver.web.stg_events"]), set(&[STG_EVENTS]));
        assert_eq!(sel(&g, &["shop"]), all_but_sources(&g));
        assert_eq!(sel(&g, &["package:shop"]).len(), g.len());
        assert_eq!(sel(&g, &["package:other"]), set(&[]));
        assert_eq!(sel(&g, &["source:shop.web.events"]), set(&[SRC_EVENTS]));
        assert_eq!(sel(&g, &["source:other.web.events"]), set(&[]));
    }

    #[test]
    fn by_path_folder_file_and_glob() {
        let g = graph();
        let silver_models = [STG_ORDERS, STG_CUSTOMERS, STG_EVENTS];
        let silver_tests = [T_NN_STG_ORDERS, T_UQ_STG_ORDERS, T_REL_ORDERS_CUSTOMERS];
        let silver: Vec<&str> = silver_models.iter().chain(&silver_tests).copied().collect();
        assert_eq!(sel(&g, &["path:models/silver"]), set(&silver));
        assert_eq!(sel(&g, &["path:models/silver/"]), set(&silver));
        assert_eq!(sel(&g, &["path:./models/silver"]), set(&silver));
        assert_eq!(sel(&g, &["models/silver"]), set(&silver)); // default method
        // A folder name is matched as a whole component.
        assert_eq!(sel(&g, &["path:models/silv"]), set(&[]));
        assert_eq!(
            sel(&g, &["path:models/silver/stg_orders.sql"]),
            sel(&g, &["stg_orders"])
        );
        assert_eq!(
            sel(&g, &["models/silver/web/stg_events.sql"]),
            set(&[STG_EVENTS])
        );
        // `*` stays within a folder (but a matched folder brings what is in it)...
        assert_eq!(
            sel(&g, &["path:models/silver/*.sql"]),
            sel(&g, &["stg_orders stg_customers"])
        );
        assert_eq!(sel(&g, &["path:models/silver/*"]), set(&silver));
        // ... `**` crosses folders.
        assert_eq!(
            sel(&g, &["path:models/**/stg_*.sql"]),
            sel(&g, &["stg_orders stg_customers stg_events"])
        );
        // Sources are matched by their yml file; a source's own tests come along (eager).
        assert_eq!(
            sel(&g, &["path:models/bronze/sources.yml"]),
            set(&[SRC_ORDERS, SRC_CUSTOMERS, SRC_EVENTS, T_SRC_ORDERS])
        );
        assert_eq!(sel(&g, &["path:seeds"]), set(&[SEED]));
        assert_eq!(sel(&g, &["path:."]).len(), g.len());
    }

    #[test]
    fn by_file_name() {
        let g = graph();
        assert_eq!(sel(&g, &["file:stg_events.sql"]), set(&[STG_EVENTS]));
        assert_eq!(sel(&g, &["file:stg_events"]), set(&[STG_EVENTS]));
        assert_eq!(sel(&g, &["stg_events.sql"]), set(&[STG_EVENTS]));
        assert_eq!(sel(&g, &["country_codes.csv"]), set(&[SEED]));
        assert_eq!(
            sel(&g, &["file:schema.yml"]),
            set(&[
                T_NN_STG_ORDERS,
                T_UQ_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS,
                T_NN_FCT
            ])
        );
    }

    #[test]
    fn by_tag_with_globs() {
        let g = graph();
        let nightly = set(&[
            STG_ORDERS,
            DIM_CUSTOMERS,
            FCT_ORDERS,
            T_NN_STG_ORDERS,
            T_UQ_STG_ORDERS,
            T_REL_ORDERS_CUSTOMERS,
            T_NN_FCT,
        ]);
        assert_eq!(sel(&g, &["tag:nightly"]), nightly);
        assert_eq!(sel(&g, &["tag:night*"]), nightly);
        assert_eq!(sel(&g, &["config.tags:nightly"]), nightly);
        assert_eq!(sel(&g, &["config.tags:night*"]), set(&[]));
        assert_eq!(sel(&g, &["tag:hourly"]), set(&[STG_EVENTS]));
    }

    #[test]
    fn by_materialization() {
        let g = graph();
        assert_eq!(
            sel(&g, &["config.materialized:incremental"]),
            set(&[STG_EVENTS, FCT_ORDERS, T_NN_FCT])
        );
        assert_eq!(
            sel(&g, &["config.materialized:table"]),
            set(&[DIM_CUSTOMERS, RPT_DAILY, T_SINGULAR_DAILY])
        );
        assert_eq!(sel(&g, &["config.materialized:ephemeral"]), set(&[]));
    }

    #[test]
    fn by_resource_type_and_test_type() {
        let g = graph();
        assert_eq!(sel(&g, &["resource_type:seed"]), set(&[SEED]));
        assert_eq!(
            sel(&g, &["resource_type:source"]),
            set(&[SRC_ORDERS, SRC_CUSTOMERS, SRC_EVENTS, T_SRC_ORDERS])
        );
        let tests = [
            T_NN_STG_ORDERS,
            T_UQ_STG_ORDERS,
            T_REL_ORDERS_CUSTOMERS,
            T_NN_FCT,
            T_SINGULAR_DAILY,
            T_SRC_ORDERS,
        ];
        assert_eq!(sel(&g, &["resource_type:test"]), set(&tests));
        // dbt pulls tests in after models even here; exclude them to get models only.
        let models = [
            STG_ORDERS,
            STG_CUSTOMERS,
            STG_EVENTS,
            DIM_CUSTOMERS,
            FCT_ORDERS,
            RPT_DAILY,
        ];
        assert_eq!(
            sel_ex(&g, &["resource_type:model"], &["resource_type:test"]),
            set(&models)
        );
        assert_eq!(sel(&g, &["resource_type:snapshot"]), set(&[]));
        assert_eq!(sel(&g, &["test_type:singular"]), set(&[T_SINGULAR_DAILY]));
        assert_eq!(sel(&g, &["test_type:data"]), set(&[T_SINGULAR_DAILY]));
        let generic: Vec<&str> = tests
            .iter()
            .copied()
            .filter(|t| *t != T_SINGULAR_DAILY)
            .collect();
        assert_eq!(sel(&g, &["test_type:generic"]), set(&generic));
        assert_eq!(sel(&g, &["test_type:unit"]), set(&[]));
    }

    #[test]
    fn by_source() {
        let g = graph();
        assert_eq!(
            sel(&g, &["source:shop"]),
            set(&[SRC_ORDERS, SRC_CUSTOMERS, T_SRC_ORDERS])
        );
        assert_eq!(
            sel(&g, &["source:shop.orders"]),
            set(&[SRC_ORDERS, T_SRC_ORDERS])
        );
        assert_eq!(sel(&g, &["source:shop.cust*"]), set(&[SRC_CUSTOMERS]));
        assert_eq!(sel(&g, &["source:*.events"]), set(&[SRC_EVENTS]));
        assert_eq!(
            sel(&g, &["source:anything.shop.customers"]),
            set(&[SRC_CUSTOMERS])
        );
        assert_eq!(sel(&g, &["source:nope"]), set(&[]));
        // Everything downstream of a source.
        assert_eq!(
            sel_ex(&g, &["source:web+"], &["resource_type:source"]),
            set(&[STG_EVENTS])
        );
    }

    // ---- graph operators ----

    #[test]
    fn ancestors_and_descendants_with_depth() {
        let g = graph();
        assert_eq!(
            sel_ex(&g, &["+rpt_daily"], &["resource_type:test"]),
            set(&[
                RPT_DAILY,
                FCT_ORDERS,
                STG_ORDERS,
                STG_CUSTOMERS,
                SRC_ORDERS,
                SRC_CUSTOMERS
            ])
        );
        assert_eq!(
            sel_ex(&g, &["1+rpt_daily"], &["resource_type:test"]),
            set(&[RPT_DAILY, FCT_ORDERS])
        );
        assert_eq!(
            sel_ex(&g, &["2+rpt_daily"], &["resource_type:test"]),
            set(&[RPT_DAILY, FCT_ORDERS, STG_ORDERS, STG_CUSTOMERS])
        );
        assert_eq!(
            sel_ex(&g, &["stg_customers+"], &["resource_type:test"]),
            set(&[STG_CUSTOMERS, DIM_CUSTOMERS, FCT_ORDERS, RPT_DAILY])
        );
        assert_eq!(
            sel_ex(&g, &["stg_customers+1"], &["resource_type:test"]),
            set(&[STG_CUSTOMERS, DIM_CUSTOMERS, FCT_ORDERS])
        );
        assert_eq!(
            sel_ex(&g, &["1+fct_orders+1"], &["resource_type:test"]),
            set(&[STG_ORDERS, STG_CUSTOMERS, FCT_ORDERS, RPT_DAILY])
        );
        assert_eq!(
            sel_ex(&g, &["0+fct_orders+0"], &["resource_type:test"]),
            set(&[FCT_ORDERS])
        );
        // Operators apply to every match of the method.
        assert_eq!(
            sel_ex(&g, &["tag:hourly+"], &["resource_type:test"]),
            set(&[STG_EVENTS])
        );
    }

    #[test]
    fn at_operator_adds_the_parents_of_descendants() {
        let g = graph();
        // fct_orders' descendants (rpt_daily, tests) and all their ancestors, which brings
        // stg_customers' branch; dim_customers is not an ancestor of any of them.
        let got = sel(&g, &["@stg_orders"]);
        let expected = set(&[
            STG_ORDERS,
            FCT_ORDERS,
            RPT_DAILY,
            STG_CUSTOMERS,
            SRC_ORDERS,
            SRC_CUSTOMERS,
            T_NN_STG_ORDERS,
            T_UQ_STG_ORDERS,
            T_REL_ORDERS_CUSTOMERS,
            T_NN_FCT,
            T_SINGULAR_DAILY,
            T_SRC_ORDERS,
        ]);
        assert_eq!(got, expected);
        assert!(!got.contains(DIM_CUSTOMERS));
    }

    // ---- set algebra ----

    #[test]
    fn space_and_arguments_are_unions() {
        let g = graph();
        let one = sel(&g, &["stg_events country_codes"]);
        let two = sel(&g, &["stg_events", "country_codes"]);
        assert_eq!(one, set(&[STG_EVENTS, SEED]));
        assert_eq!(one, two);
        // Tabs and repeated spaces are separators too.
        assert_eq!(sel(&g, &["stg_events\t  country_codes "]), one);
    }

    #[test]
    fn commas_are_intersections() {
        let g = graph();
        assert_eq!(
            sel(&g, &["tag:nightly,path:models/gold"]),
            set(&[DIM_CUSTOMERS, FCT_ORDERS, T_NN_FCT])
        );
        assert_eq!(
            sel(&g, &["tag:nightly,config.materialized:table"]),
            set(&[DIM_CUSTOMERS])
        );
        // Intersection with graph operators: the gold part of stg_orders' descendants.
        assert_eq!(
            sel(&g, &["stg_orders+,path:models/gold"]),
            set(&[FCT_ORDERS, RPT_DAILY, T_NN_FCT, T_SINGULAR_DAILY])
        );
        assert_eq!(sel(&g, &["tag:nightly,tag:hourly"]), set(&[]));
    }

    #[test]
    fn exclude_removes_matches_and_their_tests() {
        let g = graph();
        let got = sel_ex(&g, &["tag:nightly"], &["fct_orders"]);
        assert_eq!(
            got,
            set(&[
                STG_ORDERS,
                DIM_CUSTOMERS,
                T_NN_STG_ORDERS,
                T_UQ_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS
            ])
        );
        // Excluding everything downstream.
        assert_eq!(
            sel_ex(&g, &["stg_orders+"], &["fct_orders+"]),
            set(&[
                STG_ORDERS,
                T_NN_STG_ORDERS,
                T_UQ_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS
            ])
        );
        // Excluding a single test keeps its model.
        assert_eq!(
            sel_ex(&g, &["stg_orders"], &["unique_stg_orders_id"]),
            set(&[STG_ORDERS, T_NN_STG_ORDERS, T_REL_ORDERS_CUSTOMERS])
        );
        // Exclude with the default (everything) selection; intersection in an exclude.
        let mut expected = all_but_sources(&g);
        for id in [FCT_ORDERS, DIM_CUSTOMERS, T_NN_FCT] {
            expected.remove(id);
        }
        let none: [&str; 0] = [];
        assert_eq!(
            g.select(&none, &["tag:nightly,path:models/gold"])
                .unwrap()
                .ids,
            expected
        );
    }

    #[test]
    fn unmatched_selectors_are_reported_not_errors() {
        let g = graph();
        let s = g
            .select(
                &["stg_orders nope tag:nope,stg_orders", "nope"],
                &["tag:gone", "stg_events"],
            )
            .unwrap();
        assert_eq!(s.unmatched, ["nope", "tag:nope,stg_orders", "tag:gone"]);
        assert!(s.ids.contains(STG_ORDERS));
    }

    // ---- indirect selection of tests ----

    #[test]
    fn eager_takes_tests_with_any_parent_selected() {
        let g = graph();
        // The relationships test also depends on stg_customers, which is not selected.
        assert!(sel(&g, &["stg_orders"]).contains(T_REL_ORDERS_CUSTOMERS));
        // ... and excluding stg_customers drops it (exclusion is eager too).
        assert!(!sel_ex(&g, &["stg_orders"], &["stg_customers"]).contains(T_REL_ORDERS_CUSTOMERS));
        // Tests are only pulled in from selected nodes' direct children: rpt_daily's test
        // does not come along with fct_orders.
        assert!(!sel(&g, &["fct_orders"]).contains(T_SINGULAR_DAILY));
    }

    #[test]
    fn cautious_takes_tests_with_all_parents_selected() {
        let g = graph();
        let cautious = |s: &[&str], e: &[&str]| {
            g.select_with(s, e, IndirectSelection::Cautious)
                .unwrap()
                .ids
        };
        assert_eq!(
            cautious(&["stg_orders"], &[]),
            set(&[STG_ORDERS, T_NN_STG_ORDERS, T_UQ_STG_ORDERS])
        );
        // Once both parents are selected, by separate selectors, the test comes along.
        assert!(cautious(&["stg_orders stg_customers"], &[]).contains(T_REL_ORDERS_CUSTOMERS));
        assert!(cautious(&["stg_orders", "stg_customers"], &[]).contains(T_REL_ORDERS_CUSTOMERS));
        assert!(
            !cautious(&["stg_orders stg_customers"], &["stg_customers"])
                .contains(T_REL_ORDERS_CUSTOMERS)
        );
        // A direct match is kept whatever the mode.
        assert_eq!(
            cautious(&["relationships_stg_orders_customer_id"], &[]),
            set(&[T_REL_ORDERS_CUSTOMERS])
        );
    }

    #[test]
    fn buildable_and_empty_modes() {
        let g = graph();
        let with = |mode, s: &[&str]| g.select_with(s, &[], mode).unwrap().ids;
        // fct_orders' ancestors include stg_customers, so the relationships test on
        // stg_orders + stg_customers is buildable from `stg_orders fct_orders`.
        assert!(
            with(IndirectSelection::Buildable, &["stg_orders fct_orders"])
                .contains(T_REL_ORDERS_CUSTOMERS)
        );
        assert!(
            !with(IndirectSelection::Buildable, &["stg_orders"]).contains(T_REL_ORDERS_CUSTOMERS)
        );
        assert!(with(IndirectSelection::Buildable, &["stg_orders"]).contains(T_NN_STG_ORDERS));
        assert_eq!(
            with(IndirectSelection::Empty, &["stg_orders"]),
            set(&[STG_ORDERS])
        );
    }

    #[test]
    fn tests_on_sources_come_with_the_source() {
        let g = graph();
        assert!(sel(&g, &["+stg_orders"]).contains(T_SRC_ORDERS));
        assert!(!sel(&g, &["stg_orders"]).contains(T_SRC_ORDERS));
    }

    #[test]
    fn indirect_selection_parses_like_the_flag() {
        for mode in [
            IndirectSelection::Eager,
            IndirectSelection::Cautious,
            IndirectSelection::Buildable,
            IndirectSelection::Empty,
        ] {
            assert_eq!(mode.to_string().parse::<IndirectSelection>(), Ok(mode));
        }
        assert!("greedy".parse::<IndirectSelection>().is_err());
        assert_eq!(IndirectSelection::default(), IndirectSelection::Eager);
    }

    #[test]
    fn arguments_may_be_owned_or_borrowed() {
        let g = graph();
        let select: Vec<String> = vec!["tag:nightly".into()];
        let exclude: Vec<String> = vec!["fct_orders".into()];
        let owned = g.select(&select, &exclude).unwrap();
        assert_eq!(owned, g.select(&["tag:nightly"], &["fct_orders"]).unwrap());
        assert_eq!(g.select(&select, &[]).unwrap().ids.len(), 7);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let g = graph();
        for raw in [
            "",
            ",",
            ",,",
            "+a+",
            "@@a",
            "a:b:c",
            "path:",
            "path:/",
            "path:..",
            "file:*",
            "::",
            "::x",
            "tag:[!a]*",
            "source:.",
            "fqn:.",
            "fqn:..",
            "ünïcödé",
            "1+2+3",
            "+0",
            "@+",
            "a,,b",
        ] {
            let _ = g.select(&[raw], &[raw]);
        }
        let empty = Graph::new(Vec::<GraphNode>::new()).unwrap();
        assert!(empty.select(&["*"], &[]).unwrap().ids.is_empty());
    }
}
