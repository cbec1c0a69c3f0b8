//! An index over a list of [`Space`]s (one per rule): a point or a cube in, the spaces
//! that may hold it or meet it out, without looking at every space. Input: the spaces
//! (the index keeps copies of their cubes' signatures, not the spaces); output: the
//! positions of the candidate spaces, every one confirmed by the exact test.
//!
//! The index is a short chain of nodes, each on one field: the cubes that constrain the
//! field sit in an interval tree on its value intervals (a stabbing or overlap query
//! costs log n plus the answers); the cubes that leave the field free go to the next
//! node, on another field; a node with few cubes or no field most of them constrain is a
//! plain list. Rule sets constrain a few fields in most rules (addresses, ports), so a
//! query visits a few nodes and a few dozen candidates instead of every rule.
//!
//! Queries answer exactly what a scan of every space would: the tree only prunes cubes
//! that cannot hold the point (or meet the cube) on the node's field, and every
//! candidate is checked with [`Cube::contains`] or [`Cube::meets`].

use super::{Cube, Point, ShapeSet, Space};
use crate::fields::Field;

/// Below this many cubes a node is a list.
const LEAF: usize = 24;
/// A cube whose value set on a field has more intervals than this goes into the tree by
/// its hull (one interval) instead.
const PIECES: usize = 16;

/// One cube of one space.
#[derive(Clone, Copy, Debug)]
struct Entry {
    space: u32,
    cube: u32,
    shapes: ShapeSet,
}

/// One interval of one entry's values on the node's field.
#[derive(Clone, Copy, Debug)]
struct Item {
    low: u128,
    high: u128,
    entry: u32,
}

/// Intervals sorted by their low end, as an implicit balanced tree: the item in the
/// middle of a range is the range's root, and `max_high` at that position is the
/// largest high end in the range.
#[derive(Debug, Default)]
struct Tree {
    items: Vec<Item>,
    max_high: Vec<u128>,
}

impl Tree {
    fn new(mut items: Vec<Item>) -> Tree {
        items.sort_by_key(|item| (item.low, item.high));
        let mut max_high = vec![0; items.len()];
        fn build(items: &[Item], max_high: &mut [u128], from: usize, to: usize) -> u128 {
            if from >= to {
                return 0;
            }
            let mid = from + (to - from) / 2;
            let left = build(items, max_high, from, mid);
            let right = build(items, max_high, mid + 1, to);
            let max = items[mid].high.max(left).max(right);
            max_high[mid] = max;
            max
        }
        build(&items, &mut max_high, 0, items.len());
        Tree { items, max_high }
    }

    /// Calls `found` with every item overlapping `low..=high`.
    fn overlapping(&self, low: u128, high: u128, found: &mut impl FnMut(u32)) {
        self.overlapping_in(0, self.items.len(), low, high, found);
    }

    fn overlapping_in(&self, from: usize, to: usize, low: u128, high: u128, found: &mut impl FnMut(u32)) {
        if from >= to {
            return;
        }
        let mid = from + (to - from) / 2;
        if self.max_high[mid] < low {
            return; // nothing in this range reaches `low`
        }
        self.overlapping_in(from, mid, low, high, found);
        let item = self.items[mid];
        if item.low <= high {
            if item.high >= low {
                found(item.entry);
            }
            // Later items start at or after this one: only worth a look if it starts in range.
            self.overlapping_in(mid + 1, to, low, high, found);
        }
    }
}

#[derive(Debug)]
enum Node {
    List(Vec<u32>),
    Split { field: Field, tree: Tree, rest: Box<Node> },
}

/// An index over the cubes of a list of spaces (see the module doc).
#[derive(Debug)]
pub struct Index {
    entries: Vec<Entry>,
    root: Node,
}

impl Index {
    /// Indexes every cube of every space.
    pub fn new(spaces: &[Space]) -> Index {
        let mut entries = Vec::new();
        for (space, spaced) in spaces.iter().enumerate() {
            for (cube, cubed) in spaced.cubes.iter().enumerate() {
                entries.push(Entry { space: space as u32, cube: cube as u32, shapes: cubed.shapes });
            }
        }
        let all: Vec<u32> = (0..entries.len() as u32).collect();
        let root = node(spaces, &entries, all);
        Index { entries, root }
    }

    /// The first space (lowest position below `below`) that holds `point`.
    pub(crate) fn first_containing(&self, spaces: &[Space], point: &Point, below: usize) -> Option<usize> {
        let bit: ShapeSet = 1 << point.shape;
        let mut best: Option<usize> = None;
        let mut consider = |entry: u32| {
            let entry = self.entries[entry as usize];
            let space = entry.space as usize;
            if space < below
                && best.map_or(true, |b| space < b)
                && entry.shapes & bit != 0
                && spaces[space].cubes[entry.cube as usize].contains(point)
            {
                best = Some(space);
            }
        };
        let mut node = &self.root;
        loop {
            match node {
                Node::List(list) => {
                    list.iter().for_each(|&e| consider(e));
                    return best;
                }
                Node::Split { field, tree, rest } => {
                    let value = point.values[*field as usize];
                    tree.overlapping(value, value, &mut consider);
                    node = rest;
                }
            }
        }
    }

    /// The spaces below `below` that share a point with `space`, in order.
    pub(crate) fn meeting(&self, spaces: &[Space], space: &Space, below: usize) -> Vec<usize> {
        let mut found: Vec<usize> = Vec::new();
        for cube in &space.cubes {
            let mut consider = |entry: u32| {
                let entry = self.entries[entry as usize];
                let index = entry.space as usize;
                if index < below
                    && entry.shapes & cube.shapes != 0
                    && cube.meets(&spaces[index].cubes[entry.cube as usize])
                {
                    found.push(index);
                }
            };
            let mut node = &self.root;
            loop {
                match node {
                    Node::List(list) => {
                        list.iter().for_each(|&e| consider(e));
                        break;
                    }
                    Node::Split { field, tree, rest } => {
                        match cube.get(*field) {
                            Some(values) if values.0.len() <= PIECES => {
                                for &(low, high) in &values.0 {
                                    tree.overlapping(low, high, &mut consider);
                                }
                            }
                            Some(values) => {
                                let (low, high) = hull(&values.0);
                                tree.overlapping(low, high, &mut consider);
                            }
                            None => tree.overlapping(0, u128::MAX, &mut consider),
                        }
                        node = rest;
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

fn hull(intervals: &[(u128, u128)]) -> (u128, u128) {
    (intervals.first().map_or(0, |i| i.0), intervals.last().map_or(0, |i| i.1))
}

/// A node over `members`: on the field most of them constrain, else a list.
fn node(spaces: &[Space], entries: &[Entry], members: Vec<u32>) -> Node {
    if members.len() <= LEAF {
        return Node::List(members);
    }
    let cube_of = |e: u32| -> &Cube {
        let entry = entries[e as usize];
        &spaces[entry.space as usize].cubes[entry.cube as usize]
    };
    let mut counts = vec![0usize; Field::ALL.len()];
    for &member in &members {
        for (field, _) in &cube_of(member).dims {
            counts[*field as usize] += 1;
        }
    }
    let (best, &count) = counts.iter().enumerate().max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i))).expect("fields");
    // A field only a few cubes constrain would send almost all of them to the next node.
    if count * 4 < members.len() {
        return Node::List(members);
    }
    let field = Field::ALL[best];
    let (mut items, mut rest) = (Vec::new(), Vec::new());
    for member in members {
        match cube_of(member).get(field) {
            Some(values) if values.0.len() <= PIECES => {
                items.extend(values.0.iter().map(|&(low, high)| Item { low, high, entry: member }));
            }
            Some(values) => {
                let (low, high) = hull(&values.0);
                items.push(Item { low, high, entry: member });
            }
            None => rest.push(member),
        }
    }
    Node::Split { field, tree: Tree::new(items), rest: Box::new(node(spaces, entries, rest)) }
}

#[cfg(test)]
mod tests {
    use super::{Index, Item, Tree};
    use crate::space::cond::Modeller;
    use crate::space::Space;

    /// A deterministic generator for the property checks.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn tree_overlap_equals_a_scan() {
        let mut random = Random(0x9e37_79b9);
        for size in [0usize, 1, 2, 3, 7, 50, 333] {
            let items: Vec<Item> = (0..size)
                .map(|entry| {
                    let low = u128::from(random.next() % 1000);
                    let high = low + u128::from(random.next() % 200);
                    Item { low, high, entry: entry as u32 }
                })
                .collect();
            let tree = Tree::new(items.clone());
            for _ in 0..200 {
                let low = u128::from(random.next() % 1300);
                let high = low + u128::from(random.next() % 50);
                let mut found = Vec::new();
                tree.overlapping(low, high, &mut |e| found.push(e));
                found.sort_unstable();
                let mut expected: Vec<u32> =
                    items.iter().filter(|i| i.low <= high && i.high >= low).map(|i| i.entry).collect();
                expected.sort_unstable();
                assert_eq!(found, expected, "size {size}, {low}..={high}");
            }
        }
    }

    /// On a generated rule set, the index answers what a scan of every rule answers.
    #[test]
    fn queries_equal_a_scan() {
        let set = crate::classbench::generate(crate::classbench::Shape::Fw, 400, 0, 7);
        let (program, _) = crate::frontend::check_source(&set.text);
        let program = program.expect("checks");
        let mut modeller = Modeller::default();
        let spaces: Vec<Space> =
            program.rules.iter().map(|rule| modeller.approx(&rule.condition, &program).under).collect();
        let index = Index::new(&spaces);
        for (at, space) in spaces.iter().enumerate() {
            let expected: Vec<usize> = (0..at).filter(|&j| spaces[j].meets(space)).collect();
            assert_eq!(index.meeting(&spaces, space, at), expected, "rule {at}");
            for cube in space.in_universe().iter().take(3) {
                for point in cube.corners() {
                    let first = spaces.iter().position(|s| s.contains(&point));
                    assert_eq!(index.first_containing(&spaces, &point, spaces.len()), first, "rule {at}");
                }
            }
        }
    }
}
