//! Squared Euclidean distances between blocks of points, as matrix products.

use std::ops::Range;
use std::sync::OnceLock;

use gemm::Parallelism;

use crate::{dispatch, Real, Vectorised};

/// Distances per batch of [`Points::direct_sq_distances`]: independent sums in flight.
const DIRECT_BATCH: usize = 8;

/// A row-major `[n × dims]` set of points with their squared norms, from which tiles of
/// squared distances are computed as matrix products on the `gemm` crate (the one Candle
/// uses): `D_ij = max(|x_i|² + |x_j|² − 2 x_i·x_j, 0)`.
///
/// That form rounds with an absolute error of about `ε·(|x_i|² + |x_j|²)`
/// ([`Self::tile_error_bound`]), so an exact result near a tie re-measures its candidates
/// with [`Self::direct_sq_distance`]. Memory: the points (twice once tiles are computed:
/// row-major and dimension-major), their norms, and the tiles the caller provides; never
/// n × n.
///
/// ```
/// use diffbio_pairwise::Points;
/// let p = Points::new(vec![0.0f32, 0.0, 3.0, 4.0, 6.0, 8.0], 2);
/// let mut tile = vec![0.0; 4];
/// p.tile(0..2, 1..3, &mut tile); // rows 0, 1 against columns 1, 2
/// assert_eq!(tile, [25.0, 100.0, 0.0, 25.0]);
/// assert_eq!(p.direct_sq_distance(0, 2), 100.0);
/// ```
#[derive(Debug, Clone)]
pub struct Points<T> {
    values: Vec<T>,
    /// The same values dimension-major (`[dims × n]`), made by the first [`Self::tile`]:
    /// `gemm` reads a tile's column points from there as contiguous runs instead of
    /// gathering them at stride `dims`.
    by_dimension: OnceLock<Vec<T>>,
    dims: usize,
    sq_norms: Vec<T>,
    largest_sq_norm: f64,
}

impl<T: Real> Points<T> {
    /// The rows of `values` (row-major, `values.len()` a multiple of `dims > 0`).
    pub fn new(values: Vec<T>, dims: usize) -> Self {
        assert!(
            dims > 0 && values.len() % dims == 0,
            "rows of {dims} values"
        );
        let sq_norms: Vec<T> = values
            .chunks_exact(dims)
            .map(|r| r.iter().fold(T::default(), |a, &v| a + v * v))
            .collect();
        let largest_sq_norm = sq_norms.iter().map(|v| v.to_f64()).fold(0.0, f64::max);
        Self {
            values,
            by_dimension: OnceLock::new(),
            dims,
            sq_norms,
            largest_sq_norm,
        }
    }

    /// Number of points.
    pub fn n(&self) -> usize {
        self.sq_norms.len()
    }

    /// Dimensions per point.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[T] {
        &self.values[i * self.dims..(i + 1) * self.dims]
    }

    /// The points `range`, row-major.
    pub fn rows(&self, range: Range<usize>) -> &[T] {
        &self.values[range.start * self.dims..range.end * self.dims]
    }

    /// `|x_i|²`, as summed in `T`.
    pub fn sq_norm(&self, i: usize) -> T {
        self.sq_norms[i]
    }

    /// The largest `|x_i|²`.
    pub fn largest_sq_norm(&self) -> f64 {
        self.largest_sq_norm
    }

    /// `Σ (x_i − x_j)²` in the direct form: exact to rounding, whatever the norms.
    pub fn direct_sq_distance(&self, i: usize, j: usize) -> T {
        self.row(i)
            .iter()
            .zip(self.row(j))
            .fold(T::default(), |acc, (&a, &b)| acc + (a - b) * (a - b))
    }

    /// [`Self::direct_sq_distance`] from point `i` to each of the points `js`, the same
    /// values: `DIRECT_BATCH` of them at a time, so that their sequential sums overlap
    /// (one alone waits on each addition).
    ///
    /// ```
    /// use diffbio_pairwise::Points;
    /// let p = Points::new((0..40).map(|v| (v * v % 7) as f64).collect(), 2);
    /// let js: Vec<usize> = (0..20).rev().collect();
    /// let each: Vec<f64> = js.iter().map(|&j| p.direct_sq_distance(3, j)).collect();
    /// assert_eq!(p.direct_sq_distances(3, &js), each);
    /// ```
    pub fn direct_sq_distances(&self, i: usize, js: &[usize]) -> Vec<T> {
        let xi = self.row(i);
        let chunks = js.chunks_exact(DIRECT_BATCH);
        let rest = chunks.remainder();
        let mut out = Vec::with_capacity(js.len());
        for chunk in chunks {
            let rows: [&[T]; DIRECT_BATCH] = std::array::from_fn(|l| self.row(chunk[l]));
            let mut sums = [T::default(); DIRECT_BATCH];
            for (k, &a) in xi.iter().enumerate() {
                for (sum, row) in sums.iter_mut().zip(&rows) {
                    let diff = a - row[k];
                    *sum += diff * diff;
                }
            }
            out.extend(sums);
        }
        out.extend(rest.iter().map(|&j| self.direct_sq_distance(i, j)));
        out
    }

    /// A bound on the rounding error of a tiled squared distance from point i (to any
    /// point), in the points' precision.
    pub fn tile_error_bound(&self, i: usize) -> f64 {
        4.0 * (self.dims + 4) as f64
            * T::EPSILON
            * (self.sq_norms[i].to_f64() + self.largest_sq_norm)
    }

    /// `out[r · cols.len() + c] = D(rows.start + r, cols.start + c)`, row-major (the tiled
    /// form, clamped at 0; a point against itself gives about 0, not exactly).
    pub fn tile(&self, rows: Range<usize>, cols: Range<usize>, out: &mut [T]) {
        let (m, w, d) = (rows.len(), cols.len(), self.dims);
        let out = &mut out[..m * w];
        assert!(
            cols.end <= self.n(),
            "columns {cols:?} of {} points",
            self.n()
        );
        let by_dimension = self.by_dimension.get_or_init(|| {
            (0..d)
                .flat_map(|k| self.values[k..].iter().step_by(d).copied())
                .collect()
        });
        // SAFETY: `out` holds m×w elements (row stride w); the row block holds m×d
        // contiguous elements of `self.values` (row stride d); the column block's d×w lie
        // in `by_dimension` at cols.start + k·n + c, c < w, k < d (n ≥ cols.end).
        unsafe {
            gemm::gemm(
                m,
                w,
                d,
                out.as_mut_ptr(),
                1,
                w as isize,
                false,
                self.rows(rows.clone()).as_ptr(),
                1,
                d as isize,
                by_dimension[cols.start..].as_ptr(),
                1,
                self.n() as isize,
                T::default(),
                T::from_f64(-2.0),
                false,
                false,
                false,
                Parallelism::None,
            );
        }
        dispatch(AddNorms {
            tile: out,
            row_norms: &self.sq_norms[rows],
            col_norms: &self.sq_norms[cols],
        });
    }

    /// `out[r] −= Σ_c W_rc · x_{cols.start + c}` for every row r of `out` (row-major, `dims`
    /// wide), with `W_rc = weights[r · strides.0 + c · strides.1]`: a tile of pair weights
    /// (or, with strides `(1, width)`, its transpose) times the column points, the dense
    /// half of a gradient `Σ_j C_ij (x_i − x_j)`.
    pub fn subtract_weighted_points(
        &self,
        weights: &[T],
        strides: (usize, usize),
        cols: Range<usize>,
        out: &mut [T],
    ) {
        let (d, w) = (self.dims, cols.len());
        let m = out.len() / d;
        assert!(
            out.len() == m * d
                && (m == 0 || w == 0 || (m - 1) * strides.0 + (w - 1) * strides.1 < weights.len()),
            "a {m}×{w} matrix of weights"
        );
        // SAFETY: every W_rc (r < m, c < w) lies inside `weights` (checked above), the
        // column block holds w×d contiguous elements of `self.values` (row stride d), `out`
        // m×d (row stride d).
        unsafe {
            gemm::gemm(
                m,
                d,
                w,
                out.as_mut_ptr(),
                1,
                d as isize,
                true,
                weights.as_ptr(),
                strides.1 as isize,
                strides.0 as isize,
                self.rows(cols).as_ptr(),
                1,
                d as isize,
                T::from_f64(1.0),
                T::from_f64(-1.0),
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    }
}

/// `D_ij = max(|x_i|² + |x_j|² + tile_ij, 0)` over a tile that holds `−2 x_i·x_j`.
struct AddNorms<'a, T> {
    tile: &'a mut [T],
    row_norms: &'a [T],
    col_norms: &'a [T],
}

impl<T: Real> Vectorised for AddNorms<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let zero = T::default();
        let w = self.col_norms.len();
        for (row, &norm_i) in self.tile.chunks_exact_mut(w).zip(self.row_norms) {
            for (v, &norm_j) in row.iter_mut().zip(self.col_norms) {
                let dist = norm_i + norm_j + *v;
                *v = if dist > zero { dist } else { zero };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Points;

    fn check<T: crate::Real>(tol: f64) {
        let (n, d) = (37, 5);
        let values: Vec<T> = (0..n * d)
            .map(|i| T::from_f64(((i * 7919 % 113) as f64 - 56.0) / 17.0))
            .collect();
        let p = Points::new(values, d);
        let (rows, cols) = (3..31, 10..37);
        let mut tile = vec![T::default(); rows.len() * cols.len()];
        p.tile(rows.clone(), cols.clone(), &mut tile);
        for (r, i) in rows.enumerate() {
            for (c, j) in cols.clone().enumerate() {
                let want = p.direct_sq_distance(i, j).to_f64();
                let got = tile[r * cols.len() + c].to_f64();
                assert!(got >= 0.0);
                assert!(
                    (got - want).abs() <= tol.max(p.tile_error_bound(i)),
                    "{i} {j}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn weighted_points_are_subtracted() {
        let p = Points::new(vec![1.0f64, 2.0, 3.0, 5.0, -1.0, 4.0], 2);
        let mut out = vec![10.0, 20.0];
        p.subtract_weighted_points(&[0.5, -2.0], (2, 1), 1..3, &mut out);
        assert_eq!(out, [10.0 - 1.5 - 2.0, 20.0 - 2.5 + 8.0]);
        // Two rows of weights, read as a transposed 2 × 3 tile (strides (1, 2)).
        let weights = [0.5, 1.0, -2.0, 0.0, 3.0, 0.25];
        let mut out = vec![0.0; 4];
        p.subtract_weighted_points(&weights, (1, 2), 0..3, &mut out);
        let want = |r: usize, col: usize| {
            -(0..3)
                .map(|c| weights[r + 2 * c] * p.row(c)[col])
                .sum::<f64>()
        };
        assert_eq!(out, [want(0, 0), want(0, 1), want(1, 0), want(1, 1)]);
    }

    #[test]
    fn tiles_match_direct_distances() {
        check::<f32>(1e-4);
        check::<f64>(1e-12);
    }
}
