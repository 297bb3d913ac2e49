//! Running a selection in parallel: which nodes may start, and which to skip after a failure.
//!
//! The order is dbt's for `build`: a node waits for its selected ancestors (through any
//! unselected nodes between them, which are assumed already built), and for the selected
//! tests of its ancestors: a node whose upstream model failed an (error-severity) test is
//! skipped rather than built on bad data.

use std::collections::{BTreeMap, BTreeSet};

use super::{Graph, NodeKind};

/// Where a node of a [`Schedule`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Waiting for some of its upstream nodes.
    Pending,
    /// May start; not yet handed out by [`Schedule::ready`].
    Ready,
    /// Handed out by [`Schedule::ready`], not yet completed.
    Running,
    Succeeded,
    Failed,
    /// An upstream node failed; it will not run.
    Skipped,
}

/// A state machine for running selected nodes with any number of workers.
///
/// ```text
/// let mut schedule = graph.schedule(&selection.ids);
/// schedule.prioritize(|id| /* estimated work of id */);
/// while !schedule.is_done() {
///     while /* a worker is free */ {
///         let Some(id) = schedule.start_next() else { break };
///         /* hand id to it */
///     }
///     let (id, ok) = /* wait for a worker to finish */;
///     for skipped in schedule.complete(&id, ok) { /* report as skipped */ }
/// }
/// ```
///
/// Every query and result is in id order, except that ready nodes are handed out by rank
/// when [`Schedule::prioritize`] gave them one. Odd calls (an unknown id, completing a node
/// that was not ready, completing twice) are ignored rather than panicking.
#[derive(Debug, Clone)]
pub struct Schedule<'g> {
    graph: &'g Graph,
    /// The scheduled nodes' indices in the graph, in id order; positions in this list are
    /// the indices below.
    nodes: Vec<usize>,
    /// Per graph node, its position when scheduled.
    position: Vec<Option<usize>>,
    /// Nodes that must succeed before this one starts (sorted).
    upstream: Vec<Vec<usize>>,
    downstream: Vec<Vec<usize>>,
    /// How many upstream nodes have not yet succeeded.
    waiting: Vec<usize>,
    state: Vec<NodeState>,
    /// The nodes in [`NodeState::Ready`].
    ready: BTreeSet<usize>,
    /// Which ready node starts first: the highest (see [`Schedule::prioritize`]).
    priority: Vec<u64>,
    /// How many nodes are not finished.
    unfinished: usize,
}

#[cfg(test)]
impl Schedule<'_> {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The state of a scheduled node; `None` if `id` is not scheduled.
    pub fn state(&self, id: &str) -> Option<NodeState> {
        self.at(id).map(|i| self.state[i])
    }

    /// The scheduled nodes in `state`, in id order.
    pub fn in_state(&self, state: NodeState) -> Vec<&str> {
        (0..self.nodes.len())
            .filter(|&i| self.state[i] == state)
            .map(|i| self.id(i))
            .collect()
    }

    /// The scheduled nodes `id` waits for directly. Followed transitively, these lead to
    /// every scheduled node upstream of `id` and every scheduled test whose tested nodes are
    /// all ancestors of `id`.
    pub fn upstream(&self, id: &str) -> Vec<&str> {
        self.neighbours(id, &self.upstream)
    }

    /// The scheduled nodes waiting for `id`.
    pub fn downstream(&self, id: &str) -> Vec<&str> {
        self.neighbours(id, &self.downstream)
    }

    fn neighbours<'a>(&'a self, id: &str, edges: &[Vec<usize>]) -> Vec<&'a str> {
        match self.at(id) {
            Some(i) => edges[i].iter().map(|&j| self.id(j)).collect(),
            None => Vec::new(),
        }
    }

    /// How many nodes are scheduled.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The scheduled ids, in id order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> {
        (0..self.nodes.len()).map(|p| self.id(p))
    }
}

impl Schedule<'_> {
    /// The id of the node at position `p`.
    fn id(&self, p: usize) -> &str {
        &self.graph.nodes[self.nodes[p]].id
    }

    /// The position of `id`, if scheduled.
    fn at(&self, id: &str) -> Option<usize> {
        self.graph.index.get(id).and_then(|&g| self.position[g])
    }

    /// Ranks each node by the work on the costliest chain from it to the end of the run:
    /// its own `cost` plus the highest rank among the nodes waiting for it. Ready nodes are
    /// then handed out highest rank first, so that chain starts as early as it can. Without
    /// ranks, ready nodes are handed out in id order.
    pub fn prioritize(&mut self, cost: impl Fn(&str) -> u64) {
        let n = self.nodes.len();
        let mut waiting: Vec<usize> = self.upstream.iter().map(Vec::len).collect();
        let mut order: Vec<usize> = (0..n).filter(|&p| waiting[p] == 0).collect();
        let mut next = 0;
        while let Some(&p) = order.get(next) {
            next += 1;
            for &c in &self.downstream[p] {
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    order.push(c);
                }
            }
        }
        let mut priority = vec![0u64; n];
        for &p in order.iter().rev() {
            let below = self.downstream[p].iter().map(|&c| priority[c]).max();
            priority[p] = cost(self.id(p)).saturating_add(below.unwrap_or(0));
        }
        self.priority = priority;
    }

    /// The ready node to start next, now [`NodeState::Running`]: the highest ranked, ties in
    /// id order. `None` while nothing is ready.
    pub fn start_next(&mut self) -> Option<String> {
        let &p = self
            .ready
            .iter()
            .max_by_key(|&&p| (self.priority[p], std::cmp::Reverse(p)))?;
        self.ready.remove(&p);
        self.state[p] = NodeState::Running;
        Some(self.id(p).to_string())
    }

    /// Every node that may start now and was not handed out before, in the order
    /// [`Schedule::start_next`] hands them out (id order without ranks). The tests' view of
    /// a step; runs take one node at a time.
    #[cfg(test)]
    pub fn ready(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.start_next()).collect()
    }

    /// Records that `id` finished: `ok` is false when it failed (for a test, when it failed
    /// with error severity; a warning is a success). Returns the ids newly skipped because of
    /// a failure, in id order: every scheduled node downstream of `id`.
    ///
    /// Ignored (returning nothing) unless `id` is ready or running.
    pub fn complete(&mut self, id: &str, ok: bool) -> Vec<String> {
        let Some(i) = self.at(id) else {
            return Vec::new();
        };
        match self.state[i] {
            NodeState::Ready => {
                self.ready.remove(&i);
            }
            NodeState::Running => {}
            _ => return Vec::new(),
        }
        self.unfinished -= 1;
        if ok {
            self.state[i] = NodeState::Succeeded;
            for &c in &self.downstream[i] {
                self.waiting[c] -= 1;
                if self.waiting[c] == 0 && self.state[c] == NodeState::Pending {
                    self.state[c] = NodeState::Ready;
                    self.ready.insert(c);
                }
            }
            return Vec::new();
        }
        self.state[i] = NodeState::Failed;
        // Downstream nodes of an unfinished node are all still pending (or already skipped,
        // with everything downstream of them).
        let mut skipped = BTreeSet::new();
        let mut stack = self.downstream[i].clone();
        while let Some(c) = stack.pop() {
            if self.state[c] == NodeState::Pending {
                self.state[c] = NodeState::Skipped;
                self.unfinished -= 1;
                skipped.insert(c);
                stack.extend_from_slice(&self.downstream[c]);
            }
        }
        skipped
            .into_iter()
            .map(|c| self.id(c).to_string())
            .collect()
    }

    /// Whether every node has succeeded, failed or been skipped.
    pub fn is_done(&self) -> bool {
        self.unfinished == 0
    }
}

impl Graph {
    /// A [`Schedule`] for running `selected` (ids not in the graph are ignored, and so are
    /// sources, which are never run).
    ///
    /// A node waits for the selected nodes upstream of it, looking through unselected nodes
    /// (assumed already built) to the nearest selected ones, as dbt does. Like dbt's `build`,
    /// a selected test also gates the nodes downstream of everything it tests: a node waits
    /// for every selected test whose tested nodes are all among its ancestors, so when such a
    /// test fails the node is skipped. Only selected nodes are ever waited for, so a node
    /// whose upstream is entirely unselected is ready at once.
    pub fn schedule(&self, selected: &BTreeSet<String>) -> Schedule<'_> {
        let n = self.len();
        let scheduled: Vec<bool> = self
            .nodes
            .iter()
            .map(|node| node.kind != NodeKind::Source && selected.contains(&node.id))
            .collect();

        // Test gates: extra upstream edges from selected tests (dbt's `add_test_edges`).
        let mut gates: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut gated_by_deps: BTreeMap<&[usize], Vec<usize>> = BTreeMap::new();
        let gates_others =
            |t: usize| self.nodes[t].kind == NodeKind::Test && !self.nodes[t].unit_test;
        for t in (0..n).filter(|&t| scheduled[t] && gates_others(t)) {
            let deps = self.parents[t].as_slice();
            if deps.is_empty() {
                continue;
            }
            let gated = gated_by_deps
                .entry(deps)
                .or_insert_with(|| self.gated_by(deps));
            for &g in gated.iter() {
                gates[g].push(t);
            }
        }

        // Each scheduled node waits for the nearest scheduled nodes upstream of it, looking
        // through unscheduled ones, along parent edges and test gates.
        let nodes: Vec<usize> = (0..n).filter(|&i| scheduled[i]).collect();
        let mut position = vec![None; n];
        for (pos, &i) in nodes.iter().enumerate() {
            position[i] = Some(pos);
        }
        let mut upstream = Vec::with_capacity(nodes.len());
        for &i in &nodes {
            let mut found = BTreeSet::new();
            let mut seen = BTreeSet::new();
            let mut stack: Vec<usize> = self.waits_for(i).chain(gates[i].iter().copied()).collect();
            while let Some(p) = stack.pop() {
                if !seen.insert(p) {
                    continue;
                }
                if let Some(pos) = position[p] {
                    found.insert(pos);
                } else {
                    stack.extend(self.waits_for(p).chain(gates[p].iter().copied()));
                }
            }
            upstream.push(found.into_iter().collect::<Vec<usize>>());
        }

        let mut downstream = vec![Vec::new(); upstream.len()];
        for (pos, ups) in upstream.iter().enumerate() {
            for &u in ups {
                downstream[u].push(pos);
            }
        }
        let waiting: Vec<usize> = upstream.iter().map(Vec::len).collect();
        let ready: BTreeSet<usize> = (0..waiting.len()).filter(|&p| waiting[p] == 0).collect();
        let state = (0..waiting.len())
            .map(|p| {
                if ready.contains(&p) {
                    NodeState::Ready
                } else {
                    NodeState::Pending
                }
            })
            .collect();
        Schedule {
            graph: self,
            unfinished: nodes.len(),
            priority: vec![0; nodes.len()],
            nodes,
            position,
            upstream,
            downstream,
            waiting,
            state,
            ready,
        }
    }

    /// The nodes `i` runs after, besides test gates: its parents, and its unit tests (dbt's
    /// `build` runs a model's unit tests first). A unit test runs after its model's parents,
    /// not after the model.
    fn waits_for(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let unit_tests = self.children[i]
            .iter()
            .copied()
            .filter(|&c| self.nodes[c].unit_test);
        let parents: Box<dyn Iterator<Item = usize> + '_> = if self.nodes[i].unit_test {
            Box::new(
                self.parents[i]
                    .iter()
                    .flat_map(|&m| self.parents[m].iter().copied()),
            )
        } else {
            Box::new(self.parents[i].iter().copied().chain(unit_tests))
        };
        parents
    }

    /// Nodes that a test on `deps` gates. dbt adds an edge from the test to every non-test
    /// node having all of `deps` among its ancestors; those nodes are closed under taking
    /// descendants, so it is enough to gate the first of them on each path (the rest wait on
    /// those), and returning a few more than that changes nothing.
    fn gated_by(&self, deps: &[usize]) -> Vec<usize> {
        let is_test = |i: usize| self.nodes[i].kind == NodeKind::Test;
        if let [dep] = deps {
            // With one tested node, the first non-test nodes below it: its children, unless
            // (oddly) reached through tests.
            let mut found = BTreeSet::new();
            let mut seen = BTreeSet::new();
            let mut stack = self.children[*dep].clone();
            while let Some(c) = stack.pop() {
                if !seen.insert(c) {
                    continue;
                }
                if is_test(c) {
                    stack.extend_from_slice(&self.children[c]);
                } else {
                    found.insert(c);
                }
            }
            return found.into_iter().collect();
        }
        let n = self.len();
        let mut common = vec![true; n];
        for &d in deps {
            let mut below = vec![false; n];
            let mut stack = vec![d];
            while let Some(at) = stack.pop() {
                for &c in &self.children[at] {
                    if !below[c] {
                        below[c] = true;
                        stack.push(c);
                    }
                }
            }
            for (keep, is_below) in common.iter_mut().zip(below) {
                *keep &= is_below;
            }
        }
        let candidate = |i: usize| common[i] && !is_test(i);
        (0..n)
            .filter(|&i| candidate(i) && !self.parents[i].iter().any(|&p| candidate(p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::{GraphNode, NodeKind};
    use super::*;

    fn all(g: &Graph) -> BTreeSet<String> {
        g.nodes().map(|n| n.id.clone()).collect()
    }

    /// Runs the schedule to the end with `workers` workers, finishing the running node
    /// chosen by a fixed pseudo-random sequence; nodes in `failing` fail. Checks on the way
    /// that nothing starts before everything upstream of it succeeded, and returns the
    /// order in which nodes started.
    fn run(schedule: &mut Schedule, workers: usize, failing: &[&str], seed: u64) -> Vec<String> {
        let mut rng = seed;
        let mut queue: Vec<String> = Vec::new();
        let mut running: Vec<String> = Vec::new();
        let mut started = Vec::new();
        let mut steps = 0;
        while !schedule.is_done() {
            steps += 1;
            assert!(steps < 10_000, "schedule does not finish");
            queue.extend(schedule.ready());
            while running.len() < workers && !queue.is_empty() {
                let id = queue.remove(0);
                for up in schedule.upstream(&id) {
                    assert_eq!(
                        schedule.state(up),
                        Some(NodeState::Succeeded),
                        "{id} started before {up}"
                    );
                }
                assert_eq!(schedule.state(&id), Some(NodeState::Running));
                started.push(id.clone());
                running.push(id);
            }
            assert!(!running.is_empty(), "stuck: nothing running, nothing ready");
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = running.remove((rng >> 33) as usize % running.len());
            let skipped = schedule.complete(&id, !failing.contains(&id.as_str()));
            for s in &skipped {
                assert_eq!(schedule.state(s), Some(NodeState::Skipped));
                assert!(!started.contains(s));
            }
        }
        assert!(queue.is_empty() && running.is_empty());
        started
    }

    #[test]
    fn ranked_nodes_start_along_the_costliest_chain_first() {
        // a -> b -> c cost 1 each; d costs 10 and is tested by t_d, which gates e (cost 5).
        let g = Graph::new(vec![
            model("a", "models/a.sql", &[]),
            model("b", "models/b.sql", &["model.shop.a"]),
            model("c", "models/c.sql", &["model.shop.b"]),
            model("d", "models/d.sql", &[]),
            model("e", "models/e.sql", &["model.shop.d"]),
            test("t_d", "models/schema.yml", &["model.shop.d"]),
        ])
        .unwrap();
        let mut s = g.schedule(&all(&g));
        s.prioritize(|id| match id {
            "model.shop.d" => 10,
            "model.shop.e" => 5,
            _ => 1,
        });
        // d's chain (d, t_d, e: 16) outweighs a's (a, b, c: 3) though a sorts first.
        assert_eq!(s.start_next().as_deref(), Some("model.shop.d"));
        assert_eq!(s.start_next().as_deref(), Some("model.shop.a"));
        assert_eq!(s.start_next(), None);
        s.complete("model.shop.a", true);
        s.complete("model.shop.d", true);
        // t_d (6, with the e it gates) before b (2), though b sorts first.
        assert_eq!(s.ready(), ["test.shop.t_d", "model.shop.b"]);
        s.complete("test.shop.t_d", true);
        assert_eq!(s.start_next().as_deref(), Some("model.shop.e"));
    }

    #[test]
    fn sources_and_unknown_ids_are_not_scheduled() {
        let g = graph();
        let mut selected = all(&g);
        selected.insert("model.shop.ghost".into());
        let s = g.schedule(&selected);
        assert_eq!(s.len(), g.len() - 3);
        assert_eq!(s.state(SRC_ORDERS), None);
        assert_eq!(s.state("model.shop.ghost"), None);
    }

    #[test]
    fn initial_readiness_allows_parallel_roots() {
        let g = graph();
        let mut s = g.schedule(&all(&g));
        // Everything whose only parents are sources may start at once, but stg_orders waits
        // for the test on its source.
        assert_eq!(s.ready(), [STG_CUSTOMERS, STG_EVENTS, SEED, T_SRC_ORDERS]);
        assert!(s.ready().is_empty(), "handed out only once");
        assert_eq!(s.in_state(NodeState::Running).len(), 4);
        assert_eq!(s.state(STG_ORDERS), Some(NodeState::Pending));
        assert!(!s.is_done());
        s.complete(T_SRC_ORDERS, true);
        assert_eq!(s.ready(), [STG_ORDERS]);
    }

    #[test]
    fn a_failed_source_test_skips_everything_built_on_the_source() {
        let g = graph();
        let mut s = g.schedule(&all(&g));
        s.ready();
        assert_eq!(
            s.complete(T_SRC_ORDERS, false),
            [
                FCT_ORDERS,
                RPT_DAILY,
                STG_ORDERS,
                T_SINGULAR_DAILY,
                T_NN_FCT,
                T_NN_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS,
                T_UQ_STG_ORDERS,
            ]
        );
    }

    /// Starts the roots of the fixture and lets the test on the orders source pass, so
    /// that the staging models are running.
    fn start(g: &Graph) -> Schedule<'_> {
        let mut s = g.schedule(&all(g));
        s.ready();
        s.complete(T_SRC_ORDERS, true);
        assert_eq!(s.ready(), [STG_ORDERS]);
        s
    }

    #[test]
    fn tests_gate_the_children_of_their_models() {
        let g = graph();
        let s = g.schedule(&all(&g));
        assert_eq!(s.upstream(STG_ORDERS), [T_SRC_ORDERS]);
        assert_eq!(s.upstream(STG_CUSTOMERS), Vec::<&str>::new());
        assert_eq!(s.upstream(T_NN_STG_ORDERS), [STG_ORDERS]);
        // fct_orders waits for both staging models and every test on them, the relationships
        // test included (it tests two of fct_orders' ancestors).
        assert_eq!(
            s.upstream(FCT_ORDERS),
            [
                STG_CUSTOMERS,
                STG_ORDERS,
                T_NN_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS,
                T_UQ_STG_ORDERS
            ]
        );
        // dim_customers does not descend from stg_orders, so the relationships test does not
        // gate it.
        assert_eq!(s.upstream(DIM_CUSTOMERS), [STG_CUSTOMERS, SEED]);
        assert_eq!(s.upstream(RPT_DAILY), [FCT_ORDERS, T_NN_FCT]);
        // A test on a source gates the source's descendants.
        assert_eq!(
            g.schedule(&set(&[T_SRC_ORDERS, STG_ORDERS]))
                .upstream(STG_ORDERS),
            [T_SRC_ORDERS]
        );
    }

    #[test]
    fn build_order_runs_a_models_tests_before_its_children() {
        let g = graph();
        let mut s = start(&g);
        assert!(s.complete(STG_ORDERS, true).is_empty());
        assert!(s.complete(STG_CUSTOMERS, true).is_empty());
        assert!(s.complete(SEED, true).is_empty());
        assert_eq!(
            s.ready(),
            [
                DIM_CUSTOMERS,
                T_NN_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS,
                T_UQ_STG_ORDERS
            ],
            "fct_orders waits for the staging tests"
        );
        s.complete(T_NN_STG_ORDERS, true);
        s.complete(T_UQ_STG_ORDERS, true);
        assert!(s.ready().is_empty());
        s.complete(T_REL_ORDERS_CUSTOMERS, true);
        assert_eq!(s.ready(), [FCT_ORDERS]);
        s.complete(FCT_ORDERS, true);
        assert_eq!(s.ready(), [T_NN_FCT]);
        s.complete(T_NN_FCT, true);
        assert_eq!(s.ready(), [RPT_DAILY]);
    }

    #[test]
    fn a_failed_model_skips_its_tests_and_descendants() {
        let g = graph();
        let mut s = start(&g);
        assert_eq!(
            s.complete(STG_ORDERS, false),
            [
                FCT_ORDERS,
                RPT_DAILY,
                T_SINGULAR_DAILY,
                T_NN_FCT,
                T_NN_STG_ORDERS,
                T_REL_ORDERS_CUSTOMERS,
                T_UQ_STG_ORDERS,
            ]
        );
        assert_eq!(s.state(STG_ORDERS), Some(NodeState::Failed));
        // Others go on.
        assert_eq!(s.state(STG_CUSTOMERS), Some(NodeState::Running));
        s.complete(STG_CUSTOMERS, true);
        s.complete(SEED, true);
        assert_eq!(s.ready(), [DIM_CUSTOMERS]);
    }

    #[test]
    fn a_failed_test_skips_its_models_children_but_not_sibling_tests() {
        let g = graph();
        let mut s = start(&g);
        s.complete(STG_ORDERS, true);
        s.complete(STG_CUSTOMERS, true);
        s.complete(SEED, true);
        s.ready();
        let skipped = s.complete(T_UQ_STG_ORDERS, false);
        assert_eq!(skipped, [FCT_ORDERS, RPT_DAILY, T_SINGULAR_DAILY, T_NN_FCT]);
        // The model's other tests, and the other branch, still run.
        assert_eq!(s.state(T_NN_STG_ORDERS), Some(NodeState::Running));
        assert_eq!(s.state(DIM_CUSTOMERS), Some(NodeState::Running));
        assert_eq!(s.state(STG_ORDERS), Some(NodeState::Succeeded));
        // Completing a skipped node is ignored; so are repeats and unknown ids.
        assert!(s.complete(FCT_ORDERS, true).is_empty());
        assert_eq!(s.state(FCT_ORDERS), Some(NodeState::Skipped));
        assert!(s.complete(T_UQ_STG_ORDERS, true).is_empty());
        assert_eq!(s.state(T_UQ_STG_ORDERS), Some(NodeState::Failed));
        assert!(s.complete("nope", false).is_empty());
        for id in [
            T_NN_STG_ORDERS,
            T_REL_ORDERS_CUSTOMERS,
            DIM_CUSTOMERS,
            STG_EVENTS,
        ] {
            assert!(!s.is_done());
            s.complete(id, true);
        }
        assert!(s.ready().is_empty());
        assert!(s.is_done());
        assert_eq!(s.in_state(NodeState::Skipped).len(), 4);
        assert_eq!(s.in_state(NodeState::Failed), [T_UQ_STG_ORDERS]);
    }

    #[test]
    fn a_failed_relationships_test_skips_only_the_common_descendants() {
        let g = graph();
        let mut s = start(&g);
        s.complete(STG_ORDERS, true);
        s.complete(STG_CUSTOMERS, true);
        s.complete(SEED, true);
        s.ready();
        assert_eq!(
            s.complete(T_REL_ORDERS_CUSTOMERS, false),
            [FCT_ORDERS, RPT_DAILY, T_SINGULAR_DAILY, T_NN_FCT]
        );
        assert_eq!(s.state(DIM_CUSTOMERS), Some(NodeState::Running));
    }

    #[test]
    fn pending_nodes_cannot_be_completed_early() {
        let g = graph();
        let mut s = g.schedule(&all(&g));
        assert!(s.complete(FCT_ORDERS, true).is_empty());
        assert_eq!(s.state(FCT_ORDERS), Some(NodeState::Pending));
        // A ready node may be completed without having been handed out.
        assert_eq!(s.state(SEED), Some(NodeState::Ready));
        s.complete(SEED, true);
        assert_eq!(s.state(SEED), Some(NodeState::Succeeded));
        assert!(!s.ready().contains(&SEED.to_string()));
    }

    #[test]
    fn unselected_parents_do_not_block() {
        let g = graph();
        let mut s = g.schedule(&set(&[FCT_ORDERS, RPT_DAILY]));
        assert_eq!(s.ready(), [FCT_ORDERS]);
        assert_eq!(s.upstream(RPT_DAILY), [FCT_ORDERS]);
        let mut s = g.schedule(&set(&[RPT_DAILY, DIM_CUSTOMERS]));
        assert_eq!(s.ready(), [DIM_CUSTOMERS, RPT_DAILY]);
    }

    #[test]
    fn order_is_kept_through_unselected_nodes() {
        let g = graph();
        // fct_orders sits between them, unselected: rpt_daily still waits for stg_orders.
        let mut s = g.schedule(&set(&[STG_ORDERS, RPT_DAILY]));
        assert_eq!(s.upstream(RPT_DAILY), [STG_ORDERS]);
        assert_eq!(s.ready(), [STG_ORDERS]);
        assert_eq!(s.complete(STG_ORDERS, false), [RPT_DAILY]);
        assert!(s.is_done());
        // A selected test gates descendants of its model even when the model is not selected.
        let mut s = g.schedule(&set(&[T_NN_STG_ORDERS, RPT_DAILY]));
        assert_eq!(s.upstream(RPT_DAILY), [T_NN_STG_ORDERS]);
        assert_eq!(s.ready(), [T_NN_STG_ORDERS]);
    }

    #[test]
    fn unit_tests_run_before_their_model() {
        let node = |id: &str, kind, deps: &[&str]| {
            GraphNode::new(id, id, kind).with_depends_on(deps.iter().copied())
        };
        let g = Graph::new(vec![
            node("a", NodeKind::Model, &[]),
            node("m", NodeKind::Model, &["a"]),
            node("c", NodeKind::Model, &["m"]),
            node("u", NodeKind::Test, &["m"]).with_unit_test(),
            node("t", NodeKind::Test, &["m"]),
        ])
        .unwrap();
        let mut s = g.schedule(&set(&["a", "m", "c", "u", "t"]));
        assert_eq!(s.upstream("u"), ["a"]);
        assert_eq!(s.upstream("m"), ["a", "u"]);
        assert_eq!(s.upstream("c"), ["m", "t"]);
        assert_eq!(s.ready(), ["a"]);
        s.complete("a", true);
        assert_eq!(s.ready(), ["u"]);
        // A failing unit test skips its model and what is built from it.
        assert_eq!(s.complete("u", false), ["c", "m", "t"]);
        assert!(s.is_done());
    }

    #[test]
    fn a_test_gates_nodes_its_parents_reach_by_different_paths() {
        // t tests a and b; n descends from a (through x) and from b (through y).
        let node = |id: &str, kind, deps: &[&str]| {
            GraphNode::new(id, id, kind).with_depends_on(deps.iter().copied())
        };
        let g = Graph::new(vec![
            node("a", NodeKind::Model, &[]),
            node("b", NodeKind::Model, &[]),
            node("x", NodeKind::Model, &["a"]),
            node("y", NodeKind::Model, &["b"]),
            node("n", NodeKind::Model, &["x", "y"]),
            node("m", NodeKind::Model, &["n"]),
            node("t", NodeKind::Test, &["a", "b"]),
        ])
        .unwrap();
        let mut s = g.schedule(&all(&g));
        assert_eq!(s.upstream("x"), ["a"]);
        assert_eq!(s.upstream("n"), ["t", "x", "y"]);
        assert_eq!(s.upstream("m"), ["n"]);
        s.ready();
        s.complete("a", true);
        s.complete("b", true);
        assert_eq!(s.ready(), ["t", "x", "y"]);
        assert_eq!(s.complete("t", false), ["m", "n"]);
        // Without n selected, m waits for t directly.
        let s = g.schedule(&set(&["a", "b", "t", "m"]));
        assert_eq!(s.upstream("m"), ["a", "b", "t"]);
    }

    /// A tiny deterministic generator for the randomized test.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize % n.max(1)
        }
    }

    /// Random projects: sources, seeds and models depending on earlier nodes, and tests on
    /// one to three of them (now and then a test with nothing to test).
    fn random_graph(rng: &mut Lcg) -> Graph {
        let mut nodes: Vec<GraphNode> = Vec::new();
        let mut testable: Vec<String> = Vec::new();
        for k in 0..1 + rng.below(3) {
            let id = format!("source.s{k}");
            nodes.push(GraphNode::new(&id, &id, NodeKind::Source).with_source_name("s"));
            testable.push(id);
        }
        for k in 0..rng.below(3) {
            let id = format!("seed.e{k}");
            nodes.push(GraphNode::new(&id, &id, NodeKind::Seed));
            testable.push(id);
        }
        for k in 0..2 + rng.below(14) {
            let id = format!("model.m{k:02}");
            let deps: BTreeSet<String> = (0..rng.below(4))
                .map(|_| testable[rng.below(testable.len())].clone())
                .collect();
            nodes.push(GraphNode::new(&id, &id, NodeKind::Model).with_depends_on(deps));
            testable.push(id);
        }
        for k in 0..rng.below(12) {
            let id = format!("test.t{k:02}");
            let deps: BTreeSet<String> = (0..rng.below(4))
                .map(|_| testable[rng.below(testable.len())].clone())
                .collect();
            nodes.push(GraphNode::new(&id, &id, NodeKind::Test).with_depends_on(deps));
        }
        Graph::new(nodes).unwrap()
    }

    /// dbt's construction, literally: an edge from every test to every non-test node having
    /// all the test's parents among its ancestors, then reachability between selected nodes
    /// through anything.
    fn dbt_reachability(g: &Graph, scheduled: &[String]) -> BTreeSet<(String, String)> {
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for node in g.nodes() {
            for dep in &node.depends_on {
                edges.entry(dep).or_default().insert(&node.id);
            }
        }
        for test in g.nodes().filter(|n| n.kind == NodeKind::Test) {
            for target in g.nodes().filter(|n| n.kind != NodeKind::Test) {
                let ancestors = g.ancestors(&target.id, None);
                if !test.depends_on.is_empty()
                    && test
                        .depends_on
                        .iter()
                        .all(|d| ancestors.contains(d.as_str()))
                {
                    edges.entry(&test.id).or_default().insert(&target.id);
                }
            }
        }
        let mut pairs = BTreeSet::new();
        for from in scheduled {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.as_str()];
            while let Some(at) = stack.pop() {
                for &next in edges.get(at).into_iter().flatten() {
                    if seen.insert(next) {
                        stack.push(next);
                    }
                }
            }
            for to in scheduled {
                if seen.contains(to.as_str()) {
                    pairs.insert((from.clone(), to.clone()));
                }
            }
        }
        pairs
    }

    /// The same pairs from the schedule's own (reduced) edges.
    fn schedule_reachability(s: &Schedule) -> BTreeSet<(String, String)> {
        let mut pairs = BTreeSet::new();
        for from in s.ids() {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from];
            while let Some(at) = stack.pop() {
                for next in s.downstream(at) {
                    if seen.insert(next) {
                        stack.push(next);
                        pairs.insert((from.to_string(), next.to_string()));
                    }
                }
            }
        }
        pairs
    }

    #[test]
    fn order_matches_dbts_construction_on_random_graphs() {
        let mut rng = Lcg(2024);
        for _ in 0..300 {
            let g = random_graph(&mut rng);
            let selected: BTreeSet<String> = g
                .nodes()
                .filter(|_| rng.below(3) > 0)
                .map(|n| n.id.clone())
                .collect();
            let s = g.schedule(&selected);
            let scheduled: Vec<String> = s.ids().map(str::to_string).collect();
            assert_eq!(
                schedule_reachability(&s),
                dbt_reachability(&g, &scheduled),
                "graph {:?}, selected {selected:?}",
                g.nodes()
                    .map(|n| (&n.id, &n.depends_on))
                    .collect::<Vec<_>>()
            );
            // Failing any one node skips exactly what it reaches.
            for (k, failing) in scheduled.iter().enumerate() {
                let mut s = g.schedule(&selected);
                let started = run(&mut s, 1 + k % 3, &[failing.as_str()], k as u64);
                assert!(started.contains(failing));
                let skipped: BTreeSet<String> = s
                    .in_state(NodeState::Skipped)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let reached: BTreeSet<String> = schedule_reachability(&s)
                    .into_iter()
                    .filter(|(from, _)| from == failing)
                    .map(|(_, to)| to)
                    .collect();
                assert_eq!(skipped, reached);
            }
        }
    }

    #[test]
    fn empty_schedule_is_done() {
        let g = graph();
        let mut s = g.schedule(&BTreeSet::new());
        assert!(s.is_done() && s.is_empty());
        assert!(s.ready().is_empty());
        let s = g.schedule(&set(&[SRC_ORDERS]));
        assert!(s.is_done());
    }

    #[test]
    fn simulated_runs_respect_order_and_finish() {
        let g = graph();
        for workers in [1, 2, 4, 16] {
            for seed in 0..20 {
                let mut s = g.schedule(&all(&g));
                let started = run(&mut s, workers, &[], seed);
                assert_eq!(started.len(), s.len());
                assert_eq!(s.in_state(NodeState::Succeeded).len(), s.len());

                let mut s = g.schedule(&all(&g));
                run(&mut s, workers, &[T_NN_STG_ORDERS, STG_EVENTS], seed);
                assert_eq!(s.in_state(NodeState::Failed), [STG_EVENTS, T_NN_STG_ORDERS]);
                assert_eq!(
                    s.in_state(NodeState::Skipped),
                    [FCT_ORDERS, RPT_DAILY, T_SINGULAR_DAILY, T_NN_FCT]
                );
            }
        }
    }

    #[test]
    fn selection_then_schedule_end_to_end() {
        let g = graph();
        let selection = g.select(&["+fct_orders"], &[]).unwrap();
        let mut s = g.schedule(&selection.ids);
        // Sources were selected but are not scheduled; their test is.
        assert!(selection.ids.contains(SRC_ORDERS));
        assert_eq!(s.state(T_SRC_ORDERS), Some(NodeState::Ready));
        let started = run(&mut s, 3, &[], 7);
        assert_eq!(started.len(), s.len());
        assert_eq!(
            started.last().map(String::as_str),
            Some(T_NN_FCT),
            "the test on fct_orders comes last"
        );
    }

    #[test]
    fn a_large_graph_schedules_quickly() {
        // 60 layers of 50 models, each depending on two of the previous layer, two tests each.
        let mut nodes = Vec::new();
        for layer in 0..60 {
            for k in 0..50 {
                let id = format!("m{layer:02}_{k:02}");
                let deps = if layer == 0 {
                    vec![]
                } else {
                    vec![
                        format!("m{:02}_{k:02}", layer - 1),
                        format!("m{:02}_{:02}", layer - 1, (k * 7 + 3) % 50),
                    ]
                };
                nodes.push(GraphNode::new(&id, &id, NodeKind::Model).with_depends_on(deps));
                for t in 0..2 {
                    nodes.push(
                        GraphNode::new(format!("t{t}_{id}"), format!("t{t}_{id}"), NodeKind::Test)
                            .with_depends_on([id.clone()]),
                    );
                }
            }
        }
        let g = Graph::new(nodes).unwrap();
        let started = std::time::Instant::now();
        let mut s = g.schedule(&all(&g));
        assert_eq!(run(&mut s, 8, &[], 1).len(), g.len());
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(
            s.upstream("m01_00"),
            [
                "m00_00",
                "m00_03",
                "t0_m00_00",
                "t0_m00_03",
                "t1_m00_00",
                "t1_m00_03"
            ]
        );
    }
}
