//! The example's input: a seeded simulation of cell types measured in several batches, or
//! real data read from a directory of `.npy` files or from an AnnData `.h5ad` file.

use std::path::Path;

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// Cells × dims embedding (row-major f32) with a batch and a cell-type label per cell.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The embedding, row-major.
    pub x: Vec<f32>,
    /// Dimensions per cell.
    pub dims: usize,
    /// The batch of every cell, `0..B`.
    pub batch: Vec<u32>,
    /// The cell type of every cell, when known.
    pub celltype: Option<Vec<u32>>,
}

impl Dataset {
    /// Number of cells.
    pub fn n_cells(&self) -> usize {
        self.batch.len()
    }

    /// Number of batches (the largest batch label + 1).
    pub fn n_batches(&self) -> usize {
        label_count(&self.batch)
    }

    /// The embedding centred per dimension and scaled to a mean squared value of 1.
    pub fn standardised(&self) -> Vec<f32> {
        let n = self.n_cells() as f64;
        let mut mean = vec![0.0f64; self.dims];
        for row in self.x.chunks(self.dims) {
            mean.iter_mut()
                .zip(row)
                .for_each(|(m, &v)| *m += v as f64 / n);
        }
        let centred = |i: usize, v: f32| v as f64 - mean[i % self.dims];
        let rms = (self
            .x
            .iter()
            .enumerate()
            .map(|(i, &v)| centred(i, v).powi(2))
            .sum::<f64>()
            / (n * self.dims as f64))
            .sqrt();
        self.x
            .iter()
            .enumerate()
            .map(|(i, &v)| (centred(i, v) / rms) as f32)
            .collect()
    }

    /// Reads `X_pca.npy` (float, cells × dims), `batch.npy` and `celltype.npy` (integer
    /// codes, one per cell) from `dir`, with the CLI's checks (shapes, dtypes, lengths).
    pub fn read_dir(dir: &Path) -> diffbio_io::Result<Self> {
        let input = diffbio_io::read_embedding(&dir.join("X_pca.npy"))?;
        let batch = diffbio_io::read_labels(&dir.join("batch.npy"), input.n_cells(), "batch")?;
        let celltype =
            diffbio_io::read_labels(&dir.join("celltype.npy"), input.n_cells(), "celltype")?;
        Ok(Self {
            dims: input.dims,
            x: input.values,
            batch,
            celltype: Some(celltype),
        })
    }

    /// Reads `obsm[obsm]` (float, cells × dims) and the `obs` columns `batch_key` and, if
    /// given, `label_key` of an AnnData file (see [`diffbio_io::h5ad`]).
    pub fn read_h5ad(
        path: &Path,
        obsm: &str,
        batch_key: &str,
        label_key: Option<&str>,
    ) -> diffbio_io::Result<Self> {
        let file = diffbio_io::h5ad::AnnData::open(path)?;
        let input = file.obsm(obsm)?;
        let celltype = label_key.map(|key| file.obs(key)).transpose()?;
        Ok(Self {
            dims: input.dims,
            x: input.values,
            batch: file.obs(batch_key)?.codes,
            celltype: celltype.map(|labels| labels.codes),
        })
    }
}

/// Shape of the simulated experiment.
#[derive(Debug, Clone, Copy)]
pub struct Simulation {
    /// Cells simulated.
    pub n_cells: usize,
    /// Batches, each with its own offset and scale.
    pub n_batches: usize,
    /// Cell types, in unequal proportions.
    pub n_celltypes: usize,
    /// Dimensions of the observed embedding (like the first PCs of expression).
    pub dims: usize,
    /// Dimensions in which cell types differ; the rest is noise.
    pub biological_dims: usize,
    /// Seed of the generator: the same seed gives the same data.
    pub seed: u64,
}

impl Default for Simulation {
    fn default() -> Self {
        Self {
            n_cells: 4_000,
            n_batches: 3,
            n_celltypes: 8,
            dims: 50,
            biological_dims: 10,
            seed: 7,
        }
    }
}

impl Simulation {
    /// Cell types are Gaussian clusters in a random `biological_dims`-dimensional subspace;
    /// each batch has its own cell-type proportions, a random shift of every dimension
    /// (larger than the spread within a type) and a per-dimension scaling, as different
    /// chemistries or labs produce.
    pub fn generate(&self) -> Dataset {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let std_normal = Normal::new(0.0f64, 1.0).expect("valid normal");
        let normal = |rng: &mut StdRng, sd: f64| sd * std_normal.sample(rng);
        let (d, bio) = (self.dims, self.biological_dims.min(self.dims));

        // Type centres: separated in the biological subspace, then rotated into all dims.
        let basis: Vec<f64> = (0..bio * d)
            .map(|_| normal(&mut rng, 1.0 / (d as f64).sqrt()))
            .collect();
        let centres: Vec<Vec<f64>> = (0..self.n_celltypes)
            .map(|_| {
                let z: Vec<f64> = (0..bio).map(|_| normal(&mut rng, 4.0)).collect();
                (0..d)
                    .map(|c| (0..bio).map(|b| z[b] * basis[b * d + c]).sum::<f64>() * 3.0)
                    .collect()
            })
            .collect();
        let batch_shift: Vec<Vec<f64>> = (0..self.n_batches)
            .map(|_| (0..d).map(|_| normal(&mut rng, 1.5)).collect())
            .collect();
        let batch_scale: Vec<Vec<f64>> = (0..self.n_batches)
            .map(|_| (0..d).map(|_| normal(&mut rng, 0.2).exp()).collect())
            .collect();
        // Unequal cell-type proportions, different in every batch.
        let proportions: Vec<Vec<f64>> = (0..self.n_batches)
            .map(|_| {
                let w: Vec<f64> = (0..self.n_celltypes)
                    .map(|t| (normal(&mut rng, 0.5) - 0.15 * t as f64).exp())
                    .collect();
                let total: f64 = w.iter().sum();
                w.iter().map(|v| v / total).collect()
            })
            .collect();

        let mut data = Dataset {
            x: Vec::with_capacity(self.n_cells * d),
            dims: d,
            batch: Vec::with_capacity(self.n_cells),
            celltype: None,
        };
        let mut celltype = Vec::with_capacity(self.n_cells);
        for cell in 0..self.n_cells {
            let b = cell % self.n_batches;
            let u: f64 = rng.random();
            let t = proportions[b]
                .iter()
                .scan(0.0, |acc, p| {
                    *acc += p;
                    Some(*acc)
                })
                .position(|cum| u < cum)
                .unwrap_or(self.n_celltypes - 1);
            for c in 0..d {
                let value = centres[t][c] + normal(&mut rng, 1.0);
                data.x
                    .push((value * batch_scale[b][c] + batch_shift[b][c]) as f32);
            }
            data.batch.push(b as u32);
            celltype.push(t as u32);
        }
        data.celltype = Some(celltype);
        data
    }
}

/// The number of label codes, `max + 1`: labels are codes `0..count`.
pub fn label_count(labels: &[u32]) -> usize {
    labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0)
}
