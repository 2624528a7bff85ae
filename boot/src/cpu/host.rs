//! Whether the host runs guests with hardware virtualization, and what to tell a Linux guest
//! when it does not.

/// Kernel parameters that keep Linux from patching in instructions a host without VT-x/AMD-V
/// cannot emulate (see ENVIRONMENT.md: `KVM_SET_CPUID2` does not reach the guest kernel there,
/// the command line does). The kernel truncates a longer `clearcpuid=` list.
pub const COMPAT_KERNEL_PARAMS: &str = "noxsave clearcpuid=smap,smep,popcnt,avx,avx2,aes,pclmulqdq,\
sha_ni,sse4_2,sse4_1,movbe,bmi1,bmi2,cx16,rdrand,rdseed,fsgsbase";

/// True when the host CPU advertises VT-x or AMD-V and KVM is not the software `kvm_pvm`
/// backend. Decides whether [`COMPAT_KERNEL_PARAMS`] are needed.
pub fn host_has_hardware_virtualization() -> bool {
    if std::path::Path::new("/sys/module/kvm_pvm").exists() {
        return false;
    }
    cpu_flags_have_virtualization(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

fn cpu_flags_have_virtualization(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|line| line.starts_with("flags"))
        .any(|line| {
            line.split_whitespace()
                .any(|flag| flag == "vmx" || flag == "svm")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_vmx_and_svm_only_as_whole_flags() {
        assert!(cpu_flags_have_virtualization("flags\t: fpu vmx sse\n"));
        assert!(cpu_flags_have_virtualization("flags\t: fpu svm\n"));
        assert!(!cpu_flags_have_virtualization("flags\t: fpu vmxx sse\n"));
        assert!(!cpu_flags_have_virtualization(
            "model name : vmx\nflags : fpu\n"
        ));
    }

    #[test]
    fn compat_clearcpuid_list_has_no_spaces() {
        let list = COMPAT_KERNEL_PARAMS
            .split_whitespace()
            .find_map(|p| p.strip_prefix("clearcpuid="))
            .unwrap();
        assert!(list.split(',').all(|f| !f.is_empty()));
        assert!(list.contains("cx16") && list.contains("popcnt"));
    }
}
