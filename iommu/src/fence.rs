//! The DMA fence: how an invalidation wait learns that no DMA still uses an old translation.

use std::sync::{PoisonError, RwLock, RwLockReadGuard};

/// Counts DMAs in flight. Each DMA holds a [`DmaGuard`] from its first translation until its last
/// byte is copied; [`DmaFence::drain`] returns only once every guard taken before it was dropped.
#[derive(Debug, Default)]
pub struct DmaFence {
    lock: RwLock<()>,
}

/// A DMA in flight (see [`DmaFence`]). Never hold two at once on one thread: a drain that is
/// waiting blocks new guards, so a nested one would wait for itself.
#[derive(Debug)]
pub struct DmaGuard<'a> {
    _inflight: Option<RwLockReadGuard<'a, ()>>,
}

impl DmaGuard<'_> {
    /// A guard that fences nothing, for translators that never invalidate (identity).
    pub fn none() -> DmaGuard<'static> {
        DmaGuard { _inflight: None }
    }
}

impl DmaFence {
    /// A fence with no DMA in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks a DMA as in flight until the returned guard is dropped.
    pub fn enter(&self) -> DmaGuard<'_> {
        // A panic while holding a guard cannot leave `()` inconsistent, so poisoning is ignored.
        let guard = self.lock.read().unwrap_or_else(PoisonError::into_inner);
        DmaGuard {
            _inflight: Some(guard),
        }
    }

    /// Waits until every DMA that entered before this call has finished.
    ///
    /// Must not be called while holding a guard of this fence, nor while holding a lock that a
    /// DMA in flight may need to finish.
    pub fn drain(&self) {
        drop(self.lock.write().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::Duration;

    use super::*;

    #[test]
    fn drain_waits_for_a_dma_in_flight() {
        let fence = Arc::new(DmaFence::new());
        let finished = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let dma = {
            let fence = fence.clone();
            let finished = finished.clone();
            thread::spawn(move || {
                let _guard = fence.enter();
                started_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(100));
                finished.store(true, Ordering::SeqCst);
            })
        };
        started_rx.recv().unwrap();
        fence.drain();
        assert!(
            finished.load(Ordering::SeqCst),
            "drain returned while a DMA was still in flight"
        );
        dma.join().unwrap();
    }

    #[test]
    fn drain_with_nothing_in_flight_returns() {
        let fence = DmaFence::new();
        drop(fence.enter());
        fence.drain();
    }
}
