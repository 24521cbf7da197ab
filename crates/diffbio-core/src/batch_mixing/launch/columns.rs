//! The columns of the tiled kernels: the cells in batch order, each batch padded to whole
//! tiles (built on the host from the labels the checks read), and the column means and
//! centred norms (computed on the device).

use super::super::KernelShared;
use super::plans::{mean_plan, norms_plan};
use super::shared_memory::tile_shape;
use crate::launch::{Buffers, KernelDevice, KernelInput, KernelReal};

/// The columns of the tiled forward in batch order, each batch's run padded to whole tiles:
/// `order[p]` is the input row at position p (`u32::MAX` for padding), `tile_batch[t]` the
/// one batch of tile t. Stable: a batch's rows keep their input order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ColumnTiles {
    pub order: Vec<u32>,
    pub tile_batch: Vec<u32>,
}

impl ColumnTiles {
    /// For labels in `0..n_batches` and tiles of `cols` columns.
    pub(crate) fn new(labels: &[u32], n_batches: usize, cols: usize) -> Self {
        let mut counts = vec![0usize; n_batches];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        let tiles: Vec<usize> = counts.iter().map(|c| c.div_ceil(cols)).collect();
        let mut next: Vec<usize> = tiles
            .iter()
            .scan(0, |start, &t| {
                let here = *start;
                *start += t * cols;
                Some(here)
            })
            .collect();
        let mut order = vec![u32::MAX; tiles.iter().sum::<usize>() * cols];
        for (i, &l) in labels.iter().enumerate() {
            order[next[l as usize]] = i as u32;
            next[l as usize] += 1;
        }
        let tile_batch = tiles
            .iter()
            .enumerate()
            .flat_map(|(b, &t)| std::iter::repeat_n(b as u32, t))
            .collect();
        Self { order, tile_batch }
    }
}

/// What both tiled kernels read besides x: the columns in batch order (`order`,
/// `tile_batch`: [`ColumnTiles`]), the column means and the centred norms. The forward
/// builds them and leaves them in its [`KernelShared`]; the backward of the same op takes
/// them from there.
pub(super) struct TiledColumns<D: KernelDevice, T: KernelReal> {
    order: D::Buffer<u32>,
    tile_batch: D::Buffer<u32>,
    pub(super) n_tiles: usize,
    mean: D::Buffer<f64>,
    norms: D::Buffer<T>,
}

impl<D: KernelDevice, T: KernelReal> TiledColumns<D, T> {
    /// Those `shared` holds when they are of this device and float type, else new ones.
    pub(super) fn cached_or_new<X: KernelInput<Real = T>>(
        shared: &KernelShared,
        dev: &D,
        x: &D::Input<'_, X>,
        dims: (usize, usize),
        n_batches: usize,
    ) -> candle_core::Result<Box<Self>> {
        let cached = shared
            .columns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match cached.map(|columns| columns.downcast::<Self>()) {
            Some(Ok(columns)) => Ok(columns),
            _ => Ok(Box::new(Self::new(
                dev,
                x,
                &shared.labels,
                dims,
                n_batches,
            )?)),
        }
    }

    /// The buffers both tiled kernels read, by their parameters' names: `x`, and these
    /// columns.
    pub(super) fn buffers<'a, X: KernelInput<Real = T>>(
        &'a self,
        x: &'a D::Input<'_, X>,
    ) -> Buffers<D::Arg<'a>> {
        vec![
            ("x", D::read_input_from(x, 0)),
            ("mean", D::read_from(&self.mean, 0)),
            ("norms", D::read_from(&self.norms, 0)),
            ("order", D::read_from(&self.order, 0)),
            ("tile_batch", D::read_from(&self.tile_batch, 0)),
        ]
    }

    /// Leaves them in `shared` for the next launch sequence of the op.
    pub(super) fn keep(self: Box<Self>, shared: &KernelShared) {
        *shared.columns.lock().unwrap_or_else(|e| e.into_inner()) = Some(self);
    }

    /// The batch order of the labels (on the host, where the checks read them), then the
    /// column means (`knn_entropy_mean_*`) and the centred norms (`knn_entropy_norms_*`) on
    /// the device.
    fn new<X: KernelInput<Real = T>>(
        dev: &D,
        x: &D::Input<'_, X>,
        host_labels: &[u32],
        dims: (usize, usize),
        n_batches: usize,
    ) -> candle_core::Result<Self> {
        let (n, d) = dims;
        let cols = ColumnTiles::new(host_labels, n_batches, tile_shape::<T>().1);
        let mut mean = dev.alloc_output::<f64>(d)?;
        let mut norms = dev.alloc_output::<T>(n)?;
        let plan = mean_plan::<X, _>(
            dims,
            vec![
                ("x", D::read_input_from(x, 0)),
                ("mean", D::write_from(&mut mean, 0)),
            ],
        )?;
        // SAFETY: x holds n·d elements, mean d.
        unsafe { dev.launch(plan) }?;
        let plan = norms_plan::<X, _>(
            dims,
            vec![
                ("x", D::read_input_from(x, 0)),
                ("mean", D::read_from(&mean, 0)),
                ("norms", D::write_from(&mut norms, 0)),
            ],
        )?;
        // SAFETY: x holds n·d elements, mean d, norms n.
        unsafe { dev.launch(plan) }?;
        Ok(Self {
            order: dev.upload(&cols.order)?,
            tile_batch: dev.upload(&cols.tile_batch)?,
            n_tiles: cols.tile_batch.len(),
            mean,
            norms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batch by batch, each run padded to whole tiles, a batch's rows in input order.
    #[test]
    fn column_tiles_pad_each_batch_to_whole_tiles() {
        let tiles = ColumnTiles::new(&[1, 0, 1, 1, 2, 1, 1], 4, 2);
        let pad = u32::MAX;
        assert_eq!(tiles.order, [1, pad, 0, 2, 3, 5, 6, pad, 4, pad]);
        assert_eq!(tiles.tile_batch, [0, 1, 1, 1, 2]);
    }
}
