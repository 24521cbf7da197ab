//! The all-pairs engine shared by diffbio's losses (`diffbio-core`) and metrics
//! (`diffbio-metrics`), generic over f32 and f64:
//!
//! - [`Points`]: tiles of squared Euclidean distances as matrix products (`gemm`);
//! - [`TopK`]: the exact k smallest (distance, index) pairs, ties by the smaller index,
//!   [`BlockTopK`], those of a block of points, and [`NearestPoints`], the pass that fills them;
//! - [`visit_pairs`]: every pair of points once, by tiles of two blocks ([`PairVisitor`]),
//!   in parallel rounds that make results independent of the thread count, less the tiles
//!   a visitor declines because the blocks' bounding boxes are too far apart;
//! - [`dispatch`] / [`Vectorised`]: loops compiled for the CPU's SIMD width
//!   ([`simd_level`], narrowed by `DIFFBIO_SIMD`), with
//!   denormals flushed ([`FlushDenormals`]), and the [`lane_sum`] / [`lane_dot`] and
//!   [`FastExp`] that vectorise inside them;
//! - [`Real`]: the float trait all of it is generic over.
//!
//! It has no dependency beyond `gemm`, `pulp` and `rayon`, so the losses need none of the metrics'
//! linear algebra.
#![warn(missing_docs)]

mod bounds;
mod denormals;
mod fast_exp;
mod pairs;
mod real;
mod simd;
mod tile;
mod top_k;

pub use denormals::FlushDenormals;
pub use fast_exp::FastExp;
pub use pairs::{parts, tile_count, visit_pairs, PairVisitor, Tile, BLOCK};
pub use real::Real;
pub use simd::{
    dispatch, for_each_lane, lane_dot, lane_sum, simd_level, LaneSums, SimdLevel, Vectorised,
    LANES, SIMD_VARIABLE,
};
pub use tile::Points;
pub use top_k::{any_at_most, by_distance_then_index, BlockTopK, NearestPoints, TopK};
