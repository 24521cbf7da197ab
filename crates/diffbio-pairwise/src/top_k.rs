//! The exact k smallest (distance, index) pairs of a stream.

use std::cmp::Ordering;
use std::ops::Range;

use crate::{dispatch, PairVisitor, Real, Tile, Vectorised};

/// The total order of neighbours: by distance, ties by the smaller index.
#[inline(always)]
pub fn by_distance_then_index<T: Real>(a: &(T, usize), b: &(T, usize)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Distances compared at once with the admission bar: one AVX-512 comparison of f32 (two of
/// f64).
const CHUNK: usize = 16;

/// The `keep` smallest (distance, index) pairs offered, in the total order
/// [`by_distance_then_index`], in amortised O(1) per offer: a buffer that is cut back to
/// `keep` (a selection) whenever it grows by half, which lowers the admission bar. Offers
/// above the bar are rejected by a vectorised comparison, so a row of a distance tile costs
/// about one comparison per entry; the first row longer than a cut sets the bar from its own
/// keep-th distance, so that it does not fill the buffer again and again.
///
/// [`TopK::with_slack`] also keeps every pair closer than the keep-th plus a slack: the
/// candidates an exact search re-measures when the distances offered are rounded.
///
/// ```
/// use diffbio_pairwise::TopK;
/// let mut top = TopK::new(2);
/// top.offer_row(10, &[3.0f32, 1.0, 2.0, 1.0], 12); // column 12 is the row itself
/// assert_eq!(top.finish(), [(1.0, 11), (1.0, 13)]); // ties by index
///
/// let mut near = TopK::with_slack(1, 1.5);
/// near.offer_row(0, &[3.0f32, 1.0, 2.0, 2.6], usize::MAX);
/// assert_eq!(near.finish(), [(1.0, 1), (2.0, 2)]); // 2.6 is not below 1.0 + 1.5
/// ```
#[derive(Debug, Clone)]
pub struct TopK<T> {
    keep: usize,
    slack: T,
    bar: T,
    /// The buffer's length at which it is cut next.
    cut_at: usize,
    /// (distance, index) with 32-bit indices: half the memory of the candidates.
    pairs: Vec<(T, u32)>,
}

impl<T: Real> TopK<T> {
    /// An empty selection of the `keep ≥ 1` smallest.
    pub fn new(keep: usize) -> Self {
        Self::with_slack(keep, T::default())
    }

    /// An empty selection of the `keep ≥ 1` smallest and of every pair whose distance is
    /// below the keep-th's plus `slack ≥ 0` (the sum rounded in `T`).
    pub fn with_slack(keep: usize, slack: T) -> Self {
        assert!(keep > 0, "keep at least one pair");
        let cut_at = keep + keep.div_ceil(2);
        Self {
            keep,
            slack,
            bar: T::INFINITY,
            cut_at,
            pairs: Vec::with_capacity(cut_at),
        }
    }

    /// Offers above this distance cannot enter (+∞ until `keep` pairs were seen).
    #[inline(always)]
    pub fn bar(&self) -> T {
        self.bar
    }

    /// Offers `(row[t], first + t)` for every t but the one whose index is `skip` (the
    /// row's own point; pass `usize::MAX` for none).
    #[inline(always)]
    pub fn offer_row(&mut self, first: usize, row: &[T], skip: usize) {
        if self.bar == T::INFINITY && row.len() > self.cut_at {
            self.bar_from(first, row, skip);
        }
        let mut chunks = row.chunks_exact(CHUNK);
        let mut start = first;
        for chunk in &mut chunks {
            // Most chunks have no pair under the bar: one vector comparison each.
            if any_at_most(chunk, &[self.bar; CHUNK]) {
                self.offer_each(start, chunk, skip);
            }
            start += CHUNK;
        }
        self.offer_each(start, chunks.remainder(), skip);
    }

    /// Sets the bar from a row offered to an empty selection: the keep-th of its values
    /// (the row's own index left out) plus the slack, which the keep-th of all offers can
    /// only undercut. The row's offers then admit about `keep` pairs, not all of them.
    #[cold]
    fn bar_from(&mut self, first: usize, row: &[T], skip: usize) {
        let mut values: Vec<T> = (first..)
            .zip(row)
            .filter_map(|(j, &v)| (j != skip).then_some(v))
            .collect();
        if values.len() >= self.keep {
            let (_, kth, _) = values.select_nth_unstable_by(self.keep - 1, |a, b| a.total_cmp(b));
            self.bar = *kth + self.slack;
        }
    }

    /// Offers `(values[t], first + t)` one by one, but the index `skip`.
    #[inline(never)]
    fn offer_each(&mut self, first: usize, values: &[T], skip: usize) {
        for (j, &dist) in (first..).zip(values) {
            if dist <= self.bar && j != skip {
                self.admit(dist, j);
            }
        }
    }

    /// Offers one pair; the caller has checked `dist <= self.bar()` (others are harmless
    /// but cost a slot until the next cut). Indices are below 2³².
    #[inline(always)]
    pub fn admit(&mut self, dist: T, index: usize) {
        let index = u32::try_from(index).expect("indices below 2^32");
        self.pairs.push((dist, index));
        if self.pairs.len() == self.cut_at {
            self.cut();
        }
    }

    /// Back to the `keep` smallest and those within the slack of the keep-th; the next cut
    /// when the buffer has grown by half of `keep` again.
    #[cold]
    fn cut(&mut self) {
        if self.pairs.len() > self.keep {
            self.pairs.select_nth_unstable_by(self.keep - 1, |a, b| {
                a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
            });
            let limit = self.pairs[self.keep - 1].0 + self.slack;
            let mut kept = self.keep;
            for t in self.keep..self.pairs.len() {
                if self.pairs[t].0 < limit {
                    self.pairs.swap(kept, t);
                    kept += 1;
                }
            }
            self.pairs.truncate(kept);
            self.bar = limit;
            self.cut_at = kept + self.keep.div_ceil(2);
            // Room for exactly the pairs up to the next cut (growth by doubling could leave
            // half the buffer unused, a gigabyte at a million cells).
            self.pairs.reserve_exact(self.cut_at - self.pairs.len());
        }
    }

    /// The smallest `min(keep, offered)` pairs and (with a slack) every pair below the
    /// keep-th's distance plus the slack, ascending in [`by_distance_then_index`].
    pub fn finish(mut self) -> Vec<(T, usize)> {
        self.cut();
        let mut pairs: Vec<(T, usize)> = self
            .pairs
            .into_iter()
            .map(|(dist, index)| (dist, index as usize))
            .collect();
        pairs.sort_unstable_by(by_distance_then_index);
        pairs
    }
}

/// The [`TopK`] of every point of a block, with their admission bars side by side so that
/// a row of a distance tile is compared with them in vector registers: what a pass over
/// pairs of blocks ([`crate::visit_pairs`]) keeps per block to find each point's nearest.
#[derive(Debug, Clone)]
pub struct BlockTopK<T> {
    bars: Vec<T>,
    points: Vec<TopK<T>>,
}

impl<T: Real> BlockTopK<T> {
    /// One selection per point, as made by `top_k(t)` for the block's t-th point.
    pub fn new(points: usize, top_k: impl FnMut(usize) -> TopK<T>) -> Self {
        let points: Vec<TopK<T>> = (0..points).map(top_k).collect();
        Self {
            bars: points.iter().map(TopK::bar).collect(),
            points,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the block has no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Offers the block's point `t` the points `first + c` at distances `row[c]`, but
    /// `skip` ([`TopK::offer_row`]).
    #[inline(always)]
    pub fn offer_row(&mut self, t: usize, first: usize, row: &[T], skip: usize) {
        self.points[t].offer_row(first, row, skip);
        self.bars[t] = self.points[t].bar();
    }

    /// Offers point `j` to every point t of the block at distance `distances[t]`
    /// (`distances.len() ≤ self.len()`: a column of a tile, read as one of its rows since
    /// distances are symmetric).
    #[inline(always)]
    pub fn offer_column(&mut self, j: usize, distances: &[T]) {
        let mut chunks = distances.chunks_exact(CHUNK);
        let mut t0 = 0;
        for chunk in &mut chunks {
            let bars = &self.bars[t0..t0 + CHUNK];
            if any_at_most(chunk, bars) {
                self.admit_each(t0, j, chunk);
            }
            t0 += CHUNK;
        }
        self.admit_each(t0, j, chunks.remainder());
    }

    /// Offers point `j` to the points `t0..` at `distances`, one by one.
    #[inline(never)]
    fn admit_each(&mut self, t0: usize, j: usize, distances: &[T]) {
        for (t, &dist) in (t0..).zip(distances) {
            if dist <= self.bars[t] {
                self.points[t].admit(dist, j);
                self.bars[t] = self.points[t].bar();
            }
        }
    }

    /// The highest admission bar of the block's points (−∞ for none): a distance above it
    /// enters no selection.
    pub fn largest_bar(&self) -> f64 {
        self.bars
            .iter()
            .fold(f64::NEG_INFINITY, |m, b| m.max(b.to_f64()))
    }

    /// Every point's selection, in the block's order.
    pub fn into_points(self) -> Vec<TopK<T>> {
        self.points
    }
}

/// A pass over all pairs ([`crate::visit_pairs`]) that finds every point's nearest: a
/// [`BlockTopK`] per block, made by `top_k(position)` for the points below `rows_end` (the
/// others get none), offered each tile's pairs both ways.
pub struct NearestPoints<F> {
    /// The points below it get a selection.
    pub rows_end: usize,
    /// The empty selection of the point at a position.
    pub top_k: F,
}

impl<T: Real, F: Fn(usize) -> TopK<T> + Sync> PairVisitor<T> for NearestPoints<F> {
    type Block = BlockTopK<T>;

    fn block(&self, positions: Range<usize>) -> BlockTopK<T> {
        let first = positions.start;
        let points = positions.end.min(self.rows_end).saturating_sub(first);
        BlockTopK::new(points, |t| (self.top_k)(first + t))
    }

    /// Not a tile whose every distance is above both blocks' bars: none would be admitted
    /// (a rejected offer leaves a selection as it was, so the results are the same).
    fn wants(&self, rows: &BlockTopK<T>, columns: &BlockTopK<T>, floor: f64) -> bool {
        !(rows.largest_bar() < floor && columns.largest_bar() < floor)
    }

    fn visit(
        &self,
        rows: &mut BlockTopK<T>,
        columns: Option<&mut BlockTopK<T>>,
        tile: &mut Tile<T>,
    ) {
        dispatch(OfferTile {
            rows,
            columns,
            tile,
        });
    }
}

/// Offers a tile's pairs to the selections of its row points and (off the diagonal) of
/// its column points.
struct OfferTile<'a, T> {
    rows: &'a mut BlockTopK<T>,
    columns: Option<&'a mut BlockTopK<T>>,
    tile: &'a Tile<'a, T>,
}

impl<T: Real> Vectorised for OfferTile<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            rows,
            mut columns,
            tile,
        } = self;
        for (t, (i, distances)) in tile.rows().enumerate() {
            if t < rows.len() {
                rows.offer_row(t, tile.columns.start, distances, i);
            }
            if let Some(columns) = columns.as_deref_mut() {
                columns.offer_column(i, &distances[..columns.len()]);
            }
        }
    }
}

/// Whether any `values[l] <= bars[l]`, branch-free.
#[inline(always)]
pub fn any_at_most<T: Real>(values: &[T], bars: &[T]) -> bool {
    values
        .iter()
        .zip(bars)
        .fold(false, |any, (v, bar)| any | (v <= bar))
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{by_distance_then_index, NearestPoints, TopK};
    use crate::{visit_pairs, PairVisitor, Points, Tile, BLOCK};

    /// Counts the off-diagonal tiles computed; wants none itself (`declines`) or all.
    struct CountTiles {
        declines: bool,
        computed: AtomicUsize,
    }

    impl PairVisitor<f32> for CountTiles {
        type Block = ();

        fn block(&self, _: Range<usize>) {}

        fn wants(&self, _: &(), _: &(), _: f64) -> bool {
            !self.declines
        }

        fn visit(&self, _: &mut (), columns: Option<&mut ()>, _: &mut Tile<f32>) {
            if columns.is_some() {
                self.computed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn nearest_points_decline_far_tiles_and_find_the_same_neighbours() {
        // Six clusters of a block and a half each, far apart along a line, jittered in 3
        // dimensions: the tiles between clusters two apart cannot hold a near pair.
        let (dims, per_cluster) = (3, BLOCK + BLOCK / 2);
        let mut state = 11u64;
        let values: Vec<f32> = (0..6 * per_cluster * dims)
            .map(|v| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let jitter = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                let cluster = v / dims / per_cluster;
                jitter
                    + if v % dims == 0 {
                        8.0 * cluster as f32
                    } else {
                        0.0
                    }
            })
            .collect();
        let points = Points::new(values, dims);
        let n = points.n();
        let nearest_with = |declines: bool| {
            let nearest = NearestPoints {
                rows_end: n,
                top_k: |_| TopK::with_slack(7, 0.01f32),
            };
            let count = CountTiles {
                declines,
                computed: AtomicUsize::new(0),
            };
            let blocks = visit_pairs(&points, n, &(nearest, &count), |_| {});
            let found: Vec<Vec<(f32, usize)>> = blocks
                .into_iter()
                .flat_map(|(block, ())| block.into_points())
                .map(TopK::finish)
                .collect();
            (found, count.computed.into_inner())
        };
        let (all, every_tile) = nearest_with(false);
        let (pruned, computed) = nearest_with(true);
        let blocks = n.div_ceil(BLOCK);
        assert_eq!(every_tile, blocks * (blocks - 1) / 2);
        assert!(
            computed < every_tile / 2,
            "{computed} of {every_tile} tiles"
        );
        assert_eq!(pruned, all);
    }

    #[test]
    fn top_k_is_the_sorted_prefix_with_ties_by_index() {
        let mut state = 7u64;
        for (len, keep, distinct) in [
            (1, 1, 5),
            (40, 3, 4),
            (1000, 17, 50),
            (1000, 600, 1000),
            (300, 10, 1 << 20),
            (5, 9, 3),
        ] {
            let mut values: Vec<f32> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % distinct) as f32 * 0.5 + 0.25
                })
                .collect();
            // The row's own point, at distance 0 as on a diagonal tile.
            let skip = len / 2;
            values[skip] = 0.0;
            let mut want: Vec<(f32, usize)> = values
                .iter()
                .copied()
                .zip(0..)
                .filter(|&(_, j)| j != skip)
                .collect();
            want.sort_by(by_distance_then_index);
            // Rows of 13, and the whole stream as one row (whose first offer to an empty
            // selection sets the bar from the row itself, `skip` left out).
            for (slack, width) in [0.0f32, 0.3, 1.0, 2.5]
                .into_iter()
                .flat_map(|slack| [(slack, 13), (slack, len)])
            {
                let mut top = TopK::with_slack(keep, slack);
                for (start, row) in (0..).step_by(width).zip(values.chunks(width)) {
                    top.offer_row(start, row, skip);
                }
                let mut near = want.clone();
                if let Some(&(kth, _)) = want.get(keep - 1) {
                    let limit = kth + slack;
                    near = (0..want.len())
                        .filter(|&t| t < keep || want[t].0 < limit)
                        .map(|t| want[t])
                        .collect();
                }
                assert_eq!(
                    top.finish(),
                    near,
                    "len {len}, keep {keep}, slack {slack}, width {width}"
                );
            }
        }
    }
}
