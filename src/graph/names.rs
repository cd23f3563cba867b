//! The graph's name index: `add` checks that a name is new and `fresh` finds one in O(1), not by
//! scanning every node (which made building a graph quadratic: minutes for a few 100k nodes).
//! `Graph::nodes` is public, so the index trusts nothing it cannot check: a hit is verified
//! against the node, nodes pushed by hand are indexed on the next `add`, and a list that shrank
//! is re-indexed. A node renamed by hand can escape `add`'s check; `Graph::validate` (run by
//! compile, gradients, with_batch and the reference) then refuses the duplicate.

use std::collections::HashMap;
use std::fmt;

use super::Node;

#[derive(Clone, Default)]
pub(super) struct Names {
    at: HashMap<String, usize>,
    /// How many of the nodes (a prefix) are indexed.
    indexed: usize,
}

impl fmt::Debug for Names {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Names({} indexed)", self.indexed)
    }
}

impl Names {
    /// Brings the index up to `nodes`.
    pub fn sync(&mut self, nodes: &[Node]) {
        if self.indexed > nodes.len() {
            *self = Names::default();
        }
        for (i, n) in nodes.iter().enumerate().skip(self.indexed) {
            self.at.entry(n.name.clone()).or_insert(i);
        }
        self.indexed = nodes.len();
    }

    /// Records node `i`, just pushed (after `sync`).
    pub fn push(&mut self, name: &str, i: usize) {
        self.at.entry(name.to_string()).or_insert(i);
        self.indexed = i + 1;
    }

    /// Un-indexes the nodes from `len` on, about to be truncated away.
    pub fn forget(&mut self, nodes: &[Node], len: usize) {
        for (i, n) in nodes.iter().enumerate().skip(len) {
            if self.at.get(&n.name) == Some(&i) {
                self.at.remove(&n.name);
            }
        }
        self.indexed = self.indexed.min(len);
    }

    /// The first node named `name`: a verified hit, else a scan.
    pub fn find(&self, nodes: &[Node], name: &str) -> Option<usize> {
        match self.at.get(name) {
            Some(&i) if nodes.get(i).is_some_and(|n| n.name == name) => Some(i),
            _ => nodes.iter().position(|n| n.name == name),
        }
    }

    /// Whether a node is named `name`: the index when it covers every node, else a scan.
    pub fn taken(&self, nodes: &[Node], name: &str) -> bool {
        match self.at.get(name) {
            Some(&i) if nodes.get(i).is_some_and(|n| n.name == name) => true,
            None if self.indexed == nodes.len() => false,
            _ => nodes.iter().any(|n| n.name == name),
        }
    }
}
