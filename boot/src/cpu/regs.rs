//! Registers for each entry protocol, and the FPU's reset state.
//!
//! - Linux 64-bit boot protocol: long mode, paging on, CS = 0x10, RSI = zero page.
//! - PVH: 32-bit protected mode, paging off, CS = 0x08, RBX = `hvm_start_info`.
//! - Micro-guest: long mode at CPL3 with IOPL 3 (port I/O without traps), RDI = boot info.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use kvm_ioctls::VcpuFd;
use resources::layout::{
    BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER, MICRO_GUEST_STACK_TOP, PML4_START,
    PVH_INFO_START, ZERO_PAGE_START,
};

use super::gdt::{
    GDT_ENTRIES, KERNEL_CODE32, KERNEL_CODE64, KERNEL_DATA, TSS, USER_CODE64, USER_DATA,
};
use crate::Error;
use crate::loader::EntryPoint;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_RESERVED: u64 = 1 << 1;
const RFLAGS_IOPL3: u64 = 3 << 12;

/// A flat segment for `selector` read from the GDT entry it names.
fn segment(selector: u16) -> kvm_segment {
    let entry = super::gdt::gdt_entries()
        .get(usize::from(selector >> 3))
        .copied()
        .unwrap_or(0);
    let access = (entry >> 40) & 0xff;
    let flags = (entry >> 52) & 0xf;
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: (access & 0xf) as u8,
        present: ((access >> 7) & 1) as u8,
        dpl: ((access >> 5) & 3) as u8,
        db: ((flags >> 2) & 1) as u8,
        s: ((access >> 4) & 1) as u8,
        l: ((flags >> 1) & 1) as u8,
        g: ((flags >> 3) & 1) as u8,
        avl: 0,
        unusable: u8::from((access >> 7) & 1 == 0),
        padding: 0,
    }
}

fn long_mode_sregs(mut sregs: kvm_sregs, code: u16, data: u16) -> kvm_sregs {
    sregs.cs = segment(code);
    for seg in [
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
        &mut sregs.ss,
    ] {
        *seg = segment(data);
    }
    sregs.cr3 = PML4_START;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

fn protected_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    sregs.cs = segment(KERNEL_CODE32);
    for seg in [
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
        &mut sregs.ss,
    ] {
        *seg = segment(KERNEL_DATA);
    }
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr4 = 0;
    sregs.efer = 0;
    sregs
}

/// The special registers for `entry`, starting from the vCPU's current ones.
pub(super) fn entry_sregs(current: kvm_sregs, entry: EntryPoint) -> kvm_sregs {
    let mut sregs = current;
    sregs.gdt.base = BOOT_GDT_START;
    sregs.gdt.limit = (GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = BOOT_IDT_START;
    sregs.idt.limit = 0;
    let mut tr = segment(TSS);
    tr.limit = 0xfffff;
    tr.g = 0;
    sregs.tr = tr;
    match entry {
        EntryPoint::Linux64(_) => long_mode_sregs(sregs, KERNEL_CODE64, KERNEL_DATA),
        EntryPoint::MicroGuest(_) => long_mode_sregs(sregs, USER_CODE64, USER_DATA),
        EntryPoint::Pvh(_) => protected_mode_sregs(sregs),
    }
}

/// The general registers for `entry`.
pub(super) fn entry_regs(entry: EntryPoint) -> kvm_regs {
    let mut regs = kvm_regs {
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    };
    match entry {
        EntryPoint::Linux64(rip) => {
            regs.rip = rip;
            regs.rsp = BOOT_STACK_POINTER;
            regs.rbp = BOOT_STACK_POINTER;
            regs.rsi = ZERO_PAGE_START;
        }
        EntryPoint::Pvh(rip) => {
            regs.rip = rip;
            regs.rbx = PVH_INFO_START;
        }
        EntryPoint::MicroGuest(rip) => {
            regs.rip = rip;
            regs.rsp = MICRO_GUEST_STACK_TOP;
            regs.rdi = ZERO_PAGE_START;
            regs.rflags |= RFLAGS_IOPL3;
        }
    }
    regs
}

/// Sets the boot vCPU's registers for `entry`.
pub fn configure_entry_registers(vcpu: &VcpuFd, entry: EntryPoint) -> Result<(), Error> {
    let current = vcpu
        .get_sregs()
        .map_err(crate::error::kvm("KVM_GET_SREGS"))?;
    vcpu.set_sregs(&entry_sregs(current, entry))
        .map_err(crate::error::kvm("KVM_SET_SREGS"))?;
    vcpu.set_regs(&entry_regs(entry))
        .map_err(crate::error::kvm("KVM_SET_REGS"))
}

/// x87 control word and MXCSR at their reset values (all exceptions masked).
pub(super) fn configure_fpu(vcpu: &VcpuFd) -> Result<(), Error> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(crate::error::kvm("KVM_SET_FPU"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux64_entry_is_ring0_long_mode_with_zero_page_in_rsi() {
        let s = entry_sregs(kvm_sregs::default(), EntryPoint::Linux64(0x100_0000));
        assert_eq!((s.cs.selector, s.cs.l, s.cs.dpl), (0x10, 1, 0));
        assert_eq!(s.efer & EFER_LMA, EFER_LMA);
        assert_eq!(s.cr3, PML4_START);
        let r = entry_regs(EntryPoint::Linux64(0x100_0000));
        assert_eq!((r.rip, r.rsi), (0x100_0000, ZERO_PAGE_START));
        assert_eq!(r.rflags & RFLAGS_IOPL3, 0);
    }

    #[test]
    fn pvh_entry_is_flat_32_bit_without_paging() {
        let s = entry_sregs(kvm_sregs::default(), EntryPoint::Pvh(0x10_04a0));
        assert_eq!((s.cs.selector, s.cs.db, s.cs.l), (0x08, 1, 0));
        assert_eq!(s.cr0 & CR0_PG, 0);
        assert_eq!(s.efer, 0);
        assert_eq!(entry_regs(EntryPoint::Pvh(1)).rbx, PVH_INFO_START);
    }

    #[test]
    fn micro_guest_runs_at_cpl3_with_iopl3() {
        let s = entry_sregs(kvm_sregs::default(), EntryPoint::MicroGuest(0x20_0000));
        assert_eq!((s.cs.selector, s.cs.dpl, s.ss.dpl), (0x33, 3, 3));
        assert_eq!(s.ss.selector, 0x2b);
        let r = entry_regs(EntryPoint::MicroGuest(0x20_0000));
        assert_eq!(r.rflags, 0x3002);
        assert_eq!((r.rsp, r.rdi), (MICRO_GUEST_STACK_TOP, ZERO_PAGE_START));
    }

    #[test]
    fn tss_is_present_busy_64_bit() {
        let s = entry_sregs(kvm_sregs::default(), EntryPoint::Linux64(0));
        assert_eq!((s.tr.type_, s.tr.present, s.tr.s), (0xb, 1, 0));
    }
}
