//! When KVM cannot run an instruction (`KVM_EXIT_INTERNAL_ERROR`): on hosts without VT-x/AMD-V
//! the host emulates guest kernel code and knows only part of x86 (ENVIRONMENT.md). A few
//! failures have a safe way on; everything else is reported with the registers and the bytes of
//! the instruction, because "internal error" alone costs people hours.

use std::fmt::Write as _;

use kvm_bindings::{
    KVM_INTERNAL_ERROR_EMULATION, KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES,
};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// `int3`: the kernel's own self-test and ftrace patching use it.
const INT3: u8 = 0xcc;
/// `fwait`: with x87 exceptions masked nothing is pending, so skipping it changes nothing.
const FWAIT: u8 = 0x9b;
/// The #BP vector.
const BP_VECTOR: u8 = 3;
/// How often one RIP may fail in a row before we give up.
const MAX_REPEATS: u32 = 16;

/// What happened to an internal-error exit.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovery {
    /// The vCPU can go on; the string says how (for the debug log).
    Resumed(&'static str),
    /// It cannot; the string is the report.
    Fatal(String),
}

/// The instruction bytes KVM reported with an emulation failure, if it did.
fn reported_instruction(fd: &mut VcpuFd) -> (u32, Option<Vec<u8>>) {
    let run = fd.get_kvm_run();
    // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so `internal` and its superset
    // `emulation_failure` are the active members of the union; both are plain data.
    let failure = unsafe { run.__bindgen_anon_1.emulation_failure };
    let suberror = failure.suberror;
    let has_bytes = suberror == KVM_INTERNAL_ERROR_EMULATION
        && failure.ndata >= 3
        && failure.flags & u64::from(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) != 0;
    if !has_bytes {
        return (suberror, None);
    }
    // SAFETY: as above; the instruction-bytes flag says this member was filled in.
    let insn = unsafe { failure.__bindgen_anon_1.__bindgen_anon_1 };
    let len = usize::from(insn.insn_size).min(insn.insn_bytes.len());
    (suberror, insn.insn_bytes.get(..len).map(<[u8]>::to_vec))
}

/// Up to 15 bytes at the vCPU's instruction pointer, read through its page tables.
fn bytes_at_rip(fd: &VcpuFd, mem: &GuestMemoryMmap) -> Option<Vec<u8>> {
    let regs = fd.get_regs().ok()?;
    let sregs = fd.get_sregs().ok()?;
    let linear = sregs.cs.base.wrapping_add(regs.rip);
    let t = fd.translate_gva(linear).ok()?;
    if t.valid == 0 {
        return None;
    }
    let mut bytes = vec![0u8; 15];
    // Stop at the page end: the next page may not be mapped contiguously.
    let room = 0x1000 - (t.physical_address & 0xfff) as usize;
    bytes.truncate(room.min(15));
    mem.read_slice(&mut bytes, GuestAddress(t.physical_address))
        .ok()?;
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Registers, control registers and the bytes at RIP, for a crash report.
pub fn describe_state(fd: &VcpuFd, mem: &GuestMemoryMmap) -> String {
    let mut out = String::new();
    match fd.get_regs() {
        Ok(r) => {
            let _ = writeln!(
                out,
                "  rip {:016x} rsp {:016x} rflags {:08x}\n  rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}\n  rsi {:016x} rdi {:016x} rbp {:016x}\n  r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}\n  r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}",
                r.rip,
                r.rsp,
                r.rflags,
                r.rax,
                r.rbx,
                r.rcx,
                r.rdx,
                r.rsi,
                r.rdi,
                r.rbp,
                r.r8,
                r.r9,
                r.r10,
                r.r11,
                r.r12,
                r.r13,
                r.r14,
                r.r15
            );
        }
        Err(e) => {
            let _ = writeln!(out, "  (registers unavailable: {e})");
        }
    }
    if let Ok(s) = fd.get_sregs() {
        let _ = writeln!(
            out,
            "  cr0 {:08x} cr2 {:016x} cr3 {:016x} cr4 {:08x} efer {:x}\n  cs {:04x} (dpl {}, {}) ss {:04x} gdt {:x}/{:x} idt {:x}/{:x}",
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.efer,
            s.cs.selector,
            s.cs.dpl,
            if s.cs.l != 0 {
                "64-bit"
            } else if s.cs.db != 0 {
                "32-bit"
            } else {
                "16-bit"
            },
            s.ss.selector,
            s.gdt.base,
            s.gdt.limit,
            s.idt.base,
            s.idt.limit
        );
    }
    match bytes_at_rip(fd, mem) {
        Some(b) => {
            let _ = write!(out, "  bytes at rip: {}", hex(&b));
        }
        None => {
            let _ = write!(out, "  bytes at rip: (not mapped)");
        }
    }
    out
}

/// Handles an internal-error exit: the instruction failures with a safe way on resume, anything
/// else is fatal. `last` tracks repeated failures at one RIP.
pub fn recover(fd: &mut VcpuFd, mem: &GuestMemoryMmap, last: &mut Option<(u64, u32)>) -> Recovery {
    let (suberror, reported) = reported_instruction(fd);
    let bytes = reported.or_else(|| bytes_at_rip(fd, mem));
    let Ok(mut regs) = fd.get_regs() else {
        return Recovery::Fatal("internal error, and the registers cannot be read".into());
    };
    let repeats = match last {
        Some((rip, n)) if *rip == regs.rip => *n + 1,
        _ => 1,
    };
    *last = Some((regs.rip, repeats));

    let first = bytes.as_ref().and_then(|b| b.first().copied());
    if suberror == KVM_INTERNAL_ERROR_EMULATION && repeats <= MAX_REPEATS {
        match first {
            Some(INT3) => {
                regs.rip = regs.rip.wrapping_add(1);
                let injected = fd.set_regs(&regs).is_ok()
                    && fd.get_vcpu_events().is_ok_and(|mut events| {
                        events.exception.injected = 1;
                        events.exception.nr = BP_VECTOR;
                        events.exception.has_error_code = 0;
                        events.exception.error_code = 0;
                        fd.set_vcpu_events(&events).is_ok()
                    });
                if injected {
                    return Recovery::Resumed("int3 re-injected as #BP");
                }
            }
            Some(FWAIT) => {
                regs.rip = regs.rip.wrapping_add(1);
                if fd.set_regs(&regs).is_ok() {
                    return Recovery::Resumed("fwait skipped");
                }
            }
            _ => {}
        }
    }

    let what = match suberror {
        KVM_INTERNAL_ERROR_EMULATION => "KVM could not emulate an instruction",
        2 => "KVM hit an exception while delivering an exception",
        3 => "KVM could not deliver an event",
        4 => "KVM saw an unexpected exit reason",
        _ => "KVM internal error",
    };
    let insn = bytes.as_deref().map_or_else(|| "unknown".to_string(), hex);
    let hint = if suberror == KVM_INTERNAL_ERROR_EMULATION {
        "\n  hint: on hosts without VT-x/AMD-V, --cpu compat keeps the kernel from using \
         instructions the host cannot emulate"
    } else {
        ""
    };
    Recovery::Fatal(format!(
        "{what} (suberror {suberror}, instruction {insn}, {repeats} time(s) at this rip){hint}\n{}",
        describe_state(fd, mem)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_formats_bytes() {
        assert_eq!(hex(&[0xf0, 0x48, 0x0f]), "f0 48 0f");
        assert_eq!(hex(&[]), "");
    }
}
