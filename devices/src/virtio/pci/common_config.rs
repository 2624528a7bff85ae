//! The common configuration structure (virtio 1.2 §4.1.4.3): feature windows, device status,
//! queue selection and the selected queue's size, vector, enable flag and ring addresses.

use super::interrupt::NO_VECTOR;

/// One queue's driver-visible configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueConfig {
    /// The device's maximum.
    pub max_size: u16,
    /// The size the driver chose (defaults to the maximum).
    pub size: u16,
    /// MSI-X vector or `NO_VECTOR`.
    pub msix_vector: u16,
    /// queue_enable.
    pub enabled: bool,
    /// Descriptor table, driver (avail) and device (used) ring addresses.
    pub desc: u64,
    /// Driver area.
    pub driver: u64,
    /// Device area.
    pub device: u64,
}

/// Field offsets.
pub mod offset {
    pub const DEVICE_FEATURE_SELECT: u64 = 0;
    pub const DEVICE_FEATURE: u64 = 4;
    pub const DRIVER_FEATURE_SELECT: u64 = 8;
    pub const DRIVER_FEATURE: u64 = 12;
    pub const MSIX_CONFIG: u64 = 16;
    pub const NUM_QUEUES: u64 = 18;
    pub const DEVICE_STATUS: u64 = 20;
    pub const CONFIG_GENERATION: u64 = 21;
    pub const QUEUE_SELECT: u64 = 22;
    pub const QUEUE_SIZE: u64 = 24;
    pub const QUEUE_MSIX_VECTOR: u64 = 26;
    pub const QUEUE_ENABLE: u64 = 28;
    pub const QUEUE_NOTIFY_OFF: u64 = 30;
    pub const QUEUE_DESC: u64 = 32;
    pub const QUEUE_DRIVER: u64 = 40;
    pub const QUEUE_DEVICE: u64 = 48;
    /// Size of the structure.
    pub const END: u64 = 56;
}

/// The register state.
#[derive(Clone, Debug)]
pub struct CommonConfig {
    pub device_feature_select: u32,
    pub driver_feature_select: u32,
    pub driver_features: u64,
    pub msix_config: u16,
    pub queue_select: u16,
    pub queues: Vec<QueueConfig>,
}

impl CommonConfig {
    /// Reset state for queues of `max_sizes`.
    pub fn new(max_sizes: &[u16]) -> Self {
        Self {
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            msix_config: NO_VECTOR,
            queue_select: 0,
            queues: max_sizes
                .iter()
                .map(|&m| QueueConfig {
                    max_size: m,
                    size: m,
                    msix_vector: NO_VECTOR,
                    ..QueueConfig::default()
                })
                .collect(),
        }
    }

    /// The selected queue, if queue_select names one.
    pub fn selected(&self) -> Option<&QueueConfig> {
        self.queues.get(usize::from(self.queue_select))
    }

    /// The selected queue, mutably.
    pub fn selected_mut(&mut self) -> Option<&mut QueueConfig> {
        self.queues.get_mut(usize::from(self.queue_select))
    }
}

/// Replaces the 32-bit half of `value` that `offset` (relative to the field) names.
pub fn set_half(value: u64, half_offset: u64, v: u32) -> u64 {
    if half_offset == 0 {
        (value & !0xffff_ffff) | u64::from(v)
    } else {
        (value & 0xffff_ffff) | (u64::from(v) << 32)
    }
}
