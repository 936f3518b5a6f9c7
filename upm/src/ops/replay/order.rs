//! The build order of a replay: a package after the packages it depends on, by level —
//! `required` and `recommended` dependencies (and `package.depends`) before it, `optional`
//! ones only when they are part of the replay, `runtime` ones anywhere — and otherwise in the
//! book's or the host profile's order. A cycle is first broken as BLFS does, by building
//! without the weaker levels' edges (optional, then recommended); a cycle of required
//! dependencies is an error that names it. Pure logic: no files, no database.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// How strongly a package needs another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Required,
    Recommended,
    Optional,
    Runtime,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Required => "required",
            Level::Recommended => "recommended",
            Level::Optional => "optional",
            Level::Runtime => "runtime",
        }
    }
}

/// One package to order.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    /// Its place in the book's or host profile's order (lower first).
    pub rank: i64,
    pub depends: Vec<(String, Level)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "dependency cycle: {}; no build order can satisfy it — drop one of these \
     dependencies from its recipe (or move it to depends.runtime if it is only needed at run time)",
    .cycle.join(" -> ")
)]
pub struct Cycle {
    /// The packages around the cycle, the first repeated at the end.
    pub cycle: Vec<String>,
}

/// The build order of `nodes`, as indices into it.
pub fn order(nodes: &[Node]) -> Result<Vec<usize>, Cycle> {
    for weakest in [Level::Optional, Level::Recommended, Level::Required] {
        if let Some(o) = kahn(nodes, weakest) {
            return Ok(o);
        }
    }
    Err(Cycle {
        cycle: find_cycle(nodes),
    })
}

/// The edges `(dependency, dependent)` of dependencies present in `nodes`, up to `weakest`.
fn edges(nodes: &[Node], weakest: Level) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut out = vec![Vec::new(); nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for (dep, level) in &n.depends {
            if *level == Level::Runtime || *level > weakest {
                continue;
            }
            if let Some(&d) = index.get(dep.as_str())
                && d != i
                && !out[d].contains(&i)
            {
                out[d].push(i);
            }
        }
    }
    out
}

/// Kahn's algorithm, taking the lowest rank (then input position) among the ready packages;
/// `None` on a cycle.
fn kahn(nodes: &[Node], weakest: Level) -> Option<Vec<usize>> {
    let next = edges(nodes, weakest);
    let mut waiting = vec![0usize; nodes.len()];
    for outs in &next {
        for &j in outs {
            waiting[j] += 1;
        }
    }
    let mut ready: BinaryHeap<Reverse<(i64, usize)>> = (0..nodes.len())
        .filter(|&i| waiting[i] == 0)
        .map(|i| Reverse((nodes[i].rank, i)))
        .collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        out.push(i);
        for &j in &next[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(Reverse((nodes[j].rank, j)));
            }
        }
    }
    (out.len() == nodes.len()).then_some(out)
}

/// One cycle of required dependencies, by depth-first search.
fn find_cycle(nodes: &[Node]) -> Vec<String> {
    let next = edges(nodes, Level::Required);
    // 0 unvisited, 1 on the stack, 2 done.
    let mut mark = vec![0u8; nodes.len()];
    let mut stack = Vec::new();
    fn visit(
        i: usize,
        next: &[Vec<usize>],
        mark: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        mark[i] = 1;
        stack.push(i);
        for &j in &next[i] {
            if mark[j] == 1 {
                let at = stack.iter().position(|&k| k == j).expect("on the stack");
                let mut c = stack[at..].to_vec();
                c.push(j);
                return Some(c);
            }
            if mark[j] == 0
                && let Some(c) = visit(j, next, mark, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        mark[i] = 2;
        None
    }
    for i in 0..nodes.len() {
        if mark[i] == 0
            && let Some(c) = visit(i, &next, &mut mark, &mut stack)
        {
            // Edges run from a dependency to its dependent: say it as "a needs b".
            return c.iter().rev().map(|&k| nodes[k].name.clone()).collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, rank: i64, deps: &[(&str, Level)]) -> Node {
        Node {
            name: name.into(),
            rank,
            depends: deps.iter().map(|(d, l)| (d.to_string(), *l)).collect(),
        }
    }

    fn names(nodes: &[Node]) -> Vec<&str> {
        order(nodes)
            .unwrap()
            .into_iter()
            .map(|i| nodes[i].name.as_str())
            .collect()
    }

    #[test]
    fn dependencies_first_then_rank() {
        use Level::*;
        let nodes = [
            node("a", 0, &[("c", Required)]),
            node("b", 1, &[]),
            node("c", 2, &[("missing", Required)]),
            node("d", 3, &[("a", Recommended), ("x", Optional)]),
            node("e", -1, &[("d", Runtime)]),
        ];
        assert_eq!(names(&nodes), ["e", "b", "c", "a", "d"]);
    }

    #[test]
    fn weaker_levels_give_way_in_a_cycle() {
        use Level::*;
        let nodes = [
            node("a", 0, &[("b", Required)]),
            node("b", 1, &[("a", Optional)]),
        ];
        assert_eq!(names(&nodes), ["b", "a"]);
        let nodes = [
            node("a", 0, &[("b", Recommended)]),
            node("b", 1, &[("a", Required)]),
        ];
        assert_eq!(names(&nodes), ["a", "b"]);
    }

    #[test]
    fn a_required_cycle_is_named() {
        use Level::*;
        let nodes = [
            node("a", 0, &[("b", Required)]),
            node("b", 1, &[("c", Required)]),
            node("c", 2, &[("a", Required)]),
            node("d", 3, &[]),
        ];
        let e = order(&nodes).unwrap_err();
        assert_eq!(e.cycle.len(), 4);
        assert_eq!(e.cycle.first(), e.cycle.last());
        let text = e.to_string();
        assert!(text.starts_with("dependency cycle: "), "{text}");
        for n in ["a", "b", "c"] {
            assert!(e.cycle.iter().any(|c| c == n), "{text}");
        }
        assert!(!e.cycle.iter().any(|c| c == "d"), "{text}");
    }
}
