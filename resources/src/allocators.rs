//! Allocators for the PCI memory windows and for GSIs, over vm-allocator.

use vm_allocator::{AddressAllocator, AllocPolicy, IdAllocator, RangeInclusive};

/// Why an allocation failed.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// The window has no free range of that size and alignment.
    #[error("No room for {size:#x} bytes aligned to {align:#x} in the {window} window")]
    Exhausted {
        /// Which window was asked.
        window: &'static str,
        /// Requested size.
        size: u64,
        /// Requested alignment.
        align: u64,
    },
    /// No interrupt line is left.
    #[error("No free GSI left")]
    NoGsi,
    /// The allocator could not be built (bad window).
    #[error("Invalid allocator window: {0}")]
    Window(vm_allocator::Error),
}

/// Hands out naturally aligned ranges of one MMIO window (PCI BARs).
#[derive(Debug)]
pub struct MmioAllocator {
    name: &'static str,
    inner: AddressAllocator,
}

impl MmioAllocator {
    /// An allocator over `[base, base + size)`.
    pub fn new(name: &'static str, base: u64, size: u64) -> Result<Self, AllocError> {
        let inner = AddressAllocator::new(base, size).map_err(AllocError::Window)?;
        Ok(Self { name, inner })
    }

    /// Allocates `size` bytes aligned to `align` (a power of two) and returns the base.
    pub fn allocate(&mut self, size: u64, align: u64) -> Result<u64, AllocError> {
        let exhausted = || AllocError::Exhausted {
            window: self.name,
            size,
            align,
        };
        self.inner
            .allocate(size, align, AllocPolicy::FirstMatch)
            .map(|range: RangeInclusive| range.start())
            .map_err(|_| exhausted())
    }
}

/// Hands out GSIs for PCI INTx lines and MSI routes.
#[derive(Debug)]
pub struct GsiAllocator {
    inner: IdAllocator,
}

impl GsiAllocator {
    /// An allocator over GSIs `first..=last`.
    pub fn new(first: u32, last: u32) -> Result<Self, AllocError> {
        let inner = IdAllocator::new(first, last).map_err(AllocError::Window)?;
        Ok(Self { inner })
    }

    /// The next free GSI.
    pub fn allocate(&mut self) -> Result<u32, AllocError> {
        self.inner.allocate_id().map_err(|_| AllocError::NoGsi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_naturally_aligned_and_disjoint() {
        let mut a = MmioAllocator::new("test", 0xc000_0000, 0x100_0000).unwrap();
        let x = a.allocate(0x1000, 0x1000).unwrap();
        let y = a.allocate(0x4000, 0x4000).unwrap();
        assert_eq!(x % 0x1000, 0);
        assert_eq!(y % 0x4000, 0);
        assert!(x + 0x1000 <= y || y + 0x4000 <= x);
    }

    #[test]
    fn window_exhaustion_is_an_error() {
        let mut a = MmioAllocator::new("tiny", 0xc000_0000, 0x2000).unwrap();
        a.allocate(0x2000, 0x1000).unwrap();
        let err = a.allocate(0x1000, 0x1000).unwrap_err();
        assert!(err.to_string().contains("tiny"));
    }

    #[test]
    fn gsis_run_out() {
        let mut g = GsiAllocator::new(16, 17).unwrap();
        assert_eq!(g.allocate().unwrap(), 16);
        assert_eq!(g.allocate().unwrap(), 17);
        assert!(g.allocate().is_err());
    }
}
