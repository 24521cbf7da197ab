//! Lower bounds on the tiled distances between two blocks of points, from the blocks'
//! bounding boxes: what lets a pass skip the tiles that cannot hold a near pair.

use std::ops::Range;

use crate::{Points, Real};

/// Every block's bounding box and the largest rounding bound of its points' tiled
/// distances ([`Points::tile_error_bound`]).
pub(crate) struct BlockBounds {
    dims: usize,
    /// Per block, the smallest and the largest value of each dimension (`[blocks × dims]`).
    lower: Vec<f64>,
    upper: Vec<f64>,
    error: Vec<f64>,
}

impl BlockBounds {
    /// The bounds of the blocks `blocks` of `points` (consecutive position ranges).
    pub(crate) fn new<T: Real>(
        points: &Points<T>,
        blocks: impl Iterator<Item = Range<usize>>,
    ) -> Self {
        let dims = points.dims();
        let mut bounds = Self {
            dims,
            lower: Vec::new(),
            upper: Vec::new(),
            error: Vec::new(),
        };
        for positions in blocks {
            let (mut lower, mut upper) = (vec![f64::INFINITY; dims], vec![f64::NEG_INFINITY; dims]);
            let mut error = 0.0f64;
            for p in positions {
                for ((l, u), &v) in lower.iter_mut().zip(&mut upper).zip(points.row(p)) {
                    *l = l.min(v.to_f64());
                    *u = u.max(v.to_f64());
                }
                // NaN (a NaN coordinate's norm) stays NaN: such a block excludes nothing.
                let bound = points.tile_error_bound(p);
                error = if error.is_nan() || bound.is_nan() {
                    f64::NAN
                } else {
                    error.max(bound)
                };
            }
            bounds.lower.extend(lower);
            bounds.upper.extend(upper);
            bounds.error.push(error);
        }
        bounds
    }

    /// A lower bound on every tiled squared distance between a point of block `a` and one
    /// of block `b` ([`Points::tile`]'s values): the squared distance between their boxes,
    /// `S = Σ_k max(lo_bk − hi_ak, lo_ak − hi_bk, 0)²`, less the blocks' largest rounding
    /// bound. `S` is at most the exact squared distance of any such pair; summed in f64 it
    /// is over by at most a relative `(d + 2)·2⁻⁵³`, so it is scaled down by four times that.
    /// May be negative, or NaN for a block with a NaN coordinate: then it excludes nothing.
    pub(crate) fn floor(&self, a: usize, b: usize) -> f64 {
        let d = self.dims;
        let box_of = |block: usize| {
            let span = block * d..(block + 1) * d;
            (&self.lower[span.clone()], &self.upper[span])
        };
        let ((lower_a, upper_a), (lower_b, upper_b)) = (box_of(a), box_of(b));
        let gaps = lower_a
            .iter()
            .zip(upper_a)
            .zip(lower_b.iter().zip(upper_b))
            .map(|((&la, &ua), (&lb, &ub))| (lb - ua).max(la - ub).max(0.0));
        let sum: f64 = gaps.map(|g| g * g).sum();
        let rounding = 4.0 * (d + 2) as f64 * f64::EPSILON / 2.0;
        sum * (1.0 - rounding) - self.error[a].max(self.error[b])
    }
}

#[cfg(test)]
mod tests {
    use super::BlockBounds;
    use crate::Points;

    #[test]
    fn the_floor_is_below_every_tiled_distance_and_tight_for_far_blocks() {
        // Three clusters along a line, 40 points each, in 5 dimensions; blocks of 40.
        let dims = 5;
        let values: Vec<f32> = (0..120 * dims)
            .map(|v| {
                let (point, k) = (v / dims, v % dims);
                let jitter = ((v * 7919) % 101) as f32 / 101.0 - 0.5;
                if k == 0 {
                    (point / 40) as f32 * 10.0 + jitter
                } else {
                    jitter
                }
            })
            .collect();
        let points = Points::new(values, dims);
        let blocks = |b: usize| b * 40..(b + 1) * 40;
        let bounds = BlockBounds::new(&points, (0..3).map(blocks));
        let mut tile = vec![0.0f32; 40 * 40];
        for a in 0..3 {
            for b in 0..3 {
                points.tile(blocks(a), blocks(b), &mut tile);
                let floor = bounds.floor(a, b);
                let nearest = tile.iter().fold(f32::INFINITY, |m, &v| m.min(v));
                assert!(
                    floor <= f64::from(nearest),
                    "blocks {a}, {b}: {floor} > {nearest}"
                );
                let apart = a.abs_diff(b) as f64 * 10.0 - 1.0; // the boxes' gap along dim 0
                if a == b {
                    assert!(floor <= 0.0);
                } else {
                    assert!(floor >= apart * apart * 0.99, "blocks {a}, {b}: {floor}");
                }
            }
        }
    }
}
