//! The CPUID table each vCPU sees: KVM's supported set, with this vCPU's APIC id, the
//! hypervisor bit, and (for [`CpuidPolicy::Compat`]) the extensions a host without hardware
//! virtualization cannot emulate hidden as far as CPUID can hide them.

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::Kvm;

use crate::Error;

/// How much of the host CPU to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuidPolicy {
    /// Everything KVM supports.
    Host,
    /// Hide XSAVE, AVX, POPCNT, SSE4, AES and friends.
    Compat,
}

// Leaf 1 ECX bits.
const ECX_HYPERVISOR: u32 = 1 << 31;
const ECX_COMPAT_HIDDEN: u32 = (1 << 1) // PCLMULQDQ
    | (1 << 12) // FMA
    | (1 << 13) // CMPXCHG16B
    | (1 << 19) // SSE4.1
    | (1 << 20) // SSE4.2
    | (1 << 22) // MOVBE
    | (1 << 23) // POPCNT
    | (1 << 25) // AES
    | (1 << 26) // XSAVE
    | (1 << 27) // OSXSAVE
    | (1 << 28) // AVX
    | (1 << 29) // F16C
    | (1 << 30); // RDRAND
// Leaf 7 subleaf 0 EBX bits.
const LEAF7_EBX_COMPAT_HIDDEN: u32 = 1 // FSGSBASE
    | (1 << 3) // BMI1
    | (1 << 5) // AVX2
    | (1 << 7) // SMEP
    | (1 << 8) // BMI2
    | (1 << 16) // AVX-512F
    | (1 << 17) // AVX-512DQ
    | (1 << 18) // RDSEED
    | (1 << 20) // SMAP
    | (1 << 29) // SHA
    | (1 << 30) // AVX-512BW
    | (1 << 31); // AVX-512VL

/// Builds the table for vCPU `index` of `count`.
pub fn build_cpuid(kvm: &Kvm, index: u8, count: u8, policy: CpuidPolicy) -> Result<CpuId, Error> {
    let mut cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(crate::error::kvm("KVM_GET_SUPPORTED_CPUID"))?;
    adjust_entries(cpuid.as_mut_slice(), index, count, policy);
    Ok(cpuid)
}

fn adjust_entries(
    entries: &mut [kvm_bindings::kvm_cpuid_entry2],
    index: u8,
    count: u8,
    policy: CpuidPolicy,
) {
    let compat = policy == CpuidPolicy::Compat;
    for entry in entries.iter_mut() {
        match entry.function {
            1 => {
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                entry.ebx =
                    (entry.ebx & 0x0000_ffff) | (u32::from(index) << 24) | (u32::from(count) << 16);
                entry.ecx |= ECX_HYPERVISOR;
                if compat {
                    entry.ecx &= !ECX_COMPAT_HIDDEN;
                }
            }
            7 if entry.index == 0 && compat => entry.ebx &= !LEAF7_EBX_COMPAT_HIDDEN,
            0xb | 0x1f => entry.edx = u32::from(index),
            0xd if compat => {
                entry.eax = 0;
                entry.ebx = 0;
                entry.ecx = 0;
                entry.edx = 0;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use kvm_bindings::kvm_cpuid_entry2;

    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax: u32::MAX,
            ebx: u32::MAX,
            ecx: u32::MAX,
            edx: u32::MAX,
            ..Default::default()
        }
    }

    #[test]
    fn leaf1_carries_apic_id_count_and_hypervisor_bit() {
        let mut e = [entry(1, 0)];
        e[0].ecx = 0;
        adjust_entries(&mut e, 3, 4, CpuidPolicy::Host);
        assert_eq!(e[0].ebx >> 24, 3);
        assert_eq!((e[0].ebx >> 16) & 0xff, 4);
        assert_eq!(e[0].ebx & 0xffff, 0xffff);
        assert_ne!(e[0].ecx & ECX_HYPERVISOR, 0);
    }

    #[test]
    fn compat_hides_xsave_avx_popcnt_cx16_and_leaf_d() {
        let mut e = [entry(1, 0), entry(7, 0), entry(0xd, 0), entry(0xd, 1)];
        adjust_entries(&mut e, 0, 1, CpuidPolicy::Compat);
        for bit in [13, 23, 26, 28] {
            assert_eq!(e[0].ecx & (1 << bit), 0, "leaf 1 ecx bit {bit}");
        }
        for bit in [0, 5, 7, 20] {
            assert_eq!(e[1].ebx & (1 << bit), 0, "leaf 7 ebx bit {bit}");
        }
        assert_eq!((e[2].eax, e[3].eax), (0, 0));
    }

    #[test]
    fn host_policy_keeps_extensions() {
        let mut e = [entry(1, 0), entry(7, 0)];
        adjust_entries(&mut e, 0, 1, CpuidPolicy::Host);
        assert_ne!(e[0].ecx & (1 << 26), 0);
        assert_eq!(e[1].ebx, u32::MAX);
    }

    #[test]
    fn topology_leaf_reports_x2apic_id() {
        let mut e = [entry(0xb, 0), entry(0xb, 1)];
        adjust_entries(&mut e, 5, 8, CpuidPolicy::Host);
        assert!(e.iter().all(|x| x.edx == 5));
    }
}
