//! vCPU start state: CPUID, MSRs, FPU, local APIC, the boot GDT and page tables, and the
//! registers for each entry protocol.

mod cpuid;
mod gdt;
mod host;
mod lapic;
mod msrs;
mod paging;
mod regs;

pub use cpuid::{CpuidPolicy, build_cpuid};
pub use gdt::{GDT_ENTRIES, gdt_entries, write_gdt};
pub use host::{COMPAT_KERNEL_PARAMS, host_has_hardware_virtualization};
pub use lapic::configure_lapic;
pub use msrs::configure_msrs;
pub use paging::write_identity_page_tables;
pub use regs::configure_entry_registers;

use kvm_ioctls::{Kvm, VcpuFd};
use vm_memory::GuestMemoryMmap;

use crate::Error;
use crate::loader::EntryPoint;

/// Writes the tables every vCPU shares (GDT, identity page tables). Call once.
pub fn write_shared_tables(mem: &GuestMemoryMmap) -> Result<(), Error> {
    write_gdt(mem)?;
    write_identity_page_tables(mem)
}

/// Puts vCPU `index` of `count` in its start state. The boot vCPU (index 0) gets the entry
/// registers; the others wait for INIT/SIPI in the in-kernel local APIC.
pub fn configure_vcpu(
    kvm: &Kvm,
    vcpu: &VcpuFd,
    index: u8,
    count: u8,
    policy: CpuidPolicy,
    entry: EntryPoint,
) -> Result<(), Error> {
    let cpuid = build_cpuid(kvm, index, count, policy)?;
    vcpu.set_cpuid2(&cpuid)
        .map_err(crate::error::kvm("KVM_SET_CPUID2"))?;
    configure_msrs(vcpu)?;
    configure_lapic(vcpu)?;
    if index == 0 {
        regs::configure_fpu(vcpu)?;
        configure_entry_registers(vcpu, entry)?;
    }
    Ok(())
}
