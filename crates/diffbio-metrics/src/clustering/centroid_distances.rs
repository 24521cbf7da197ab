//! Squared distances of rows to centroids, 8 rows by 4 centroids at a time with the sums
//! in registers: k-means' assignment step, which skips the rows whose centroid cannot
//! change (Hamerly's bounds), and its k-means++ seeding.

use diffbio_pairwise::{dispatch, Vectorised};
use rayon::prelude::*;

/// Each row's nearest centroid (the lower index on ties), kept from one Lloyd iteration to
/// the next with Hamerly's bounds (Hamerly 2010, "Making k-means even faster"): an upper
/// bound on each row's distance to its centroid and a lower bound on its distance to every
/// other one, moved by the centroids' shifts (the triangle inequality). A row whose upper
/// bound is below its lower bound by more than the distances' rounding keeps its centroid
/// unmeasured: measuring it would choose the same one. So the labels are, bitwise, those of
/// measuring every row at every iteration.
///
/// The rounding: a measured squared distance `Σ_t (x_t − c_t)²` (summed in order, no fused
/// multiply-add, denormals flushed by [`dispatch`]) has a square root `D̂` within
/// `ρ·D + A` of the exact distance `D`, with `ρ = γ_{dims+2}` (one rounding per difference,
/// per square and per addition of non-negative terms) and `A = 2·√(dims·MIN_POSITIVE)`
/// (the flushed inputs, differences and squares). The bounds are set and moved with a
/// relative margin [`margin`] `r = 4(dims + 4)·u > ρ` and the absolute `A`, rounded
/// outwards, so they hold for exact distances; a row is skipped when
/// `upper·(1 + r) + 2A < lower·(1 − r)`: then `D̂` to its centroid is below `D̂` to every
/// other, and so is the squared distance the kernel compares.
pub(super) struct Assignment {
    /// Every row's centroid.
    pub(super) labels: Vec<u32>,
    /// A bound above every row's distance to its centroid.
    upper: Vec<f64>,
    /// A bound below every row's distance to each other centroid.
    lower: Vec<f64>,
}

impl Assignment {
    /// Every row of the row-major `[n × dims]` `x` measured against every centroid.
    pub(super) fn new(x: &[f64], dims: usize, centroids: &[f64]) -> Self {
        let n = x.len() / dims;
        let mut assignment = Self {
            labels: vec![u32::MAX; n],
            upper: vec![f64::INFINITY; n],
            lower: vec![0.0; n],
        };
        assignment.update(x, dims, centroids, &[]);
        assignment
    }

    /// The rows re-assigned to `centroids`, each of which moved by at most `shifts[c]`
    /// ([`shifts`]) since the last assignment: whether any label changed. Rows without a
    /// centroid yet are measured ([`Self::new`], whose `shifts` are empty).
    pub(super) fn update(
        &mut self,
        x: &[f64],
        dims: usize,
        centroids: &[f64],
        shifts: &[f64],
    ) -> bool {
        let (r, a) = (margin(dims), flush_allowance(dims));
        // How far the lower bound of a row of centroid c moves: the largest other shift.
        let moved: Vec<f64> = (0..shifts.len())
            .map(|c| {
                let others = shifts.iter().enumerate().filter(|&(o, _)| o != c);
                others.map(|(_, &shift)| shift).fold(0.0, f64::max)
            })
            .collect();
        let kernel = Nearest {
            by_group: by_group(centroids, dims),
            k: centroids.len() / dims,
            r,
            a,
        };
        let changed: usize = self
            .labels
            .par_chunks_mut(ROWS_PER_TASK)
            .zip(self.upper.par_chunks_mut(ROWS_PER_TASK))
            .zip(self.lower.par_chunks_mut(ROWS_PER_TASK))
            .zip(x.par_chunks(ROWS_PER_TASK * dims))
            .map(|(((labels, upper), lower), rows)| {
                let mut measure = Vec::new();
                for (i, ((&label, upper), lower)) in labels
                    .iter()
                    .zip(upper.iter_mut())
                    .zip(lower.iter_mut())
                    .enumerate()
                {
                    let label = label as usize;
                    if label < shifts.len() {
                        *upper = (*upper + shifts[label]) * (1.0 + r);
                        *lower = ((*lower - moved[label]) * (1.0 - r)).max(0.0);
                        if *upper * (1.0 + r) + 2.0 * a < *lower * (1.0 - r) {
                            continue;
                        }
                    }
                    measure.push(i);
                }
                dispatch(MeasureRows {
                    kernel: &kernel,
                    rows,
                    dims,
                    measure: &measure,
                    labels,
                    upper,
                    lower,
                })
            })
            .sum();
        changed > 0
    }

    /// The sum of the rows' squared distances to their centroids, each summed as the
    /// assignment measures it and added in row order.
    pub(super) fn inertia(&self, x: &[f64], dims: usize, centroids: &[f64]) -> f64 {
        let mut distances = vec![0.0f64; self.labels.len()];
        distances
            .par_chunks_mut(ROWS_PER_TASK)
            .zip(self.labels.par_chunks(ROWS_PER_TASK))
            .zip(x.par_chunks(ROWS_PER_TASK * dims))
            .for_each(|((distances, labels), rows)| {
                dispatch(OwnCentroid {
                    rows,
                    dims,
                    labels,
                    centroids,
                    distances,
                })
            });
        distances.iter().sum()
    }
}

/// How far each centroid moved, `|after_c − before_c|`, rounded up to a bound of the exact
/// distance ([`Assignment`]'s margins).
pub(super) fn shifts(before: &[f64], after: &[f64], dims: usize) -> Vec<f64> {
    let (r, a) = (margin(dims), flush_allowance(dims));
    before
        .chunks_exact(dims)
        .zip(after.chunks_exact(dims))
        .map(|(p, q)| {
            let sq: f64 = p.iter().zip(q).map(|(u, v)| (u - v) * (u - v)).sum();
            sq.sqrt() * (1.0 + r) + a
        })
        .collect()
}

/// [`Assignment`]'s relative margin `4(dims + 4)·u` (`u = ε/2`): above the relative
/// rounding `γ_{dims+2}` of a measured distance and of the bounds' own arithmetic.
fn margin(dims: usize) -> f64 {
    2.0 * (dims + 4) as f64 * f64::EPSILON
}

/// [`Assignment`]'s absolute allowance `2·√(dims·MIN_POSITIVE)` for the values flushed to
/// zero in a measured distance (inputs, differences and squares below `MIN_POSITIVE`).
fn flush_allowance(dims: usize) -> f64 {
    2.0 * (dims as f64 * f64::MIN_POSITIVE).sqrt()
}

/// Every row's squared distance to every one of `centres` (row-major `[m × dims]`), each
/// rounded as [`lane_distances`] says: row-major `[n × m]`.
pub(super) fn sq_distances(x: &[f64], dims: usize, centres: &[f64]) -> Vec<f64> {
    let (by_group, m) = (by_group(centres, dims), centres.len() / dims);
    let mut distances = vec![0.0f64; x.len() / dims * m];
    distances
        .par_chunks_mut(ROWS_PER_TASK * m)
        .zip(x.par_chunks(ROWS_PER_TASK * dims))
        .for_each(|(distances, rows)| {
            dispatch(ToCentres {
                by_group: &by_group,
                m,
                rows,
                dims,
                distances,
            })
        });
    distances
}

/// Rows per parallel task.
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

/// Up to [`ROW_LANES`] `rows` into `lanes`, by dimension (lanes past the rows keep what
/// they held).
#[inline(always)]
fn load_lanes<'a>(rows: impl Iterator<Item = &'a [f64]>, lanes: &mut [[f64; ROW_LANES]]) {
    for (r, row) in rows.enumerate() {
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

/// The centroids of an [`Assignment::update`] and its margins.
struct Nearest {
    /// The centroids as [`by_group`] lays them out.
    by_group: Vec<f64>,
    k: usize,
    /// [`margin`].
    r: f64,
    /// [`flush_allowance`].
    a: f64,
}

/// One task of [`Assignment::update`]: its rows to `measure` (indices into the task's
/// rows) get their nearest centroid and fresh bounds; returns how many labels changed.
struct MeasureRows<'a> {
    kernel: &'a Nearest,
    rows: &'a [f64],
    dims: usize,
    measure: &'a [usize],
    labels: &'a mut [u32],
    upper: &'a mut [f64],
    lower: &'a mut [f64],
}

impl Vectorised for MeasureRows<'_> {
    type Output = usize;

    #[inline(always)]
    fn run(self) -> usize {
        let Nearest { by_group, k, r, a } = self.kernel;
        let dims = self.dims;
        let mut lanes = vec![[0.0f64; ROW_LANES]; dims];
        let mut changed = 0;
        for block in self.measure.chunks(ROW_LANES) {
            load_lanes(
                block.iter().map(|&i| &self.rows[i * dims..(i + 1) * dims]),
                &mut lanes,
            );
            // (centroid, squared distance, second smallest squared distance) per lane.
            let mut best = [(0u32, f64::INFINITY, f64::INFINITY); ROW_LANES];
            lane_distances(&lanes, by_group, *k, |c, distances| {
                for (best, &d) in best.iter_mut().zip(distances) {
                    if d < best.1 {
                        *best = (c as u32, d, best.1);
                    } else if d < best.2 {
                        best.2 = d;
                    }
                }
            });
            for (&i, &(label, nearest, second)) in block.iter().zip(&best) {
                changed += usize::from(self.labels[i] != label);
                self.labels[i] = label;
                self.upper[i] = nearest.sqrt() * (1.0 + r) + a;
                self.lower[i] = (second.sqrt() * (1.0 - r) - a).max(0.0);
            }
        }
        changed
    }
}

/// One task of [`Assignment::inertia`]: each row's squared distance to its centroid,
/// summed as [`lane_distances`] sums it.
struct OwnCentroid<'a> {
    rows: &'a [f64],
    dims: usize,
    labels: &'a [u32],
    centroids: &'a [f64],
    distances: &'a mut [f64],
}

impl Vectorised for OwnCentroid<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let dims = self.dims;
        for ((row, &label), distance) in self
            .rows
            .chunks_exact(dims)
            .zip(self.labels)
            .zip(self.distances.iter_mut())
        {
            let centroid = &self.centroids[label as usize * dims..(label as usize + 1) * dims];
            let mut sum = 0.0f64;
            for (&value, &centre) in row.iter().zip(centroid) {
                let diff = value - centre;
                sum += diff * diff;
            }
            *distance = sum;
        }
    }
}

/// One task of [`sq_distances`].
struct ToCentres<'a> {
    /// The centres as [`by_group`] lays them out.
    by_group: &'a [f64],
    m: usize,
    rows: &'a [f64],
    dims: usize,
    distances: &'a mut [f64],
}

impl Vectorised for ToCentres<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let (dims, m) = (self.dims, self.m);
        let mut lanes = vec![[0.0f64; ROW_LANES]; dims];
        for (rows, distances) in self
            .rows
            .chunks(ROW_LANES * dims)
            .zip(self.distances.chunks_mut(ROW_LANES * m))
        {
            load_lanes(rows.chunks_exact(dims), &mut lanes);
            lane_distances(&lanes, self.by_group, m, |c, to_centre| {
                for (row, &d) in distances.chunks_exact_mut(m).zip(to_centre) {
                    row[c] = d;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{shifts, sq_distances, Assignment};
    use crate::clustering::means;

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

    /// A seeded generator of values in about [−13, 14).
    fn values(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % 1000) as f64 / 37.0 - 13.0
        }
    }

    #[test]
    fn a_new_assignment_measures_every_row_bitwise() {
        let mut next = values(11);
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
            let assignment = Assignment::new(&x, dims, &centroids);
            let mut want_inertia = 0.0;
            for (i, row) in x.chunks(dims).enumerate() {
                let distances: Vec<f64> = centroids
                    .chunks(dims)
                    .map(|c| sq_distance(row, c))
                    .collect();
                let (best, d) =
                    distances
                        .iter()
                        .enumerate()
                        .fold(
                            (0, f64::INFINITY),
                            |b, (c, &d)| if d < b.1 { (c, d) } else { b },
                        );
                assert_eq!(assignment.labels[i] as usize, best);
                assert!(assignment.upper[i] >= d.sqrt());
                for (c, &other) in distances.iter().enumerate() {
                    assert!(c == best || assignment.lower[i] <= other.sqrt());
                }
                want_inertia += d;
            }
            let inertia = assignment.inertia(&x, dims, &centroids);
            assert_eq!(
                inertia.to_bits(),
                want_inertia.to_bits(),
                "n {n}, dims {dims}"
            );
            assert!(
                !assignment.labels.contains(&(k as u32 - 1)),
                "a tie went to the higher index"
            );
        }
    }

    #[test]
    fn bounded_lloyd_iterations_equal_measuring_every_row_bitwise() {
        let mut next = values(7);
        // Overlapping clusters (most rows keep their centroid unmeasured, some move late),
        // the centroids started in one of them; one centroid; two centroids at the same
        // place (ties: never skipped).
        for (n, dims, k, spread, twin) in [
            (3000usize, 5usize, 6usize, 0.25, false),
            (2100, 50, 10, 0.04, false),
            (500, 3, 1, 0.25, false),
            (900, 4, 4, 0.25, true),
        ] {
            let centres: Vec<f64> = (0..k * dims).map(|_| next() * spread).collect();
            let x: Vec<f64> = (0..n * dims)
                .map(|v| centres[(v / dims % k) * dims + v % dims] + next() / 8.0)
                .collect();
            let mut centroids: Vec<f64> = (0..k)
                .flat_map(|c| &x[c * k * dims..(c * k + 1) * dims])
                .copied()
                .collect();
            if twin {
                centroids.copy_within(0..dims, dims);
            }
            let mut bounded = Assignment::new(&x, dims, &centroids);
            let (mut skipped, mut iterations) = (0, 0);
            loop {
                let moved = means(&x, dims, &bounded.labels, k);
                let shifts = shifts(&centroids, &moved, dims);
                centroids = moved;
                iterations += 1;
                let changed = bounded.update(&x, dims, &centroids, &shifts);
                let every_row = Assignment::new(&x, dims, &centroids);
                assert_eq!(bounded.labels, every_row.labels, "iteration {iterations}");
                assert_eq!(
                    bounded.inertia(&x, dims, &centroids).to_bits(),
                    every_row.inertia(&x, dims, &centroids).to_bits()
                );
                // The rows it did not measure: their upper bounds are not fresh ones.
                skipped += (0..n)
                    .filter(|&i| bounded.upper[i] != every_row.upper[i])
                    .count();
                if !changed || iterations == 100 {
                    break;
                }
            }
            assert!(iterations > 2 || k == 1, "n {n}: {iterations} iterations");
            assert!(skipped > 0, "n {n}: no row skipped");
        }
    }
}
