//! How a virtio-pci function signals its driver: the MSI-X vector the driver chose for the
//! queue or for configuration changes, or, without MSI-X, the ISR bits and the INTx line.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pci::{InterruptVectors, Msix};

use crate::virtio::device::{VirtioInterrupt, VirtioInterruptType};

/// "No vector" in msix_config / queue_msix_vector.
pub const NO_VECTOR: u16 = 0xffff;
/// ISR bit: a queue was used.
pub const ISR_QUEUE: u8 = 1;
/// ISR bit: the configuration changed.
pub const ISR_CONFIG: u8 = 2;
/// Device status: DEVICE_NEEDS_RESET.
pub const STATUS_NEEDS_RESET: u8 = 0x40;

/// Shared between the transport (vCPU threads) and the active device (event thread).
#[derive(Debug)]
pub struct PciInterrupt {
    pub(super) msix: Arc<Mutex<Msix>>,
    pub(super) vectors: Arc<dyn InterruptVectors>,
    pub(super) isr: AtomicU8,
    pub(super) status: Arc<AtomicU8>,
    pub(super) config_vector: Mutex<u16>,
    /// config_generation: bumped before each configuration-change interrupt, so a driver
    /// reading the device configuration across a change sees the generation move and retries.
    pub(super) config_generation: AtomicU8,
    pub(super) queue_vectors: Mutex<Vec<u16>>,
}

impl PciInterrupt {
    fn signal(&self, vector: u16, isr_bit: u8) {
        let mut msix = self.msix.lock().unwrap_or_else(PoisonError::into_inner);
        if msix.enabled() {
            if vector != NO_VECTOR {
                msix.trigger(vector);
            }
            return;
        }
        drop(msix);
        self.isr.fetch_or(isr_bit, Ordering::SeqCst);
        if let Err(e) = self.vectors.set_intx(true) {
            log::warn!("virtio-pci: raising INTx failed: {e}");
        }
    }

    /// Reads and clears the ISR, lowering INTx (the driver's acknowledgement).
    pub fn read_isr(&self) -> u8 {
        let v = self.isr.swap(0, Ordering::SeqCst);
        if v != 0
            && let Err(e) = self.vectors.set_intx(false)
        {
            log::warn!("virtio-pci: lowering INTx failed: {e}");
        }
        v
    }
}

impl VirtioInterrupt for PciInterrupt {
    fn trigger(&self, int: VirtioInterruptType) {
        match int {
            VirtioInterruptType::Config => {
                self.config_generation.fetch_add(1, Ordering::SeqCst);
                let v = *self
                    .config_vector
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                self.signal(v, ISR_CONFIG);
            }
            VirtioInterruptType::Queue(q) => {
                let v = self
                    .queue_vectors
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(usize::from(q))
                    .copied()
                    .unwrap_or(NO_VECTOR);
                self.signal(v, ISR_QUEUE);
            }
        }
    }

    fn set_needs_reset(&self) {
        self.status.fetch_or(STATUS_NEEDS_RESET, Ordering::SeqCst);
        self.trigger(VirtioInterruptType::Config);
    }
}
