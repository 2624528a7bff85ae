//! Reading a descriptor chain into a plain list, so a device can validate the whole request
//! before touching any buffer, and detecting chains the iterator had to cut short (a loop, an
//! index beyond the table, an unreadable descriptor, more descriptors than the queue holds).

use virtio_queue::DescriptorChain;
use vm_memory::GuestMemory;

/// One buffer of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// I/O virtual address.
    pub addr: u64,
    /// Length.
    pub len: u32,
    /// Device-writable.
    pub writable: bool,
}

/// The buffers of a chain, or None when the chain is malformed (the device must then ask for a
/// reset: the ring cannot be trusted).
pub fn collect_chain<M>(chain: DescriptorChain<M>) -> Option<Vec<Buffer>>
where
    M: Clone + std::ops::Deref,
    M::Target: GuestMemory,
{
    let mut buffers = Vec::new();
    let mut cut = false;
    for desc in chain {
        buffers.push(Buffer {
            addr: desc.addr().0,
            len: desc.len(),
            writable: desc.is_write_only(),
        });
        cut = desc.has_next();
    }
    // The iterator stops silently on a bad chain; a last descriptor that still points onwards
    // means it was cut.
    (!cut && !buffers.is_empty()).then_some(buffers)
}
