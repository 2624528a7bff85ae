//! Puts the guest in memory and its vCPUs in their start state, by calling the `boot` crate:
//! kernel, command line (with the compat parameters where the host needs them), initrd, ACPI
//! tables and the boot parameters of the chosen entry protocol.

use boot::cpu::{self, COMPAT_KERNEL_PARAMS, CpuidPolicy};
use boot::loader::{self, EntryPoint, EntryPreference};
use boot::params::{self, BootLocations};
use kvm_ioctls::{Kvm, VcpuFd};
use vm_memory::GuestMemoryMmap;

use crate::cli::{BootEntryChoice, CpuChoice};
use crate::config::VmConfig;

/// What the vCPUs need to know about the loaded guest.
#[derive(Debug)]
pub struct BootPlan {
    entry: EntryPoint,
    policy: CpuidPolicy,
}

/// Decides the CPU policy for `choice` on this host, and says why in the log.
fn cpu_policy(choice: CpuChoice) -> CpuidPolicy {
    match choice {
        CpuChoice::Host => CpuidPolicy::Host,
        CpuChoice::Compat => CpuidPolicy::Compat,
        CpuChoice::Auto if cpu::host_has_hardware_virtualization() => CpuidPolicy::Host,
        CpuChoice::Auto => {
            log::debug!("no VT-x/AMD-V on this host: hiding the extensions KVM cannot emulate");
            CpuidPolicy::Compat
        }
    }
}

/// The command line the guest gets: the user's, plus the compat parameters for a Linux guest.
fn guest_cmdline(user: &str, policy: CpuidPolicy, entry: EntryPoint) -> String {
    if policy == CpuidPolicy::Compat && !matches!(entry, EntryPoint::MicroGuest(_)) {
        log::info!(
            "compat CPU model (without VT-x/AMD-V, KVM emulates guest kernel code and cannot \
             run every instruction-set extension): appending to the kernel command line \
             (--cpu host turns this off): {COMPAT_KERNEL_PARAMS}"
        );
        if user.trim().is_empty() {
            COMPAT_KERNEL_PARAMS.to_string()
        } else {
            format!("{} {COMPAT_KERNEL_PARAMS}", user.trim_end())
        }
    } else {
        user.to_string()
    }
}

/// Loads everything `config` names into `mem`.
pub fn load(config: &VmConfig, mem: &GuestMemoryMmap) -> anyhow::Result<BootPlan> {
    let preference = match config.boot_entry {
        BootEntryChoice::Auto => EntryPreference::Auto,
        BootEntryChoice::Pvh => EntryPreference::Pvh,
        BootEntryChoice::Linux64 => EntryPreference::Linux64,
    };
    let kernel = loader::load_kernel(mem, &config.kernel, preference)
        .map_err(|e| anyhow::anyhow!("--kernel {e}"))?;
    log::info!("{}", kernel.description);
    let policy = cpu_policy(config.cpu);

    let cmdline = guest_cmdline(&config.cmdline, policy, kernel.entry);
    let cmdline =
        params::write_cmdline(mem, &cmdline).map_err(|e| anyhow::anyhow!("--cmdline: {e}"))?;
    let initrd = match &config.initrd {
        Some(path) => Some(
            loader::load_initrd(
                mem,
                config.memory,
                path,
                kernel.kernel_end,
                kernel.setup_header.as_ref(),
            )
            .map_err(|e| anyhow::anyhow!("--initrd {e}"))?,
        ),
        None => None,
    };
    let mut at = BootLocations {
        mem_size: config.memory,
        cmdline,
        initrd,
        rsdp: 0,
    };

    cpu::write_shared_tables(mem)?;
    match kernel.entry {
        EntryPoint::MicroGuest(_) => params::write_micro_guest_info(mem, &at, config.cpus)?,
        EntryPoint::Linux64(_) | EntryPoint::Pvh(_) => {
            let acpi = boot::acpi::AcpiConfig {
                num_cpus: config.cpus,
                dmar: config.iommu.as_ref().map(crate::vtd::dmar_config),
            };
            at.rsdp = boot::acpi::build_acpi_tables(mem, &acpi)?;
            if let EntryPoint::Pvh(_) = kernel.entry {
                params::write_pvh_start_info(mem, &at)?;
            }
            // The zero page is harmless under PVH and lets a kernel entered either way find
            // the same facts.
            params::write_zero_page(mem, kernel.setup_header.as_ref(), &at)?;
        }
    }
    Ok(BootPlan {
        entry: kernel.entry,
        policy,
    })
}

/// Sets up vCPU `index` of `count`.
pub fn configure_vcpu(
    kvm: &Kvm,
    fd: &VcpuFd,
    index: u8,
    count: u8,
    plan: &BootPlan,
) -> anyhow::Result<()> {
    cpu::configure_vcpu(kvm, fd, index, count, plan.policy, plan.entry)
        .map_err(|e| anyhow::anyhow!("vCPU {index}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_parameters_go_after_the_users_for_linux_only() {
        let linux = EntryPoint::Linux64(0);
        assert_eq!(
            guest_cmdline("console=ttyS0 ", CpuidPolicy::Compat, linux),
            format!("console=ttyS0 {COMPAT_KERNEL_PARAMS}")
        );
        assert_eq!(
            guest_cmdline("console=ttyS0", CpuidPolicy::Host, linux),
            "console=ttyS0"
        );
        assert_eq!(
            guest_cmdline("x", CpuidPolicy::Compat, EntryPoint::MicroGuest(0)),
            "x"
        );
    }
}
