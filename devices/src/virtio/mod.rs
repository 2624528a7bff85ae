//! virtio devices, independent of their transport, and the virtio-pci transport.
//!
//! A device is two things at once, shared behind one `Arc<Mutex<_>>`:
//! - a [`VirtioDevice`], which the transport drives from vCPU threads (features, configuration
//!   space, activation, reset);
//! - an `event_manager::MutEventSubscriber`, which processes its queues on the VMM's event thread
//!   when the queue notification eventfds (KVM ioeventfds) fire. Queues are never processed on a
//!   vCPU thread.
//!
//! All DMA (rings, descriptors, buffers) goes through the [`DmaMemory`] handed over at activation:
//! the device never sees guest-physical memory directly.

mod block;
mod chain;
mod console;
mod device;
pub mod pci;
mod rng;
mod single_queue;
#[cfg(test)]
mod test_ring;

pub use block::Block;
pub use console::Console;
pub use rng::Rng;

pub use device::{
    ActivateContext, ActivateError, QueueContext, VirtioDevice, VirtioInterrupt,
    VirtioInterruptType,
};
