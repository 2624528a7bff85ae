//! Boot MSRs: SYSENTER/STAR cleared, TSC zeroed, fast strings on, PAT at its reset value.

use kvm_bindings::{Msrs, kvm_msr_entry};
use kvm_ioctls::VcpuFd;

use crate::Error;

const IA32_SYSENTER_CS: u32 = 0x174;
const IA32_SYSENTER_ESP: u32 = 0x175;
const IA32_SYSENTER_EIP: u32 = 0x176;
const STAR: u32 = 0xc000_0081;
const LSTAR: u32 = 0xc000_0082;
const CSTAR: u32 = 0xc000_0083;
const SYSCALL_MASK: u32 = 0xc000_0084;
const KERNEL_GS_BASE: u32 = 0xc000_0102;
const IA32_TSC: u32 = 0x10;
const IA32_MISC_ENABLE: u32 = 0x1a0;
const IA32_MISC_ENABLE_FAST_STRING: u64 = 1;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
/// MTRRs enabled, default type write-back: RAM is cacheable without per-range MTRRs.
const MTRR_ENABLE_WRITE_BACK: u64 = (1 << 11) | 6;

fn boot_msrs() -> Vec<kvm_msr_entry> {
    [
        (IA32_SYSENTER_CS, 0),
        (IA32_SYSENTER_ESP, 0),
        (IA32_SYSENTER_EIP, 0),
        (STAR, 0),
        (CSTAR, 0),
        (KERNEL_GS_BASE, 0),
        (SYSCALL_MASK, 0),
        (LSTAR, 0),
        (IA32_TSC, 0),
        (IA32_MISC_ENABLE, IA32_MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WRITE_BACK),
    ]
    .into_iter()
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    })
    .collect()
}

/// Sets the boot MSRs on `vcpu`.
pub fn configure_msrs(vcpu: &VcpuFd) -> Result<(), Error> {
    let entries = boot_msrs();
    let msrs = Msrs::from_entries(&entries).map_err(|_| Error::MsrList(entries.len()))?;
    let written = vcpu
        .set_msrs(&msrs)
        .map_err(crate::error::kvm("KVM_SET_MSRS"))?;
    if written != entries.len() {
        // Which MSR the host refused is not reported; continuing is safe because every entry
        // holds its reset value, but say so for whoever debugs an odd guest.
        log::debug!("KVM_SET_MSRS set {written} of {} boot MSRs", entries.len());
    }
    Ok(())
}
