//! The embedding every metric reads: validated once, then passed around as a view.

use crate::error::{Error, Result};

/// The element types of an embedding: any float (or integer) that converts to f64 exactly,
/// e.g. `f32` and `f64`.
pub trait EmbeddingValue: Copy + Into<f64> + Send + Sync {}

impl<T: Copy + Into<f64> + Send + Sync> EmbeddingValue for T {}

/// The most cells a neighbour graph indexes ([`crate::KnnGraph`]'s indices are `u32`).
const MAX_CELLS: u64 = 1 << 32;

/// `n ≤ 2³²`, so that every cell has a 32-bit index.
pub(crate) fn check_cell_count(input: &'static str, n: usize) -> Result<()> {
    if n as u64 > MAX_CELLS {
        return Err(Error::TooManyCells { input, n });
    }
    Ok(())
}

/// A row-major `[n × dims]` embedding with `n ≥ 1`, `dims ≥ 1` and every value finite:
/// checked once by [`Embedding::new`], so the metrics that share it (as
/// [`crate::benchmark()`] does) never scan it again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedding<'a, T> {
    values: &'a [T],
    dims: usize,
}

impl<'a, T: EmbeddingValue> Embedding<'a, T> {
    /// Errors: a length that is not a positive multiple of `dims` (or `dims = 0`); more
    /// than 2³² cells; a NaN or infinite value (its index is reported).
    pub(crate) fn new(values: &'a [T], dims: usize) -> Result<Self> {
        if dims == 0 || values.is_empty() || values.len() % dims != 0 {
            return Err(Error::Shape {
                input: "embedding",
                len: values.len(),
                dims,
            });
        }
        check_cell_count("embedding", values.len() / dims)?;
        if let Some(index) = values.iter().position(|&v| !v.into().is_finite()) {
            return Err(Error::NaN {
                input: "embedding",
                index,
            });
        }
        Ok(Self { values, dims })
    }

    /// Rows of an embedding already checked (a subset of a valid one's rows).
    pub(crate) fn of_checked(values: &'a [T], dims: usize) -> Self {
        debug_assert!(dims > 0 && !values.is_empty() && values.len() % dims == 0);
        Self { values, dims }
    }

    /// Number of cells.
    pub(crate) fn n(&self) -> usize {
        self.values.len() / self.dims
    }

    /// Dimensions per cell.
    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    /// The rows, one slice each.
    pub(crate) fn rows(&self) -> std::slice::ChunksExact<'a, T> {
        self.values.chunks_exact(self.dims)
    }

    /// Cell `i`.
    pub(crate) fn row(&self, i: usize) -> &'a [T] {
        &self.values[i * self.dims..(i + 1) * self.dims]
    }

    /// The rows of `cells`, copied in that order.
    pub(crate) fn gather(&self, cells: &[usize]) -> Vec<T> {
        cells
            .iter()
            .flat_map(|&i| self.row(i).iter().copied())
            .collect()
    }

    /// The embedding minus its column means, in f64, and the means.
    pub(crate) fn centred(&self) -> (Vec<f64>, Vec<f64>) {
        let mut mean = vec![0.0f64; self.dims];
        for row in self.rows() {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v.into());
        }
        mean.iter_mut().for_each(|m| *m /= self.n() as f64);
        let values = self
            .rows()
            .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v.into() - m))
            .collect();
        (values, mean)
    }
}

#[cfg(test)]
mod tests {
    use super::{check_cell_count, MAX_CELLS};
    use crate::error::Error;

    #[test]
    fn cells_beyond_32_bit_indices_are_refused() {
        let most = MAX_CELLS as usize;
        assert!(check_cell_count("embedding", most).is_ok());
        assert!(matches!(
            check_cell_count("graph", most + 1),
            Err(Error::TooManyCells { input: "graph", n }) if n == most + 1
        ));
    }
}
