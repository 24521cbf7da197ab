//! Squared distances of rows to centroids, 8 rows by 4 centroids at a time with the sums
//! in registers: k-means' assignment step and its k-means++ seeding.

use diffbio_pairwise::{dispatch, Vectorised};
use rayon::prelude::*;

/// Each row's nearest centroid (the lower index on ties) and the total squared distance.
pub(super) fn assign(x: &[f64], dims: usize, centroids: &[f64]) -> (Vec<u32>, f64) {
    let nearest_centroids = NearestCentroids {
        by_group: by_group(centroids, dims),
        k: centroids.len() / dims,
    };
    let mut nearest = vec![(0u32, 0.0f64); x.len() / dims];
    for_row_blocks(x, dims, &mut nearest, &nearest_centroids);
    let inertia = nearest.iter().map(|p| p.1).sum();
    (nearest.into_iter().map(|p| p.0).collect(), inertia)
}

/// Every row's squared distance to every one of `centres` (row-major `[m × dims]`), each
/// rounded as [`lane_distances`] says: row-major `[n × m]`.
pub(super) fn sq_distances(x: &[f64], dims: usize, centres: &[f64]) -> Vec<f64> {
    let to_centres = ToCentres {
        by_group: by_group(centres, dims),
        m: centres.len() / dims,
    };
    let mut distances = vec![0.0f64; x.len() / dims * to_centres.m];
    for_row_blocks(x, dims, &mut distances, &to_centres);
    distances
}

/// Rows per parallel task of [`for_row_blocks`].
const ROWS_PER_TASK: usize = 1024;
/// Rows whose distances [`lane_distances`] sums side by side (one AVX-512 vector of f64).
const ROW_LANES: usize = 8;
/// Centroids whose distances [`lane_distances`] sums at once (their sums stay in registers
/// through all dimensions).
const CENTROID_GROUP: usize = 4;

/// The centroids (row-major `[k × dims]`) by group of [`CENTROID_GROUP`], then by
/// dimension: `[groups × dims × CENTROID_GROUP]`, the last group padded with zeros.
fn by_group(centroids: &[f64], dims: usize) -> Vec<f64> {
    let k = centroids.len() / dims;
    (0..k.div_ceil(CENTROID_GROUP))
        .flat_map(|g| (0..dims).map(move |t| (g, t)))
        .flat_map(|(g, t)| {
            (g * CENTROID_GROUP..(g + 1) * CENTROID_GROUP).map(move |c| {
                if c < k {
                    centroids[c * dims + t]
                } else {
                    0.0
                }
            })
        })
        .collect()
}

/// Up to [`ROW_LANES`] row-major `rows` into `lanes`, by dimension (lanes past the rows
/// keep what they held).
#[inline(always)]
fn load_lanes(rows: &[f64], lanes: &mut [[f64; ROW_LANES]]) {
    for (r, row) in rows.chunks_exact(lanes.len()).enumerate() {
        for (lane, &value) in lanes.iter_mut().zip(row) {
            lane[r] = value;
        }
    }
}

/// `each(c, distances)` for each of the first `count` centroids of `by_group`, with the
/// squared distances of the rows in `lanes` to centroid c, one per lane: each
/// `Σ_t (x_t − c_t)²` summed over the dimensions in order from 0 (as a plain loop rounds
/// it), a group of [`CENTROID_GROUP`] centroids at a time.
#[inline(always)]
fn lane_distances(
    lanes: &[[f64; ROW_LANES]],
    by_group: &[f64],
    count: usize,
    mut each: impl FnMut(usize, &[f64; ROW_LANES]),
) {
    for (g, group) in by_group
        .chunks_exact(lanes.len() * CENTROID_GROUP)
        .enumerate()
    {
        let mut sums = [[0.0f64; ROW_LANES]; CENTROID_GROUP];
        for (lane, centres) in lanes.iter().zip(group.chunks_exact(CENTROID_GROUP)) {
            for (sums, &centre) in sums.iter_mut().zip(centres) {
                for (sum, &value) in sums.iter_mut().zip(lane) {
                    let diff = value - centre;
                    *sum += diff * diff;
                }
            }
        }
        let first = g * CENTROID_GROUP;
        for (c, sums) in sums.iter().enumerate().take(count - first) {
            each(first + c, sums);
        }
    }
}

/// What [`for_row_blocks`] computes for each block of [`ROW_LANES`] rows.
trait RowBlockWork: Sync {
    /// One row's outputs.
    type Out: Send;
    /// Outputs per row.
    fn per_row(&self) -> usize;
    /// The outputs of the rows in `lanes` (their coordinates by dimension): `out` holds
    /// [`Self::per_row`] for each, fewer rows in a last block.
    fn block(&self, lanes: &[[f64; ROW_LANES]], out: &mut [Self::Out]);
}

/// [`RowBlockWork::block`] for every [`ROW_LANES`] rows of the row-major `[n × dims]` `x`:
/// tasks of [`ROWS_PER_TASK`] rows in parallel, each compiled for the CPU's vector
/// instructions ([`dispatch`]).
fn for_row_blocks<W: RowBlockWork>(x: &[f64], dims: usize, out: &mut [W::Out], work: &W) {
    out.par_chunks_mut(ROWS_PER_TASK * work.per_row())
        .zip(x.par_chunks(ROWS_PER_TASK * dims))
        .for_each(|(out, rows)| {
            dispatch(RowBlocks {
                rows,
                dims,
                out,
                work,
            })
        });
}

/// One task of [`for_row_blocks`].
struct RowBlocks<'a, W: RowBlockWork> {
    rows: &'a [f64],
    dims: usize,
    out: &'a mut [W::Out],
    work: &'a W,
}

impl<W: RowBlockWork> Vectorised for RowBlocks<'_, W> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let mut lanes = vec![[0.0f64; ROW_LANES]; self.dims];
        for (rows, out) in self
            .rows
            .chunks(ROW_LANES * self.dims)
            .zip(self.out.chunks_mut(ROW_LANES * self.work.per_row()))
        {
            load_lanes(rows, &mut lanes);
            self.work.block(&lanes, out);
        }
    }
}

/// Each row's nearest centroid and its squared distance, for [`assign`].
struct NearestCentroids {
    /// The centroids as [`by_group`] lays them out.
    by_group: Vec<f64>,
    k: usize,
}

impl RowBlockWork for NearestCentroids {
    type Out = (u32, f64);

    fn per_row(&self) -> usize {
        1
    }

    #[inline(always)]
    fn block(&self, lanes: &[[f64; ROW_LANES]], nearest: &mut [(u32, f64)]) {
        let mut best = [(0u32, f64::INFINITY); ROW_LANES];
        lane_distances(lanes, &self.by_group, self.k, |c, distances| {
            for (best, &d) in best.iter_mut().zip(distances) {
                if d < best.1 {
                    *best = (c as u32, d);
                }
            }
        });
        nearest.copy_from_slice(&best[..nearest.len()]);
    }
}

/// Each row's squared distances to `m` centres, for [`sq_distances`].
struct ToCentres {
    /// The centres as [`by_group`] lays them out.
    by_group: Vec<f64>,
    m: usize,
}

impl RowBlockWork for ToCentres {
    type Out = f64;

    fn per_row(&self) -> usize {
        self.m
    }

    #[inline(always)]
    fn block(&self, lanes: &[[f64; ROW_LANES]], distances: &mut [f64]) {
        lane_distances(lanes, &self.by_group, self.m, |c, to_centre| {
            for (row, &d) in distances.chunks_exact_mut(self.m).zip(to_centre) {
                row[c] = d;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{assign, sq_distances};

    /// The reference: one distance, summed over the dimensions in order.
    fn sq_distance(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    #[test]
    fn sq_distances_equal_the_row_by_row_distances_bitwise() {
        let mut state = 5u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % 1000) as f64 / 29.0 - 17.0
        };
        // One centre, a group, a group and a part; rows past a task and a vector of rows.
        for (n, dims, m) in [(1030usize, 5usize, 1usize), (300, 50, 4), (13, 3, 6)] {
            let x: Vec<f64> = (0..n * dims).map(|_| next()).collect();
            let centres: Vec<f64> = (0..m * dims).map(|_| next()).collect();
            let distances = sq_distances(&x, dims, &centres);
            let want: Vec<u64> = x
                .chunks(dims)
                .flat_map(|row| centres.chunks(dims).map(|c| sq_distance(row, c).to_bits()))
                .collect();
            let got: Vec<u64> = distances.iter().map(|d| d.to_bits()).collect();
            assert_eq!(got, want, "n {n}, dims {dims}, m {m}");
        }
    }

    #[test]
    fn assign_equals_the_row_by_row_distances_bitwise() {
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % 1000) as f64 / 37.0 - 13.0
        };
        // More rows than one task; rows and centroids that fill their last vector of
        // rows or group of centroids partly, and wholly; a duplicated centroid, whose ties
        // go to the lower index.
        for (n, dims, k) in [
            (2500usize, 7usize, 11usize),
            (300, 50, 3),
            (5, 1, 5),
            (64, 3, 8),
        ] {
            let x: Vec<f64> = (0..n * dims).map(|_| next()).collect();
            let mut centroids: Vec<f64> = (0..k * dims).map(|_| next()).collect();
            centroids.copy_within(0..dims, (k - 1) * dims);
            let (labels, inertia) = assign(&x, dims, &centroids);
            let mut want_inertia = 0.0;
            for (row, &label) in x.chunks(dims).zip(&labels) {
                let (best, d) = centroids
                    .chunks(dims)
                    .map(|c| sq_distance(row, c))
                    .enumerate()
                    .fold(
                        (0, f64::INFINITY),
                        |b, (c, d)| if d < b.1 { (c, d) } else { b },
                    );
                assert_eq!(label as usize, best);
                want_inertia += d;
            }
            assert_eq!(
                inertia.to_bits(),
                want_inertia.to_bits(),
                "n {n}, dims {dims}"
            );
            assert!(
                !labels.contains(&(k as u32 - 1)),
                "a tie went to the higher index"
            );
        }
    }
}
