//! What the one-queue devices (block, entropy) share: the state they run with once activated,
//! and the notification eventfd they watch on the event loop.

use std::sync::Arc;

use event_manager::{EventOps, Events};
use pci::DmaMemory;
use virtio_queue::Queue;
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::eventfd::EventFd;

use super::device::{ActivateContext, ActivateError, VirtioInterrupt};

/// An activated device's queue 0, DMA handle and interrupt.
pub(crate) struct ActiveQueue {
    pub(crate) mem: DmaMemory,
    pub(crate) queue: Queue,
    pub(crate) interrupt: Arc<dyn VirtioInterrupt>,
}

impl ActiveQueue {
    /// Takes queue 0 from `ctx`; the driver must have enabled it.
    pub(crate) fn from_context(mut ctx: ActivateContext) -> Result<Self, ActivateError> {
        let q = ctx
            .queues
            .pop()
            .filter(|q| q.index == 0)
            .ok_or(ActivateError::MissingQueue(0))?;
        Ok(Self {
            mem: ctx.mem,
            queue: q.queue,
            interrupt: ctx.interrupt,
        })
    }
}

/// Adds `event` to the event loop, logging (it cannot fail the VM from here) if it cannot.
pub(crate) fn watch(ops: &mut EventOps, event: Option<&EventFd>, who: &str) {
    if let Some(e) = event
        && let Err(err) = ops.add(Events::new(e, EventSet::IN))
    {
        log::error!("{who}: cannot watch the queue notification: {err:?}");
    }
}
