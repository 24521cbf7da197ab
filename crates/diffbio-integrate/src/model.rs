//! The encoder being trained, its losses and one optimisation step.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{linear, AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use diffbio_core::dist::{sum_over_ranks, Communicator};
use diffbio_core::{BatchMixingConfig, BatchMixingLoss};

/// Hyper-parameters of the integration model and its training.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    /// Width of the latent code.
    pub latent_dims: usize,
    /// Width of the encoder's and decoder's hidden layers.
    pub hidden_dims: usize,
    /// Weight of the batch-mixing loss against the reconstruction loss.
    pub mixing_weight: f64,
    /// The batch-mixing loss on the latent code.
    pub mixing: BatchMixingConfig,
    /// AdamW's learning rate.
    pub learning_rate: f64,
    /// Training steps.
    pub steps: usize,
    /// Cells per step (all of them when the data is smaller).
    pub batch_size: usize,
    /// Seed of the initial parameters and of the minibatches.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            latent_dims: 16,
            hidden_dims: 128,
            mixing_weight: 0.2,
            mixing: BatchMixingConfig {
                n_neighbors: 30,
                n_batches: 3,
                temperature: 1.0,
            },
            learning_rate: 2e-3,
            steps: 400,
            batch_size: 1024,
            seed: 0,
        }
    }
}

/// Two-layer perceptron with a GELU between the layers.
struct Mlp {
    hidden: Linear,
    output: Linear,
}

impl Mlp {
    fn new(vb: VarBuilder, input: usize, hidden: usize, output: usize) -> Result<Self> {
        Ok(Self {
            hidden: linear(input, hidden, vb.pp("hidden"))?,
            output: linear(hidden, output, vb.pp("output"))?,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.output.forward(&self.hidden.forward(x)?.gelu()?)
    }
}

/// An encoder from the input embedding to a latent space of fixed overall scale, trained so
/// that batches mix there, and a decoder that reconstructs the input from the latent code
/// and the batch label. The decoder is told the batch, so the latent code need not carry
/// it; reconstruction keeps the biology in the latent code, so it cannot collapse.
pub struct Integrator {
    encoder: Mlp,
    decoder: Mlp,
    n_batches: usize,
}

/// The terms of one evaluation of the training objective.
pub struct Losses {
    /// The objective (a scalar tensor, to differentiate).
    pub total: Tensor,
    /// The batch-mixing term's value.
    pub mixing: f32,
    /// The reconstruction term's value.
    pub reconstruction: f32,
}

impl Integrator {
    /// An encoder and a batch-conditioned decoder with parameters in `vb`.
    pub fn new(
        vb: VarBuilder,
        input_dims: usize,
        n_batches: usize,
        config: &TrainConfig,
    ) -> Result<Self> {
        let (hidden, latent) = (config.hidden_dims, config.latent_dims);
        Ok(Self {
            encoder: Mlp::new(vb.pp("encoder"), input_dims, hidden, latent)?,
            decoder: Mlp::new(vb.pp("decoder"), latent + n_batches, hidden, input_dims)?,
            n_batches,
        })
    }

    /// The latent code of `x` (`[cells, input_dims]`), centred and scaled so that the mean
    /// squared norm per dimension is 1: distances, and with them the mixing loss's
    /// temperature, keep one meaning however the encoder's weights grow or shrink.
    pub fn embed(&self, x: &Tensor) -> Result<Tensor> {
        self.embed_in(x, &Batch::whole(x)?)
    }

    /// [`Integrator::embed`] with the batch's statistics taken over `batch`.
    fn embed_in(&self, x: &Tensor, batch: &Batch<'_>) -> Result<Tensor> {
        let h = self.encoder.forward(x)?;
        let mean = batch.mean(&h.sum_keepdim(0)?, batch.cells)?;
        let centred = h.broadcast_sub(&mean)?;
        let spread = batch.mean(&centred.sqr()?.sum_all()?, batch.cells * h.dim(1)?)?;
        let scale = (spread + 1e-8)?.sqrt()?;
        centred.broadcast_div(&scale)
    }

    /// Reconstruction of `x` from its latent code `z` and the batch labels.
    fn reconstruct(&self, z: &Tensor, batch: &Tensor) -> Result<Tensor> {
        let one_hot = one_hot(batch, self.n_batches, z.dtype())?;
        self.decoder
            .forward(&Tensor::cat(&[z, &one_hot], D::Minus1)?)
    }

    /// The objective's terms on cells `x` with their batches.
    pub fn losses(
        &self,
        x: &Tensor,
        batch: &Tensor,
        mixing: &BatchMixingLoss,
        weight: f64,
    ) -> Result<Losses> {
        self.losses_in(x, batch, mixing, weight, &Batch::whole(x)?)
    }

    /// The objective on this rank's shard `x` of a minibatch of `cells` cells sharded over
    /// the ranks of `comm`: `total` is this rank's share (the reconstruction error of its
    /// cells over the whole batch's count, plus the sharded mixing loss), so that the
    /// parameter gradients summed over the ranks are the single-process ones; `mixing`
    /// and `reconstruction` are the whole minibatch's values.
    pub fn losses_sharded<C>(
        &self,
        comm: &C,
        (x, batch): (&Tensor, &Tensor),
        cells: usize,
        mixing: &BatchMixingLoss,
        weight: f64,
    ) -> Result<Losses>
    where
        C: Communicator + Clone + Send + Sync + 'static,
    {
        let shards = Batch {
            cells,
            sum: &|t: &Tensor| Ok(sum_over_ranks(comm, t)?),
            mixing: Some(&|z: &Tensor, batch: &Tensor| Ok(mixing.forward_sharded(comm, z, batch)?)),
        };
        let losses = self.losses_in(x, batch, mixing, weight, &shards)?;
        let reconstruction = Tensor::new(losses.reconstruction, x.device())?;
        Ok(Losses {
            reconstruction: comm.all_reduce_sum(&reconstruction)?.to_scalar()?,
            ..losses
        })
    }

    /// The objective's terms with the batch's statistics and the mixing loss over
    /// `batch`; `reconstruction` is `x`'s share of the batch's.
    fn losses_in(
        &self,
        x: &Tensor,
        labels: &Tensor,
        mixing: &BatchMixingLoss,
        weight: f64,
        batch: &Batch<'_>,
    ) -> Result<Losses> {
        let z = self.embed_in(x, batch)?;
        let squared_error = (self.reconstruct(&z, labels)? - x)?.sqr()?.sum_all()?;
        let reconstruction = (squared_error / (batch.cells * x.dim(1)?) as f64)?;
        let mixing_loss = match batch.mixing {
            None => mixing.forward(&z, labels)?,
            Some(sharded) => sharded(&z, labels)?,
        };
        let total = (&reconstruction + (&mixing_loss * weight)?)?;
        Ok(Losses {
            mixing: mixing_loss.to_scalar()?,
            reconstruction: reconstruction.to_scalar()?,
            total,
        })
    }
}

/// A loss of `(latent code, batch labels)`.
type LossFn<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Result<Tensor>;

/// The minibatch a forward pass sees: all of it on one device, or the whole of a
/// minibatch sharded over ranks, its sums and its mixing loss then taken over the ranks.
struct Batch<'a> {
    /// Cells in the whole minibatch.
    cells: usize,
    /// The sum of a per-shard partial sum over the minibatch.
    sum: &'a dyn Fn(&Tensor) -> Result<Tensor>,
    /// The mixing loss over the minibatch, when it is sharded.
    mixing: Option<LossFn<'a>>,
}

impl Batch<'_> {
    /// All of the minibatch is `x`.
    fn whole(x: &Tensor) -> Result<Batch<'static>> {
        Ok(Batch {
            cells: x.dim(0)?,
            sum: &|t: &Tensor| Ok(t.clone()),
            mixing: None,
        })
    }

    /// A partial sum over the minibatch, divided by `count`.
    fn mean(&self, partial: &Tensor, count: usize) -> Result<Tensor> {
        (self.sum)(partial)? / count as f64
    }
}

/// `[n]` integer labels to a `[n, classes]` one-hot matrix of `dtype`.
fn one_hot(labels: &Tensor, classes: usize, dtype: DType) -> Result<Tensor> {
    let classes_row = Tensor::arange(0u32, classes as u32, labels.device())?.unsqueeze(0)?;
    labels
        .to_dtype(DType::U32)?
        .unsqueeze(1)?
        .broadcast_eq(&classes_row)?
        .to_dtype(dtype)
}

/// The model, its optimiser and the data on the training device.
pub struct Trainer {
    /// The model being trained.
    pub model: Integrator,
    varmap: VarMap,
    optimizer: AdamW,
    mixing: BatchMixingLoss,
    config: TrainConfig,
    x: Tensor,
    batch: Tensor,
    order: Vec<u32>,
    cursor: usize,
    rng: rand::rngs::StdRng,
}

impl Trainer {
    /// `x`: `[cells, dims]` f32 (already scaled to unit overall variance), `batch`: `[cells]` u32.
    pub fn new(
        x: Tensor,
        batch: Tensor,
        n_batches: usize,
        config: TrainConfig,
    ) -> diffbio_core::Result<Self> {
        use rand::SeedableRng;
        let device = x.device().clone();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let model = Integrator::new(vb, x.dim(1)?, n_batches, &config)?;
        seed_parameters(&varmap, config.seed, &device)?;
        let optimizer = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: 1e-4,
                ..Default::default()
            },
        )?;
        let mixing = BatchMixingLoss::new(BatchMixingConfig {
            n_batches,
            ..config.mixing
        })?;
        let n = x.dim(0)?;
        Ok(Self {
            model,
            varmap,
            optimizer,
            mixing,
            config,
            x,
            batch,
            order: (0..n as u32).collect(),
            cursor: n,
            rng: rand::rngs::StdRng::seed_from_u64(config.seed),
        })
    }

    /// Indices of the next mini-batch: consecutive slices of a reshuffled permutation.
    fn next_batch(&mut self) -> Vec<u32> {
        use rand::seq::SliceRandom;
        let size = self.config.batch_size.min(self.order.len());
        if self.cursor + size > self.order.len() {
            self.order.shuffle(&mut self.rng);
            self.cursor = 0;
        }
        self.cursor += size;
        self.order[self.cursor - size..self.cursor].to_vec()
    }

    /// One AdamW step on a mini-batch; returns the losses before the step.
    pub fn step(&mut self) -> diffbio_core::Result<Losses> {
        let cells = self.next_batch();
        let size = cells.len();
        let index = Tensor::from_vec(cells, size, self.x.device())?;
        let x = self.x.index_select(&index, 0)?;
        let batch = self.batch.index_select(&index, 0)?;
        let losses = self
            .model
            .losses(&x, &batch, &self.mixing, self.config.mixing_weight)?;
        self.optimizer.backward_step(&losses.total)?;
        Ok(losses)
    }

    /// One data-parallel AdamW step: every rank draws the same minibatch (the same seed),
    /// takes its own contiguous part of it, computes its share of the objective
    /// ([`Integrator::losses_sharded`]) and its gradients; the gradients are summed over
    /// the ranks (one collective of all parameters), and every rank takes the same step,
    /// so the models stay identical and follow single-process training. Returns the
    /// losses of the whole minibatch before the step.
    pub fn step_sharded<C>(&mut self, comm: &C) -> diffbio_core::Result<Losses>
    where
        C: Communicator + Clone + Send + Sync + 'static,
    {
        let cells = self.next_batch();
        let size = cells.len();
        let (rank, world) = (comm.rank(), comm.world_size());
        let mine = cells[rank * size / world..(rank + 1) * size / world].to_vec();
        let len = mine.len();
        let index = Tensor::from_vec(mine, len, self.x.device())?;
        let x = self.x.index_select(&index, 0)?;
        let batch = self.batch.index_select(&index, 0)?;
        let losses = self.model.losses_sharded(
            comm,
            (&x, &batch),
            size,
            &self.mixing,
            self.config.mixing_weight,
        )?;
        let grads = self.summed_gradients(comm, &losses.total)?;
        self.optimizer.step(&grads)?;
        Ok(losses)
    }

    /// The gradients of `objective` summed over the ranks: every parameter's (zero where
    /// this rank's share does not reach it) in the order of their names, in one collective.
    fn summed_gradients(
        &self,
        comm: &dyn Communicator,
        objective: &Tensor,
    ) -> diffbio_core::Result<GradStore> {
        let mut grads = objective.backward()?;
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let params: Vec<&Tensor> = names.iter().map(|n| data[*n].as_tensor()).collect();
        let flat = params
            .iter()
            .map(|p| match grads.get(p) {
                Some(g) => g.flatten_all(),
                None => p.zeros_like()?.flatten_all(),
            })
            .collect::<Result<Vec<_>>>()?;
        let summed = comm.all_reduce_sum(&Tensor::cat(&flat, 0)?)?;
        let mut offset = 0;
        for p in params {
            let g = summed
                .narrow(0, offset, p.elem_count())?
                .reshape(p.shape())?;
            offset += p.elem_count();
            grads.insert(p, g);
        }
        Ok(grads)
    }

    /// The losses on all cells, without a step.
    pub fn evaluate(&self) -> diffbio_core::Result<Losses> {
        Ok(self.model.losses(
            &self.x,
            &self.batch,
            &self.mixing,
            self.config.mixing_weight,
        )?)
    }

    /// The latent code of every cell, row order kept.
    pub fn embed_all(&self) -> diffbio_core::Result<Tensor> {
        Ok(self.model.embed(&self.x)?)
    }
}

/// Re-draws every weight from a seeded generator (candle's own initialisation draws from an
/// unseeded one), keeping the scale candle chose: runs are reproducible.
fn seed_parameters(varmap: &VarMap, seed: u64, device: &Device) -> Result<()> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Uniform};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37_79b9);
    let data = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        // candle-nn's `linear` draws weights and biases from U(±1/√fan_in).
        let layer = name.trim_end_matches("bias").trim_end_matches("weight");
        let fan_in = data[&format!("{layer}weight")].dim(1)?;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let uniform = Uniform::new_inclusive(-bound, bound).expect("valid bounds");
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| uniform.sample(&mut rng))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), device)?)?;
    }
    Ok(())
}
