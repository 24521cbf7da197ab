//! [`ThreadComm`]: ranks as threads of one process.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use candle_core::Tensor;

use super::Communicator;
use crate::error::{Error, Result};

/// One rank of a group of threads: for tests, and for data-parallel runs on the CPU (or
/// on several devices driven from one process).
///
/// `ThreadComm::group(W)` makes the `W` ranks; hand one to each thread (`ThreadComm` is
/// `Send`; clones share the rank). When every handle of a rank is dropped — its thread
/// ended or panicked — the other ranks' pending and later collectives return
/// [`Error::Communication`] instead of waiting for ever.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use diffbio_core::dist::{Communicator, ThreadComm};
/// # fn main() -> diffbio_core::Result<()> {
/// let sums = std::thread::scope(|s| {
///     let handles: Vec<_> = ThreadComm::group(3)
///         .into_iter()
///         .map(|comm| s.spawn(move || -> diffbio_core::Result<f32> {
///             let mine = Tensor::new(&[comm.rank() as f32 + 1.0], &Device::Cpu)?;
///             Ok(comm.all_reduce_sum(&mine)?.to_vec1::<f32>()?[0])
///         }))
///         .collect();
///     handles.into_iter().map(|h| h.join().unwrap()).collect::<diffbio_core::Result<Vec<_>>>()
/// })?;
/// assert_eq!(sums, vec![6.0; 3]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ThreadComm {
    member: Arc<Member>,
}

/// A rank's membership; dropping the last handle leaves the group.
#[derive(Debug)]
struct Member {
    rank: usize,
    group: Arc<Group>,
}

#[derive(Debug)]
struct Group {
    world: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Gather,
    Sum,
}

#[derive(Debug)]
struct State {
    /// The tensors of the collective under way, by rank.
    slots: Vec<Option<Tensor>>,
    /// What the collective under way is (set by its first rank).
    kind: Option<Kind>,
    arrived: usize,
    /// Completed collectives; a rank waits for this to move past its own.
    generation: u64,
    /// The last completed collective's tensors (gather) or sum (one tensor), or why the
    /// ranks' tensors did not combine.
    result: std::result::Result<Vec<Tensor>, String>,
    /// The first rank that left, or the first mismatch seen: every later call fails.
    broken: Option<String>,
}

impl ThreadComm {
    /// The `world` ranks of a new group, in rank order (`world ≥ 1`).
    pub fn group(world: usize) -> Vec<ThreadComm> {
        let world = world.max(1);
        let group = Arc::new(Group {
            world,
            state: Mutex::new(State {
                slots: vec![None; world],
                kind: None,
                arrived: 0,
                generation: 0,
                result: Ok(Vec::new()),
                broken: None,
            }),
            changed: Condvar::new(),
        });
        (0..world)
            .map(|rank| ThreadComm {
                member: Arc::new(Member {
                    rank,
                    group: group.clone(),
                }),
            })
            .collect()
    }

    /// Deposits `t`, waits for every rank, returns what the last rank to arrive computed
    /// (the tensors are shared, not copied).
    fn collective(&self, kind: Kind, t: &Tensor) -> Result<Vec<Tensor>> {
        let group = &self.member.group;
        let mut state = group.lock();
        if let Some(why) = &state.broken {
            return Err(communication(why));
        }
        match state.kind {
            Some(k) if k != kind => {
                let why = format!(
                    "rank {} called {kind:?} while other ranks are in {k:?}",
                    self.member.rank
                );
                let err = communication(&why);
                state.broken = Some(why);
                group.changed.notify_all();
                return Err(err);
            }
            _ => state.kind = Some(kind),
        }
        state.slots[self.member.rank] = Some(t.detach());
        state.arrived += 1;
        let generation = state.generation;
        if state.arrived == group.world {
            let tensors: Vec<Tensor> = state
                .slots
                .iter_mut()
                .map(|s| s.take().expect("every rank arrived"))
                .collect();
            state.result = combine(kind, tensors);
            state.arrived = 0;
            state.kind = None;
            state.generation += 1;
            group.changed.notify_all();
        } else {
            while state.generation == generation {
                if let Some(why) = &state.broken {
                    return Err(communication(why));
                }
                state = group.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        state.result.clone().map_err(|why| communication(&why))
    }
}

fn communication(why: &str) -> Error {
    Error::Communication {
        reason: why.to_string(),
    }
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut state = self.group.lock();
        if state.broken.is_none() {
            state.broken = Some(format!("rank {} left the group", self.rank));
        }
        self.group.changed.notify_all();
    }
}

/// What the last rank to arrive computes for everyone: the tensors as they are (gather),
/// or their sum, in rank order (so every rank sees the same rounding).
fn combine(kind: Kind, tensors: Vec<Tensor>) -> std::result::Result<Vec<Tensor>, String> {
    match kind {
        Kind::Gather => Ok(tensors),
        Kind::Sum => {
            let device = tensors[0].device().clone();
            let mut sum = tensors[0].clone();
            for t in &tensors[1..] {
                sum = (sum + t.to_device(&device).map_err(|e| e.to_string())?)
                    .map_err(|e| format!("all_reduce_sum: {e}"))?;
            }
            Ok(vec![sum])
        }
    }
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.member.rank
    }

    fn world_size(&self) -> usize {
        self.member.group.world
    }

    fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let tensors = self.collective(Kind::Gather, t)?;
        let device = t.device();
        let pieces = tensors
            .iter()
            .filter(|p| p.dim(0).map_or(true, |rows| rows > 0))
            .map(|p| p.to_device(device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        if pieces.is_empty() {
            return Ok(t.detach());
        }
        Tensor::cat(&pieces, 0).map_err(|e| Error::Communication {
            reason: format!("all_gather: the ranks' tensors do not stack: {e}"),
        })
    }

    fn all_reduce_sum(&self, t: &Tensor) -> Result<Tensor> {
        let sum = self.collective(Kind::Sum, t)?;
        Ok(sum[0].to_device(t.device())?)
    }
}
