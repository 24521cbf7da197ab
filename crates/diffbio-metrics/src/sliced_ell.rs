//! A sparse matrix in sliced ELLPACK, for the products of the Lanczos eigensolver: rows of
//! similar length side by side, so that one SIMD lane follows each row.

use std::ops::Range;

use diffbio_pairwise::{dispatch, simd_level, SimdLevel, Vectorised};
use rayon::prelude::*;

use crate::sparse_graph::SparseGraph;

/// Rows per slice: one f64 lane of an AVX-512 register each.
const SLICE: usize = 8;
/// Rows sorted by length together (a multiple of [`SLICE`]): the rows of a window are one
/// range of the product, written by one task.
const WINDOW: usize = 512;

/// A square sparse matrix in sliced ELLPACK (SELL-C-σ, Kreutzer et al. 2014), C = 8 and
/// σ = 512: the rows of each window of 512 are sorted by length, then cut into slices of 8
/// whose entries are stored side by side, the k-th entry of each of the 8 rows together,
/// padded to the longest row. A product then runs one row per SIMD lane, gathering `x` at 8
/// columns at once, and adds each row's terms in their compressed-row order: every entry
/// of `A·x` is the same sequential sum, bitwise, as a row-by-row product
/// `Σ_k a_ik · x_(col k)` in `f64` (from `−0.0`, as `Iterator::sum`).
pub(crate) struct SlicedEll {
    n: usize,
    /// Per slice lane (`SLICE` per slice): the row it holds, as an offset in its window
    /// (`u32::MAX` past the last row).
    rows: Vec<u32>,
    /// Per slice lane: its row's number of entries (0 past the last row).
    lens: Vec<u32>,
    /// Per slice: where its entries start in `cols` and `values`; one more at the end.
    starts: Vec<usize>,
    /// The entries' columns, slice by slice, entry-major (padding: column 0).
    cols: Vec<u32>,
    /// The entries' values, in the order of `cols` (padding: 0).
    values: Vec<f64>,
}

impl SlicedEll {
    /// The matrix with `graph`'s pattern and `values` (in its compressed-row order).
    pub(crate) fn new(graph: &SparseGraph, values: &[f64]) -> Self {
        let n = graph.n();
        assert_eq!(values.len(), graph.cols.len(), "a value per entry");
        assert!(
            graph.cols.iter().all(|&j| (j as usize) < n),
            "columns below {n}"
        );
        let slices = n.div_ceil(SLICE);
        let mut matrix = Self {
            n,
            rows: Vec::with_capacity(slices * SLICE),
            lens: Vec::with_capacity(slices * SLICE),
            starts: vec![0],
            cols: Vec::with_capacity(graph.cols.len()),
            values: Vec::with_capacity(graph.cols.len()),
        };
        for window in (0..n).step_by(WINDOW) {
            let mut order: Vec<usize> = (window..(window + WINDOW).min(n)).collect();
            let len = |i: usize| graph.row_ptr[i + 1] - graph.row_ptr[i];
            order.sort_by_key(|&i| std::cmp::Reverse(len(i)));
            for slice in order.chunks(SLICE) {
                let width = len(slice[0]);
                for lane in 0..SLICE {
                    let row = slice.get(lane);
                    matrix
                        .rows
                        .push(row.map_or(u32::MAX, |&i| (i - window) as u32));
                    matrix.lens.push(row.map_or(0, |&i| len(i) as u32));
                }
                for k in 0..width {
                    for lane in 0..SLICE {
                        let entry = slice
                            .get(lane)
                            .and_then(|&i| (k < len(i)).then(|| graph.row_ptr[i] + k));
                        matrix.cols.push(entry.map_or(0, |e| graph.cols[e]));
                        matrix.values.push(entry.map_or(0.0, |e| values[e]));
                    }
                }
                matrix.starts.push(matrix.cols.len());
            }
        }
        matrix
    }

    /// The number of rows (and columns).
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    /// `y = A·x`, windows of rows in parallel (each entry the same on any number of
    /// threads), with gathers of `x` where [`simd_level`] allows them (AVX-512 or AVX2,
    /// [`GatherWindow`]), else the lane loop.
    pub(crate) fn product(&self, x: &[f64], y: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        match simd_level() {
            SimdLevel::Avx512 => {
                if let Some(simd) = pulp::x86::V4::try_new() {
                    return self.product_by(x, y, |s, x, y| self.window_gather(simd, s, x, y));
                }
            }
            SimdLevel::Avx2 => {
                if let Some(simd) = pulp::x86::V3::try_new() {
                    return self.product_by(x, y, |s, x, y| self.window_gather(simd, s, x, y));
                }
            }
            SimdLevel::Scalar => {}
        }
        self.product_by(x, y, |slices, x, y| self.window_lanes(slices, x, y));
    }

    /// The rows of `slices` (one window, `y` its rows) with the gathers of `simd`'s
    /// instruction set ([`GatherWindow`]).
    #[cfg(target_arch = "x86_64")]
    fn window_gather<S: GatherSlice>(
        &self,
        simd: S,
        slices: Range<usize>,
        x: &[f64],
        y: &mut [f64],
    ) {
        let window = GatherWindow {
            simd,
            matrix: self,
            slices,
            x,
            y,
        };
        simd.vectorize(window);
    }

    /// The rows of `slices` (one window, `y` its rows) by the lane loop ([`WindowProduct`]).
    fn window_lanes(&self, slices: Range<usize>, x: &[f64], y: &mut [f64]) {
        dispatch(WindowProduct {
            matrix: self,
            slices,
            x,
            y,
        });
    }

    /// Slice `s`.
    #[inline(always)]
    fn slice(&self, s: usize) -> Slice<'_> {
        let lanes = s * SLICE..(s + 1) * SLICE;
        let entries = self.starts[s]..self.starts[s + 1];
        Slice {
            rows: &self.rows[lanes.clone()],
            lens: &self.lens[lanes],
            cols: &self.cols[entries.clone()],
            values: &self.values[entries],
        }
    }

    /// `y = A·x` by `window(slices, x, rows of y)` for each window, in parallel.
    fn product_by(
        &self,
        x: &[f64],
        y: &mut [f64],
        window: impl Fn(Range<usize>, &[f64], &mut [f64]) + Sync,
    ) {
        assert!(
            x.len() == self.n && y.len() == self.n,
            "vectors of {}",
            self.n
        );
        y.par_chunks_mut(WINDOW).enumerate().for_each(|(w, rows)| {
            let first = w * WINDOW;
            window(first / SLICE..(first + rows.len()).div_ceil(SLICE), x, rows);
        });
    }
}

/// The [`SLICE`] rows of one slice of a [`SlicedEll`] (see its fields).
struct Slice<'a> {
    rows: &'a [u32],
    lens: &'a [u32],
    cols: &'a [u32],
    values: &'a [f64],
}

impl Slice<'_> {
    /// Writes each row's sum to its place in the window's rows `y`.
    #[inline(always)]
    fn store(&self, sums: &[f64; SLICE], y: &mut [f64]) {
        for (&row, &sum) in self.rows.iter().zip(sums) {
            if let Some(out) = y.get_mut(row as usize) {
                *out = sum;
            }
        }
    }
}

/// The rows of one window of [`SlicedEll::product`] with gathers of `x`: slice by slice,
/// the [`GatherSlice`] kernel of the token `S`'s instruction set.
#[cfg(target_arch = "x86_64")]
struct GatherWindow<'a, S> {
    simd: S,
    matrix: &'a SlicedEll,
    slices: Range<usize>,
    x: &'a [f64],
    /// The window's rows of the product.
    y: &'a mut [f64],
}

#[cfg(target_arch = "x86_64")]
impl<S: GatherSlice> pulp::WithSimd for GatherWindow<'_, S> {
    type Output = ();

    #[inline(always)]
    fn with_simd<T: pulp::Simd>(self, _: T) {
        let Self {
            simd,
            matrix,
            slices,
            x,
            y,
        } = self;
        for s in slices {
            let slice = matrix.slice(s);
            slice.store(&simd.row_sums(&slice, x), y);
        }
    }
}

/// One slice's 8 row sums with the gathers of an instruction set ([`GatherWindow`]).
#[cfg(target_arch = "x86_64")]
trait GatherSlice: pulp::Simd {
    /// `Σ_k a_ik · x_(col k)` of each row of `slice`, from −0.0, in its entries' order.
    fn row_sums(self, slice: &Slice<'_>, x: &[f64]) -> [f64; SLICE];
}

/// AVX-512: per step k, the k-th entries of the slice's 8 rows in one gather and one
/// masked add (a row of k entries or fewer adds nothing).
#[cfg(target_arch = "x86_64")]
impl GatherSlice for pulp::x86::V4 {
    #[inline(always)]
    fn row_sums(self, slice: &Slice<'_>, x: &[f64]) -> [f64; SLICE] {
        let (avx, avx512f, avx512vl) = (self.avx, self.avx512f, self.avx512vl);
        let (lens, cols, values) = (slice.lens, slice.cols, slice.values);
        // SAFETY (the loads): `lens` and each step's `cols[at..]`, `values[at..]` hold
        // 8 elements; the gather reads `x` at the active lanes' columns, all below n
        // (checked by `new` and `product_by`).
        let lens = unsafe { avx._mm256_loadu_si256(lens.as_ptr().cast()) };
        let mut sums = avx512f._mm512_set1_pd(-0.0);
        for at in (0..cols.len()).step_by(SLICE) {
            let step = avx._mm256_set1_epi32((at / SLICE) as i32);
            let active = avx512vl._mm256_cmpgt_epu32_mask(lens, step);
            let columns = unsafe { avx._mm256_loadu_si256(cols[at..].as_ptr().cast()) };
            let coefficients = unsafe { avx512f._mm512_loadu_pd(values[at..].as_ptr()) };
            let gathered = unsafe {
                avx512f._mm512_mask_i32gather_pd::<8>(
                    avx512f._mm512_setzero_pd(),
                    active,
                    columns,
                    x.as_ptr(),
                )
            };
            let terms = avx512f._mm512_mul_pd(coefficients, gathered);
            sums = avx512f._mm512_mask_add_pd(sums, active, sums, terms);
        }
        let mut row_sums = [0.0; SLICE];
        // SAFETY: `row_sums` holds 8 f64.
        unsafe { avx512f._mm512_storeu_pd(row_sums.as_mut_ptr(), sums) };
        row_sums
    }
}

/// Lanes of an AVX2 register of f64.
#[cfg(target_arch = "x86_64")]
const AVX2_LANES: usize = 4;

/// AVX2: the same in two gathers of 4, each row's sum updated by a blend where the row has
/// a k-th entry (so that an empty row keeps its −0.0).
#[cfg(target_arch = "x86_64")]
impl GatherSlice for pulp::x86::V3 {
    #[inline(always)]
    fn row_sums(self, slice: &Slice<'_>, x: &[f64]) -> [f64; SLICE] {
        let (sse2, avx, avx2) = (self.sse2, self.avx, self.avx2);
        let (cols, values) = (slice.cols, slice.values);
        // SAFETY (the loads): `lens` and each step's `cols[at..]`, `values[at..]` hold
        // 8 elements, 4 from each half's offset; the gathers read `x` at the active
        // lanes' columns, all below n (checked by `new` and `product_by`). Lengths are
        // below 2³¹, so that the signed comparison orders them.
        let lens: [_; 2] = std::array::from_fn(|h| unsafe {
            sse2._mm_loadu_si128(slice.lens[h * AVX2_LANES..].as_ptr().cast())
        });
        let mut sums = [avx._mm256_set1_pd(-0.0); 2];
        for at in (0..cols.len()).step_by(SLICE) {
            let step = sse2._mm_set1_epi32((at / SLICE) as i32);
            for (h, (sum, &lens)) in sums.iter_mut().zip(&lens).enumerate() {
                let half = at + h * AVX2_LANES;
                let active = sse2._mm_cmpgt_epi32(lens, step);
                let active = avx._mm256_castsi256_pd(avx2._mm256_cvtepi32_epi64(active));
                let columns = unsafe { sse2._mm_loadu_si128(cols[half..].as_ptr().cast()) };
                let coefficients = unsafe { avx._mm256_loadu_pd(values[half..].as_ptr()) };
                let gathered = unsafe {
                    avx2._mm256_mask_i32gather_pd::<8>(
                        avx._mm256_setzero_pd(),
                        x.as_ptr(),
                        columns,
                        active,
                    )
                };
                let added = avx._mm256_add_pd(*sum, avx._mm256_mul_pd(coefficients, gathered));
                *sum = avx._mm256_blendv_pd(*sum, added, active);
            }
        }
        let mut row_sums = [0.0; SLICE];
        for (h, &sum) in sums.iter().enumerate() {
            // SAFETY: `row_sums` holds 8 f64, 4 from each half's offset.
            unsafe { avx._mm256_storeu_pd(row_sums[h * AVX2_LANES..].as_mut_ptr(), sum) };
        }
        row_sums
    }
}

/// The rows of one window of [`SlicedEll::product`] where no gathers are used, compiled for
/// the CPU's SIMD width: the same sums, lane by lane.
struct WindowProduct<'a> {
    matrix: &'a SlicedEll,
    slices: Range<usize>,
    x: &'a [f64],
    y: &'a mut [f64],
}

impl Vectorised for WindowProduct<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self {
            matrix,
            slices,
            x,
            y,
        } = self;
        for s in slices {
            let slice = matrix.slice(s);
            let mut sums = [-0.0f64; SLICE];
            let steps = slice
                .cols
                .chunks_exact(SLICE)
                .zip(slice.values.chunks_exact(SLICE));
            for (k, (cols, values)) in steps.enumerate() {
                for lane in 0..SLICE {
                    if (k as u32) < slice.lens[lane] {
                        sums[lane] += values[lane] * x[cols[lane] as usize];
                    }
                }
            }
            slice.store(&sums, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use std::ops::Range;

    use super::{SlicedEll, WINDOW};
    use crate::sparse_graph::SparseGraph;

    /// One window's rows of a product, by one of the kernels.
    type WindowKernel<'a> = dyn Fn(Range<usize>, &[f64], &mut [f64]) + Sync + 'a;

    /// A random pattern with rows of 0 to 40 entries, columns in any order.
    fn random_matrix(n: usize, seed: u64) -> (SparseGraph, Vec<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut graph = SparseGraph {
            row_ptr: vec![0],
            cols: Vec::new(),
            weights: Vec::new(),
        };
        for _ in 0..n {
            let len = if rng.random::<f64>() < 0.05 {
                0
            } else {
                rng.random_range(1..=40)
            };
            for _ in 0..len {
                graph.cols.push(rng.random_range(0..n as u32));
                graph.weights.push(1.0);
            }
            graph.row_ptr.push(graph.cols.len());
        }
        let values = (0..graph.cols.len())
            .map(|_| (rng.random::<f64>() - 0.5) * 10f64.powi(rng.random_range(-8..8)))
            .collect();
        (graph, values)
    }

    #[test]
    fn products_are_the_row_by_row_sums_bitwise() {
        for (n, seed) in [(1, 1), (7, 2), (300, 3), (WINDOW * 2 + 13, 4)] {
            let (graph, values) = random_matrix(n, seed);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
            let x: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
            let want: Vec<u64> = (0..n)
                .map(|i| {
                    let span = graph.row_ptr[i]..graph.row_ptr[i + 1];
                    graph.cols[span.clone()]
                        .iter()
                        .zip(&values[span])
                        .map(|(&j, &a)| a * x[j as usize])
                        .sum::<f64>()
                        .to_bits()
                })
                .collect();
            let matrix = SlicedEll::new(&graph, &values);
            // The product, and each kernel the CPU has, whatever the level (CI runs the
            // suite again with the lane loop compiled for AVX2 and the baseline).
            let run = |window: &WindowKernel| {
                let mut y = vec![f64::NAN; n];
                matrix.product_by(&x, &mut y, window);
                y
            };
            let mut y = vec![f64::NAN; n];
            matrix.product(&x, &mut y);
            let mut products = vec![("product", y)];
            products.push(("lane loop", run(&|s, x, y| matrix.window_lanes(s, x, y))));
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(simd) = pulp::x86::V4::try_new() {
                    let y = run(&|s, x, y| matrix.window_gather(simd, s, x, y));
                    products.push(("AVX-512 gathers", y));
                }
                if let Some(simd) = pulp::x86::V3::try_new() {
                    let y = run(&|s, x, y| matrix.window_gather(simd, s, x, y));
                    products.push(("AVX2 gathers", y));
                }
            }
            for (what, y) in products {
                let got: Vec<u64> = y.iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "n = {n}: {what}");
            }
        }
    }
}
