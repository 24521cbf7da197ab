//! Reads from a device to the host: each one waits for the device (on a GPU, a
//! synchronisation with the stream). The fused ops make few of them; each is noted here,
//! per thread, so that a test on the emulator device can count them.

use std::cell::Cell;

thread_local! {
    static HOST_READS: Cell<usize> = const { Cell::new(0) };
}

/// Notes one read from a device to the host on this thread.
pub(crate) fn note() {
    HOST_READS.with(|reads| reads.set(reads.get() + 1));
}

/// The reads noted on this thread so far (the emulator's tests count them).
#[cfg(all(test, feature = "cuda-emu"))]
pub(crate) fn count() -> usize {
    HOST_READS.with(Cell::get)
}
