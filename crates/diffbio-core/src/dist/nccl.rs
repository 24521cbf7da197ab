//! [`NcclComm`]: ranks as processes, one GPU each, over NCCL on Candle's CUDA stream.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, ValidAsZeroBits};
use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, Id, NcclType, ReduceOp};
use candle_core::cuda_backend::{CudaDType, CudaDevice};
use candle_core::op::BackpropOp;
use candle_core::{CudaStorage, DType, Device, Shape, Storage, Tensor};

use super::Communicator;
use crate::error::{Error, Result};

/// The NCCL unique id that ties the ranks of one group together: made by one rank, read
/// by all the others before [`NcclComm::new`].
pub struct NcclId(Id);

impl NcclId {
    /// A fresh id (on one rank; the others need its [`NcclId::to_bytes`]).
    pub fn new() -> Result<Self> {
        Ok(Self(Id::new().map_err(nccl_error)?))
    }

    /// The id's 128 bytes, to send to the other ranks.
    pub fn to_bytes(&self) -> [u8; 128] {
        self.0.internal().map(|c| c as u8)
    }

    /// The id from [`NcclId::to_bytes`].
    pub fn from_bytes(bytes: &[u8; 128]) -> Self {
        Self(Id::uninit(bytes.map(|b| b as std::ffi::c_char)))
    }

    /// Shares an id through a file that every rank can see (as candle's
    /// `llama_multiprocess` example does): rank 0 makes one and writes it to `path`
    /// (whole, through a rename), the other ranks wait up to `timeout` for the file.
    /// Remove the file before a new group starts.
    pub fn through_file(path: &Path, rank: usize, timeout: Duration) -> Result<Self> {
        let io = |e: std::io::Error| Error::Communication {
            reason: format!("NCCL id file {}: {e}", path.display()),
        };
        if rank == 0 {
            let id = Self::new()?;
            let partial = path.with_extension("partial");
            std::fs::write(&partial, id.to_bytes()).map_err(io)?;
            std::fs::rename(&partial, path).map_err(io)?;
            return Ok(id);
        }
        let started = Instant::now();
        loop {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let bytes: [u8; 128] =
                        bytes
                            .try_into()
                            .map_err(|b: Vec<u8>| Error::Communication {
                                reason: format!(
                                    "NCCL id file {} holds {} bytes, not 128",
                                    path.display(),
                                    b.len()
                                ),
                            })?;
                    return Ok(Self::from_bytes(&bytes));
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound && started.elapsed() < timeout =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(io(e)),
            }
        }
    }
}

/// One rank of an NCCL group: one process per GPU (rank and world size as torchrun's
/// `RANK` and `WORLD_SIZE`), its collectives on the Candle device's own stream, so they
/// are ordered with the kernels around them. Clones share the communicator.
#[derive(Clone)]
pub struct NcclComm {
    comm: Arc<Mutex<SendComm>>,
    device: CudaDevice,
    rank: usize,
    world: usize,
}

/// The communicator, movable between threads.
struct SendComm(Comm);

// SAFETY: an NCCL communicator may be used from any thread as long as no two calls on it
// overlap; every use goes through the `Mutex` around it.
unsafe impl Send for SendComm {}

fn nccl_error(e: impl std::fmt::Debug) -> Error {
    Error::Communication {
        reason: format!("NCCL: {e:?}"),
    }
}

impl NcclComm {
    /// Joins the group `id` as `rank` of `world_size` on the CUDA `device` (blocks until
    /// every rank has joined).
    pub fn new(device: &Device, rank: usize, world_size: usize, id: NcclId) -> Result<Self> {
        let Device::Cuda(cuda) = device else {
            return Err(Error::Communication {
                reason: format!("NcclComm needs a CUDA device, got {device:?}"),
            });
        };
        let comm =
            Comm::from_rank(cuda.cuda_stream(), rank, world_size, id.0).map_err(nccl_error)?;
        Ok(Self {
            comm: Arc::new(Mutex::new(SendComm(comm))),
            device: cuda.clone(),
            rank,
            world: world_size,
        })
    }

    /// Runs `op` from `t`'s elements into a new output of `out_len` elements, returned as
    /// a tensor of `shape`.
    fn collective(
        &self,
        t: &Tensor,
        out_len: usize,
        shape: Shape,
        op: Collective,
    ) -> Result<Tensor> {
        let t = t.contiguous()?;
        let (storage, layout) = t.storage_and_layout();
        let Storage::Cuda(storage) = &*storage else {
            return Err(Error::Communication {
                reason: "NcclComm collectives need CUDA tensors".into(),
            });
        };
        let range = layout.contiguous_offsets().expect("contiguous");
        let comm = self.comm.lock().unwrap_or_else(|e| e.into_inner());
        let out = match storage.dtype() {
            DType::F32 => self.typed::<f32>(storage, range, out_len, &comm.0, op)?,
            DType::F64 => self.typed::<f64>(storage, range, out_len, &comm.0, op)?,
            DType::F16 => self.typed::<half::f16>(storage, range, out_len, &comm.0, op)?,
            DType::BF16 => self.typed::<half::bf16>(storage, range, out_len, &comm.0, op)?,
            DType::I64 => self.typed::<i64>(storage, range, out_len, &comm.0, op)?,
            DType::U32 => self.typed::<u32>(storage, range, out_len, &comm.0, op)?,
            DType::U8 => self.typed::<u8>(storage, range, out_len, &comm.0, op)?,
            other => {
                return Err(Error::Communication {
                    reason: format!("NCCL collectives do not take {other:?}"),
                })
            }
        };
        Ok(Tensor::from_storage(
            Storage::Cuda(out),
            shape,
            BackpropOp::none(),
            false,
        ))
    }

    fn typed<T>(
        &self,
        storage: &CudaStorage,
        (start, end): (usize, usize),
        out_len: usize,
        comm: &Comm,
        op: Collective,
    ) -> Result<CudaStorage>
    where
        T: CudaDType + NcclType + DeviceRepr + ValidAsZeroBits,
    {
        let src = storage.as_cuda_slice::<T>()?.slice(start..end);
        let mut dst = self.device.alloc_zeros::<T>(out_len)?;
        match op {
            Collective::Gather => comm.all_gather(&src, &mut dst),
            Collective::Sum => comm.all_reduce(&src, &mut dst, &ReduceOp::Sum),
        }
        .map_err(nccl_error)?;
        Ok(CudaStorage::wrap_cuda_slice(dst, self.device.clone()))
    }

    /// `t` gathered from every rank, all with the same shape: `[W·rows, ...]`.
    fn gather_equal(&self, t: &Tensor) -> Result<Tensor> {
        let mut dims = t.dims().to_vec();
        dims[0] *= self.world;
        let shape = Shape::from(dims);
        self.collective(t, shape.elem_count(), shape, Collective::Gather)
    }
}

/// The two collectives the sharded losses use.
#[derive(Clone, Copy)]
enum Collective {
    Gather,
    Sum,
}

impl Communicator for NcclComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    /// NCCL gathers equal sizes: the first dimensions are gathered first, every rank pads
    /// to the largest, and the padding is cut off after the gather.
    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let rows = t.dim(0)?;
        let counts = Tensor::new(&[rows as i64], t.device())?;
        let counts = self.gather_equal(&counts)?.to_vec1::<i64>()?;
        let most = counts.iter().copied().max().unwrap_or(0) as usize;
        let padded = if rows < most {
            let mut pad = t.dims().to_vec();
            pad[0] = most - rows;
            Tensor::cat(&[t, &Tensor::zeros(pad, t.dtype(), t.device())?], 0)?
        } else {
            t.clone()
        };
        let gathered = self.gather_equal(&padded)?;
        let pieces = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(r, &c)| gathered.narrow(0, r * most, c as usize))
            .collect::<candle_core::Result<Vec<_>>>()?;
        if pieces.is_empty() {
            return Ok(t.detach());
        }
        Ok(Tensor::cat(&pieces, 0)?)
    }

    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor> {
        self.collective(t, t.elem_count(), t.shape().clone(), Collective::Sum)
    }
}
