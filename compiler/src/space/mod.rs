//! The packet-space engine: sets of packets as unions of boxes. Input: a checked
//! [`Program`](crate::program::Program) (its conditions); output: [`Space`]s with
//! intersection, difference and emptiness, and concrete witness packets.
//!
//! A **point** is a packet seen the way the interpreter sees it: a [`shape`] (which
//! headers are present) and one value for every concrete field. A [`Cube`] is a set of
//! shapes times one [`Ivs`] (interval set) per constrained field; a [`Space`] is a union
//! of cubes. **Invariant:** a cube constrains only fields present in all of its shapes,
//! so a field whose header is absent never matters (every atom carries its guard).
//!
//! Three fields are stored through another one they are a function of, so that the
//! engine sees the dependency: `ipv4.dscp` as `ipv4.tos` (its high six bits),
//! `ipv6.dscp` as `ipv6.tclass`, `ipv6.len` as `ipv6.payload_len` (+ 40).
//!
//! Conditions become an [`cond::Approx`]: an under- and an over-approximation, equal
//! when the condition is exact. What is not exact: `pcap "…"` atoms, masks on wide
//! fields that are not prefix masks, and results past the size budget. Every claim that
//! holds for all packets is made from these bounds; every claim that some packet exists
//! is made only with a witness confirmed by the interpreter ([`witness`]).

pub mod cond;
pub mod index;
pub mod ivs;
pub mod shape;
pub mod witness;

pub use index::Index;
pub use ivs::Ivs;
pub use shape::ShapeSet;

use crate::fields::Field;

/// Where a derived field is stored: the field holding its bits.
pub fn storage(field: Field) -> Field {
    match field {
        Field::Ipv4Dscp => Field::Ipv4Tos,
        Field::Ipv6Dscp => Field::Ipv6Tclass,
        Field::Ipv6Len => Field::Ipv6PayloadLen,
        other => other,
    }
}

/// The largest value of a stored field.
pub(crate) fn max_of(field: Field) -> u128 {
    field.kind().max()
}

/// A box: a set of shapes times one value set per constrained field (missing = any).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cube {
    /// The shapes.
    pub shapes: ShapeSet,
    /// Constrained fields (stored fields only), sorted, never empty nor full.
    pub dims: Vec<(Field, Ivs)>,
}

impl Cube {
    /// A cube from possibly unsorted dimensions (full ones dropped).
    pub fn new(shapes: ShapeSet, mut dims: Vec<(Field, Ivs)>) -> Cube {
        dims.retain(|(field, set)| !set.is_full(max_of(*field)));
        dims.sort_by_key(|(field, _)| *field);
        Cube { shapes, dims }
    }

    /// Every point of these shapes.
    pub(crate) fn shapes_only(shapes: ShapeSet) -> Cube {
        Cube { shapes, dims: Vec::new() }
    }

    /// The values allowed for `field` (`None`: any).
    pub fn get(&self, field: Field) -> Option<&Ivs> {
        self.dims.binary_search_by_key(&field, |(f, _)| *f).ok().map(|i| &self.dims[i].1)
    }

    /// Whether the two cubes share a point (no allocation).
    pub fn meets(&self, other: &Cube) -> bool {
        if self.shapes & other.shapes == 0 {
            return false;
        }
        let (mut i, mut j) = (0, 0);
        while i < self.dims.len() && j < other.dims.len() {
            let (a, b) = (&self.dims[i], &other.dims[j]);
            match a.0.cmp(&b.0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    if !a.1.meets(&b.1) {
                        return false;
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        true
    }

    /// The common points, if any.
    pub(crate) fn intersect(&self, other: &Cube) -> Option<Cube> {
        if !self.meets(other) {
            return None;
        }
        let mut dims = Vec::with_capacity(self.dims.len() + other.dims.len());
        let (mut i, mut j) = (0, 0);
        while i < self.dims.len() || j < other.dims.len() {
            let a = self.dims.get(i);
            let b = other.dims.get(j);
            match (a, b) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    dims.push((a.0, a.1.intersect(&b.1)));
                    i += 1;
                    j += 1;
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    dims.push(a.clone());
                    i += 1;
                }
                (Some(a), None) => {
                    dims.push(a.clone());
                    i += 1;
                }
                (_, Some(b)) => {
                    dims.push(b.clone());
                    j += 1;
                }
                (None, None) => break,
            }
        }
        Some(Cube { shapes: self.shapes & other.shapes, dims })
    }

    /// The points of `self` not in `other`, as disjoint cubes.
    pub fn minus(&self, other: &Cube, out: &mut Vec<Cube>) {
        if !self.meets(other) {
            out.push(self.clone());
            return;
        }
        let outside = self.shapes & !other.shapes;
        if outside != 0 {
            out.push(Cube { shapes: outside, dims: self.dims.clone() });
        }
        let mut rest = Cube { shapes: self.shapes & other.shapes, dims: self.dims.clone() };
        for (field, theirs) in &other.dims {
            let mine = rest.get(*field).cloned().unwrap_or_else(|| Ivs::full(max_of(*field)));
            let left = mine.minus(theirs);
            if !left.is_empty() {
                let mut piece = rest.clone();
                piece.set(*field, left);
                out.push(piece);
            }
            rest.set(*field, mine.intersect(theirs));
        }
    }

    /// Whether every point of `other` is in `self`.
    pub fn covers(&self, other: &Cube) -> bool {
        other.shapes & !self.shapes == 0
            && self.dims.iter().all(|(field, mine)| other.get(*field).is_some_and(|theirs| mine.covers(theirs)))
    }

    fn set(&mut self, field: Field, values: Ivs) {
        match self.dims.binary_search_by_key(&field, |(f, _)| *f) {
            Ok(index) if values.is_full(max_of(field)) => {
                self.dims.remove(index);
            }
            Ok(index) => self.dims[index].1 = values,
            Err(_) if values.is_full(max_of(field)) => {}
            Err(index) => self.dims.insert(index, (field, values)),
        }
    }
}

/// One point: a shape and a value for every field (indexed by `Field as usize`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Point {
    /// Index of the shape in [`shape::shapes`].
    pub shape: u32,
    /// Field values.
    pub values: [u128; Field::ALL.len()],
}

impl Cube {
    /// Whether the point lies in the cube.
    pub fn contains(&self, point: &Point) -> bool {
        self.shapes & (1 << point.shape) != 0
            && self.dims.iter().all(|(field, set)| set.contains(point.values[*field as usize]))
    }

    /// A few corner points of the cube (lowest and highest values, first shapes).
    pub(crate) fn corners(&self) -> Vec<Point> {
        let mut out = Vec::new();
        for shape in (0..64u32).filter(|bit| self.shapes & (1 << bit) != 0).take(2) {
            for high in [false, true] {
                let mut values = [0u128; Field::ALL.len()];
                for (field, set) in &self.dims {
                    let value = if high { set.0.last().map(|&(_, h)| h) } else { set.first() };
                    values[*field as usize] = value.unwrap_or(0);
                }
                out.push(Point { shape, values });
            }
        }
        out
    }
}

/// A union of cubes (not necessarily disjoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Space {
    /// The cubes.
    pub cubes: Vec<Cube>,
}

/// The most cubes an operation may produce before it gives up (the caller then falls
/// back to a safe bound and marks the result inexact).
pub const BUDGET: usize = 2048;

impl Space {
    /// No packet.
    pub fn empty() -> Space {
        Space::default()
    }

    /// One cube.
    pub fn cube(cube: Cube) -> Space {
        Space { cubes: vec![cube] }
    }

    /// Every point of every shape: what conditions are complemented within. Points
    /// outside the universe ([`shape::universe`]) are dropped only by
    /// [`Space::is_possible`] and [`Space::in_universe`], which keeps spaces small.
    pub fn everything() -> Space {
        Space::cube(Cube::shapes_only(shape::all_shapes()))
    }

    /// Whether it holds no point at all.
    pub fn is_empty(&self) -> bool {
        self.cubes.is_empty()
    }

    /// Whether it holds a point of the universe: spaces are kept uncut (a cube per atom,
    /// not per shape) and are cut only when asked this, or for witnesses.
    pub fn is_possible(&self) -> bool {
        self.cubes.iter().any(|cube| shape::universe().iter().any(|u| u.meets(cube)))
    }

    /// The points that lie in the universe, cube by cube.
    pub fn in_universe(&self) -> Vec<Cube> {
        self.cubes.iter().flat_map(|cube| shape::universe().iter().filter_map(move |u| u.intersect(cube))).collect()
    }

    /// Whether the point lies in one of the cubes.
    pub fn contains(&self, point: &Point) -> bool {
        self.cubes.iter().any(|cube| cube.contains(point))
    }

    /// Whether it shares a point with `cube`.
    pub(crate) fn meets_cube(&self, cube: &Cube) -> bool {
        self.cubes.iter().any(|mine| mine.meets(cube))
    }

    /// Whether the two share a point.
    pub fn meets(&self, other: &Space) -> bool {
        other.cubes.iter().any(|cube| self.meets_cube(cube))
    }

    /// Both unions together.
    pub fn union(mut self, other: Space) -> Space {
        self.cubes.extend(other.cubes);
        self
    }

    /// The common points; `None` past [`BUDGET`] cubes.
    pub(crate) fn intersect(&self, other: &Space) -> Option<Space> {
        let mut cubes = Vec::new();
        for a in &self.cubes {
            for b in &other.cubes {
                if let Some(both) = a.intersect(b) {
                    cubes.push(both);
                    if cubes.len() > BUDGET {
                        return None;
                    }
                }
            }
        }
        Some(Space { cubes })
    }

    /// The points not in `cube`; `None` past `budget` cubes.
    pub(crate) fn minus_cube(&self, cube: &Cube, budget: usize) -> Option<Space> {
        let mut cubes = Vec::with_capacity(self.cubes.len());
        for mine in &self.cubes {
            mine.minus(cube, &mut cubes);
            if cubes.len() > budget {
                return None;
            }
        }
        Some(Space { cubes })
    }

    /// The points not in `other`; `None` past `budget` cubes.
    pub fn minus(&self, other: &Space, budget: usize) -> Option<Space> {
        let mut rest = self.clone();
        for cube in &other.cubes {
            if rest.is_empty() {
                break;
            }
            rest = rest.minus_cube(cube, budget)?;
        }
        Some(rest)
    }

    /// Only the shapes in `shapes`.
    pub fn restrict(&self, shapes: ShapeSet) -> Space {
        let cubes = self
            .cubes
            .iter()
            .filter(|cube| cube.shapes & shapes != 0)
            .map(|cube| Cube { shapes: cube.shapes & shapes, dims: cube.dims.clone() })
            .collect();
        Space { cubes }
    }
}

#[cfg(test)]
mod tests;
