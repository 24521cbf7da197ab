//! Principal component regression on the batch (Büttner et al. 2019), scib-metrics'
//! `principal_component_regression(categorical=True)` and `pcr_comparison`.

use crate::embedding::{Embedding, EmbeddingValue};
use crate::error::{Error, Result};
use crate::labels::{at_least_two, dense, one_per_cell, Dense};

/// Variance of a row-major `[n × dims]` embedding explained by its batch: scib-metrics
/// regresses every principal component on the one-hot batch and sums the `R²`, each
/// weighted by its component's variance, `Σ_j R²_j λ_j / Σ_j λ_j`. With all components kept
/// that is rotation-invariant and equals the between-batch share of the total scatter,
///
/// `pcr = Σ_b n_b |x̄_b − x̄|² / Σ_i |x_i − x̄|²`,
///
/// so it is computed in O(n·d) without a decomposition (scib's float32 SVD agrees to ~1e-7;
/// a zero-variance component, NaN there, simply adds nothing here). Errors: shapes,
/// non-finite values, a constant embedding.
///
/// ```
/// use diffbio_metrics::pcr;
/// // d = 1: batch 0 at 0 and 2, batch 1 at 10 and 12: between-batch scatter 100 of 104
/// let r = pcr(&[0.0f32, 2.0, 10.0, 12.0], 1, &[0, 0, 1, 1]).unwrap();
/// assert!((r - 100.0 / 104.0).abs() < 1e-12);
/// ```
pub fn pcr<T: EmbeddingValue>(embedding: &[T], dims: usize, batches: &[u32]) -> Result<f64> {
    pcr_of(Embedding::new(embedding, dims)?, batches)
}

/// [`pcr`] of a checked embedding.
fn pcr_of<T: EmbeddingValue>(embedding: Embedding<'_, T>, batches: &[u32]) -> Result<f64> {
    let (n, dims) = (embedding.n(), embedding.dims());
    one_per_cell(batches, n, "batches")?;
    let Dense {
        codes,
        count: n_batches,
    } = dense(batches);
    let batches: &[u32] = &codes;
    let mut sums = vec![0.0f64; n_batches * dims];
    let mut counts = vec![0usize; n_batches];
    let mut mean = vec![0.0f64; dims];
    for (row, &b) in embedding.rows().zip(batches) {
        counts[b as usize] += 1;
        let batch_sum = &mut sums[b as usize * dims..(b as usize + 1) * dims];
        for ((s, m), &v) in batch_sum.iter_mut().zip(&mut mean).zip(row) {
            *s += v.into();
            *m += v.into();
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let total: f64 = embedding
        .rows()
        .map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, m)| (v.into() - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    if total == 0.0 {
        return Err(Error::ZeroVariance { input: "embedding" });
    }
    let between: f64 = (0..n_batches)
        .filter(|&b| counts[b] > 0)
        .map(|b| {
            let size = counts[b] as f64;
            sums[b * dims..(b + 1) * dims]
                .iter()
                .zip(&mean)
                .map(|(s, m)| size * (s / size - m).powi(2))
                .sum::<f64>()
        })
        .sum();
    Ok((between / total).clamp(0.0, 1.0))
}

/// scib-metrics' `pcr_comparison`: the relative drop of [`pcr`] from the pre-integration
/// embedding (e.g. the PCA the integration started from) to the integrated one, clipped
/// at 0: `max(0, (pcr_pre − pcr_post) / pcr_pre)`; 1 = no batch variance left. The two
/// embeddings may differ in width. Errors: as [`pcr`], fewer than two batches, and a
/// pre-integration embedding with no batch variance (the ratio is undefined).
///
/// ```
/// use diffbio_metrics::pcr_comparison;
/// let batches = [0, 0, 1, 1];
/// let before = [0.0f32, 2.0, 10.0, 12.0]; // d = 1: batches apart, pcr 100/104
/// let after = [0.0f64, 10.0, 2.0, 12.0]; // batch means 5 and 7: pcr 4/104
/// let score = pcr_comparison(&before, 1, &after, 1, &batches).unwrap();
/// assert!((score - 0.96).abs() < 1e-12);
/// assert_eq!(pcr_comparison(&before, 1, &before, 1, &batches).unwrap(), 0.0);
/// ```
pub fn pcr_comparison<T: EmbeddingValue, U: EmbeddingValue>(
    pre: &[T],
    pre_dims: usize,
    post: &[U],
    post_dims: usize,
    batches: &[u32],
) -> Result<f64> {
    let pre = Embedding::new(pre, pre_dims)?;
    pcr_comparison_of(pre, Embedding::new(post, post_dims)?, batches)
}

/// [`pcr_comparison`] of checked embeddings.
pub(crate) fn pcr_comparison_of<T: EmbeddingValue, U: EmbeddingValue>(
    pre: Embedding<'_, T>,
    post: Embedding<'_, U>,
    batches: &[u32],
) -> Result<f64> {
    at_least_two(batches, "batches")?;
    let before = pcr_of(pre, batches)?;
    let after = pcr_of(post, batches)?;
    if before == 0.0 {
        return Err(Error::ZeroVariance {
            input: "batch means of the pre-integration embedding",
        });
    }
    Ok(((before - after) / before).max(0.0))
}
