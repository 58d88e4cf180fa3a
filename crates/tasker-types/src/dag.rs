//! DAG algorithms over named nodes: topological order, roots, reachability and
//! cycle detection. Used by template validation and by orchestration to reason
//! about a task's steps. Results are deterministic: ties are broken by the
//! order in which nodes were declared.

use std::collections::{BTreeSet, HashMap};

/// A directed graph of named nodes whose edges run parent → child ("child
/// depends on parent"). Node indexes follow declaration order.
#[derive(Clone, Debug)]
pub struct Dag {
    names: Vec<String>,
    index: HashMap<String, usize>,
    parents: Vec<Vec<usize>>,
    children: Vec<Vec<usize>>,
}

/// Why a graph could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    /// Two nodes share a name.
    #[error("node `{0}` is declared more than once")]
    DuplicateNode(String),
    /// A node depends on a name that is not a node.
    #[error("`{node}` depends on unknown node `{dependency}`")]
    UnknownDependency {
        /// The dependent node.
        node: String,
        /// The missing parent.
        dependency: String,
    },
}

/// A cycle, as the path that closes it: `[a, b, c, a]` means a runs before b,
/// b before c and c before a.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" -> "))
    }
}

impl Dag {
    /// Builds a graph from `(name, dependencies)` pairs in declaration order.
    ///
    /// # Errors
    /// [`DagError`] when a name repeats or a dependency names no node.
    pub fn new<'a, I, D>(nodes: I) -> Result<Self, DagError>
    where
        I: IntoIterator<Item = (&'a str, D)>,
        D: IntoIterator<Item = &'a str>,
    {
        let nodes: Vec<(&str, Vec<&str>)> = nodes
            .into_iter()
            .map(|(name, deps)| (name, deps.into_iter().collect()))
            .collect();
        let mut index = HashMap::with_capacity(nodes.len());
        let mut names = Vec::with_capacity(nodes.len());
        for (i, (name, _)) in nodes.iter().enumerate() {
            if index.insert((*name).to_owned(), i).is_some() {
                return Err(DagError::DuplicateNode((*name).to_owned()));
            }
            names.push((*name).to_owned());
        }
        let mut parents = vec![Vec::new(); nodes.len()];
        let mut children = vec![Vec::new(); nodes.len()];
        for (child, (name, deps)) in nodes.iter().enumerate() {
            for dep in deps {
                let Some(&parent) = index.get(*dep) else {
                    return Err(DagError::UnknownDependency {
                        node: (*name).to_owned(),
                        dependency: (*dep).to_owned(),
                    });
                };
                if !parents[child].contains(&parent) {
                    parents[child].push(parent);
                    children[parent].push(child);
                }
            }
        }
        Ok(Self {
            names,
            index,
            parents,
            children,
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The name of node `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// Direct parents of `node`, in the order they were declared.
    pub fn parents(&self, node: usize) -> &[usize] {
        &self.parents[node]
    }

    /// Direct children of `node`.
    pub fn children(&self, node: usize) -> &[usize] {
        &self.children[node]
    }

    /// Nodes with no parents, in declaration order.
    pub fn roots(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&n| self.parents[n].is_empty())
            .collect()
    }

    /// A topological order (every parent before its children), ties broken by
    /// declaration order.
    ///
    /// # Errors
    /// The [`Cycle`] that prevents an order.
    pub fn topological_order(&self) -> Result<Vec<usize>, Cycle> {
        let mut remaining: Vec<usize> = self.parents.iter().map(Vec::len).collect();
        let mut ready: BTreeSet<usize> = self.roots().into_iter().collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(node) = ready.pop_first() {
            order.push(node);
            for &child in &self.children[node] {
                remaining[child] -= 1;
                if remaining[child] == 0 {
                    ready.insert(child);
                }
            }
        }
        if order.len() == self.len() {
            Ok(order)
        } else {
            Err(self.find_cycle().unwrap_or_else(|| Cycle(Vec::new())))
        }
    }

    /// The first cycle found, rotated to start at its earliest-declared node;
    /// `None` when the graph is acyclic.
    pub fn find_cycle(&self) -> Option<Cycle> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Unvisited,
            OnPath,
            Done,
        }
        let mut marks = vec![Mark::Unvisited; self.len()];
        for start in 0..self.len() {
            if marks[start] != Mark::Unvisited {
                continue;
            }
            // Iterative DFS along parent → child edges; `path` is the current chain.
            let mut path: Vec<usize> = vec![start];
            let mut next_child: Vec<usize> = vec![0];
            marks[start] = Mark::OnPath;
            while let Some(&node) = path.last() {
                let depth = path.len() - 1;
                let position = next_child[depth];
                if let Some(&child) = self.children[node].get(position) {
                    next_child[depth] += 1;
                    match marks[child] {
                        Mark::Unvisited => {
                            marks[child] = Mark::OnPath;
                            path.push(child);
                            next_child.push(0);
                        }
                        Mark::OnPath => {
                            let from = path.iter().position(|&n| n == child).unwrap_or(0);
                            return Some(self.rotated_cycle(&path[from..]));
                        }
                        Mark::Done => {}
                    }
                } else {
                    marks[node] = Mark::Done;
                    path.pop();
                    next_child.pop();
                }
            }
        }
        None
    }

    fn rotated_cycle(&self, members: &[usize]) -> Cycle {
        let first = members
            .iter()
            .enumerate()
            .min_by_key(|(_, node)| **node)
            .map_or(0, |(i, _)| i);
        let mut names: Vec<String> = members[first..]
            .iter()
            .chain(&members[..first])
            .map(|&n| self.names[n].clone())
            .collect();
        if let Some(head) = names.first().cloned() {
            names.push(head);
        }
        Cycle(names)
    }

    /// Every node reachable from `node` by following child edges (not
    /// including `node` itself).
    pub fn descendants(&self, node: usize) -> BTreeSet<usize> {
        self.walk(node, &self.children)
    }

    /// Every node from which `node` can be reached (not including `node`).
    pub fn ancestors(&self, node: usize) -> BTreeSet<usize> {
        self.walk(node, &self.parents)
    }

    /// Whether `to` can be reached from `from` along child edges.
    pub fn is_reachable(&self, from: usize, to: usize) -> bool {
        self.descendants(from).contains(&to)
    }

    fn walk(&self, node: usize, edges: &[Vec<usize>]) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = edges[node].clone();
        while let Some(next) = stack.pop() {
            if seen.insert(next) {
                stack.extend(&edges[next]);
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(nodes: &[(&'static str, &[&'static str])]) -> Result<Dag, DagError> {
        Dag::new(nodes.iter().map(|(n, d)| (*n, d.iter().copied())))
    }

    fn names(dag: &Dag, nodes: impl IntoIterator<Item = usize>) -> Vec<&str> {
        nodes.into_iter().map(|n| dag.name(n)).collect()
    }

    #[test]
    fn diamond_orders_parents_first_and_reports_roots_and_reachability() {
        let d = dag(&[("a", &[]), ("b", &["a"]), ("c", &["a"]), ("d", &["b", "c"])]).unwrap();
        assert_eq!(
            names(&d, d.topological_order().unwrap()),
            ["a", "b", "c", "d"]
        );
        assert_eq!(names(&d, d.roots()), ["a"]);
        assert_eq!(names(&d, d.descendants(0)), ["b", "c", "d"]);
        assert_eq!(names(&d, d.ancestors(3)), ["a", "b", "c"]);
        assert!(d.is_reachable(1, 3));
        assert!(!d.is_reachable(1, 2));
        assert!(d.find_cycle().is_none());
    }

    #[test]
    fn ties_follow_declaration_order() {
        let d = dag(&[("z", &[]), ("y", &[]), ("x", &["z"])]).unwrap();
        assert_eq!(names(&d, d.topological_order().unwrap()), ["z", "y", "x"]);
    }

    #[test]
    fn cycle_is_reported_as_a_path_starting_at_the_first_declared_member() {
        let d = dag(&[
            ("start", &[]),
            ("a", &["c", "start"]),
            ("b", &["a"]),
            ("c", &["b"]),
        ])
        .unwrap();
        let cycle = d.topological_order().unwrap_err();
        assert_eq!(cycle.to_string(), "a -> b -> c -> a");
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let d = dag(&[("a", &["a"])]).unwrap();
        assert_eq!(d.find_cycle().unwrap().to_string(), "a -> a");
    }

    #[test]
    fn unknown_dependency_and_duplicate_names_are_rejected() {
        assert_eq!(
            dag(&[("a", &["ghost"])]).unwrap_err(),
            DagError::UnknownDependency {
                node: "a".into(),
                dependency: "ghost".into()
            }
        );
        assert_eq!(
            dag(&[("a", &[]), ("a", &[])]).unwrap_err(),
            DagError::DuplicateNode("a".into())
        );
    }

    #[test]
    fn repeated_dependency_is_one_edge() {
        let d = dag(&[("a", &[]), ("b", &["a", "a"])]).unwrap();
        assert_eq!(d.parents(1), &[0]);
        assert_eq!(d.children(0), &[1]);
    }
}
