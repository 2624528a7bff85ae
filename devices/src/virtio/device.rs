//! The contract between a virtio device and its transport.

use std::fmt;
use std::sync::Arc;

use pci::DmaMemory;
use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

/// What a device asks its transport to signal to the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtioInterruptType {
    /// The device configuration space changed.
    Config,
    /// The device used buffers of queue `n`.
    Queue(u16),
}

/// The transport's side of interrupts and error reporting, given to a device at activation.
pub trait VirtioInterrupt: Send + Sync + fmt::Debug {
    /// Signals `int` to the driver (an MSI-X vector, or INTx with the ISR bit set). Delivery
    /// failures are logged by the transport.
    fn trigger(&self, int: VirtioInterruptType);

    /// The device hit an error it cannot recover from without a reset (a malformed ring, an
    /// unreachable buffer): sets DEVICE_NEEDS_RESET in the device status and raises a
    /// configuration interrupt. The device stops processing its queues until reset.
    fn set_needs_reset(&self);
}

/// One queue handed to a device at activation.
#[derive(Debug)]
pub struct QueueContext {
    /// The queue's index in the device.
    pub index: u16,
    /// The queue, configured by the driver (size, ring addresses, ready).
    pub queue: Queue,
}

/// Everything a device needs to start processing queues (DRIVER_OK).
pub struct ActivateContext {
    /// The device's DMA memory (I/O virtual addresses, translated per access).
    pub mem: DmaMemory,
    /// The queues the driver enabled, in index order.
    pub queues: Vec<QueueContext>,
    /// How to signal the driver.
    pub interrupt: Arc<dyn VirtioInterrupt>,
    /// Features the driver accepted (device and transport features).
    pub acked_features: u64,
}

impl fmt::Debug for ActivateContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivateContext")
            .field("queues", &self.queues)
            .field(
                "acked_features",
                &format_args!("{:#x}", self.acked_features),
            )
            .finish()
    }
}

/// Why a device refused to start.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// The driver did not enable a queue the device needs.
    #[error("Queue {0} is required but was not enabled by the driver")]
    MissingQueue(u16),
    /// The driver set up a queue the device cannot use.
    #[error("Queue {index} is unusable: {reason}")]
    BadQueue {
        /// Which queue.
        index: u16,
        /// What is wrong with it.
        reason: String,
    },
    /// A host resource (eventfd, file) failed.
    #[error("Host resource failed: {0}")]
    Host(#[source] std::io::Error),
}

/// A virtio device as its transport sees it.
///
/// Configuration-space accessors take guest-controlled offsets and lengths: out-of-range reads
/// leave `data` zeroed, out-of-range writes are ignored (and logged once), never a panic.
pub trait VirtioDevice: Send + fmt::Debug {
    /// The virtio device id (2 block, 3 console, 4 entropy).
    fn device_type(&self) -> u32;

    /// Maximum size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];

    /// Device-specific feature bits offered (the transport adds VIRTIO_F_VERSION_1 and
    /// VIRTIO_F_ACCESS_PLATFORM).
    fn device_features(&self) -> u64;

    /// The notification eventfd of each queue, in index order. The transport registers them as
    /// KVM ioeventfds on its notify region (and writes them itself when an access exits to the
    /// VMM); the device's event subscriber watches them.
    fn queue_events(&self) -> &[EventFd];

    /// Reads the device configuration space at `offset`.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes the device configuration space at `offset`.
    fn write_config(&mut self, offset: u64, data: &[u8]);

    /// Starts the device (the driver set DRIVER_OK).
    fn activate(&mut self, ctx: ActivateContext) -> Result<(), ActivateError>;

    /// Returns the device to its pre-activation state (the driver wrote 0 to device status).
    /// Queues, memory and interrupt handle are dropped; pending notifications are discarded.
    fn reset(&mut self);
}
