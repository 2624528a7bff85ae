//! Puts the guest in memory and its vCPUs in their start state.
//!
//! Interim: only micro-guests (ELF with the IOVMM note, entered at CPL3) until the `boot` crate
//! provides the Linux loaders; this module then becomes a thin caller of it.

use std::fs::File;

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, kvm_segment};
use kvm_ioctls::{Kvm, VcpuFd};
use linux_loader::loader::{Elf, KernelLoader};
use resources::layout::{
    BOOT_GDT_START, CMDLINE_START, MICRO_GUEST_STACK_TOP, PDE_START, PDPTE_START, PML4_START,
    ZERO_PAGE_START,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::config::VmConfig;

/// What the vCPUs need to know about the loaded guest.
#[derive(Debug)]
pub struct BootPlan {
    entry: u64,
}

/// Loads the kernel named by `config` into `mem`.
pub fn load(config: &VmConfig, mem: &GuestMemoryMmap) -> anyhow::Result<BootPlan> {
    let mut file = File::open(&config.kernel)?;
    let loaded = Elf::load(mem, None, &mut file, None)
        .map_err(|e| anyhow::anyhow!("--kernel {}: {e}", config.kernel.display()))?;
    let cmdline = config.cmdline.as_bytes();
    mem.write_slice(cmdline, GuestAddress(CMDLINE_START))?;
    let mut info = Vec::new();
    info.extend_from_slice(&0x4d56_4f49u32.to_le_bytes());
    info.extend_from_slice(&1u32.to_le_bytes());
    info.extend_from_slice(&config.memory.to_le_bytes());
    info.extend_from_slice(&u32::from(config.cpus).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    info.extend_from_slice(&CMDLINE_START.to_le_bytes());
    info.extend_from_slice(&(cmdline.len() as u64).to_le_bytes());
    mem.write_slice(&info, GuestAddress(ZERO_PAGE_START))?;
    // Identity map of 4 GiB, 2 MiB pages, user-accessible.
    mem.write_obj(PDPTE_START | 7, GuestAddress(PML4_START))?;
    for i in 0..4u64 {
        mem.write_obj((PDE_START + i * 0x1000) | 7, GuestAddress(PDPTE_START + i * 8))?;
    }
    for i in 0..2048u64 {
        mem.write_obj((i << 21) | 0x87, GuestAddress(PDE_START + i * 8))?;
    }
    let gdt: [u64; 7] = [
        0,
        0,
        0x00af_9b00_0000_ffff,
        0x00cf_9300_0000_ffff,
        0,
        0x00cf_f300_0000_ffff,
        0x00af_fb00_0000_ffff,
    ];
    for (i, g) in gdt.iter().enumerate() {
        mem.write_obj(*g, GuestAddress(BOOT_GDT_START + i as u64 * 8))?;
    }
    Ok(BootPlan {
        entry: loaded.kernel_load.0,
    })
}

fn segment(selector: u16, type_: u8, dpl: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        ..Default::default()
    }
}

/// Sets up vCPU `index` of `count`.
pub fn configure_vcpu(
    kvm: &Kvm,
    fd: &VcpuFd,
    _mem: &GuestMemoryMmap,
    index: u8,
    _count: u8,
    plan: &BootPlan,
) -> anyhow::Result<()> {
    let cpuid = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)?;
    fd.set_cpuid2(&cpuid)?;
    if index != 0 {
        return Ok(());
    }
    let mut sregs = fd.get_sregs()?;
    sregs.gdt.base = BOOT_GDT_START;
    sregs.gdt.limit = 7 * 8 - 1;
    sregs.cs = segment(0x33, 11, 3, true);
    let data = segment(0x2b, 3, 3, false);
    sregs.ds = data;
    sregs.es = data;
    sregs.ss = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.cr3 = PML4_START;
    sregs.cr4 = 0x20 | 0x600;
    sregs.cr0 = 0x8000_0011;
    sregs.efer = 0x500;
    fd.set_sregs(&sregs)?;
    let mut regs = fd.get_regs()?;
    regs.rip = plan.entry;
    regs.rsp = MICRO_GUEST_STACK_TOP;
    regs.rdi = ZERO_PAGE_START;
    regs.rflags = 0x3002;
    fd.set_regs(&regs)?;
    Ok(())
}
