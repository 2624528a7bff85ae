//! Guest RAM: anonymous host memory, split around the MMIO hole, registered with KVM.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use resources::layout::ram_ranges;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Allocates `size` bytes of guest RAM and maps it into `vm`.
pub fn create_guest_memory(vm: &VmFd, size: u64) -> anyhow::Result<GuestMemoryMmap> {
    let ranges: Vec<(GuestAddress, usize)> = ram_ranges(size)
        .into_iter()
        .map(|(start, len)| Ok((GuestAddress(start), usize::try_from(len)?)))
        .collect::<anyhow::Result<_>>()?;
    let mem = GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|e| anyhow::anyhow!("cannot allocate {} MiB of guest memory: {e}", size >> 20))?;
    for (slot, region) in mem.iter().enumerate() {
        let host = mem
            .get_host_address(region.start_addr())
            .map_err(|e| anyhow::anyhow!("guest memory region has no host address: {e}"))?;
        let region = kvm_userspace_memory_region {
            slot: u32::try_from(slot)?,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
            flags: 0,
        };
        // SAFETY: the region describes memory owned by `mem`, which outlives the VM: the machine
        // keeps both until the process exits.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| anyhow::anyhow!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
    }
    Ok(mem)
}
