//! Local APIC LVT set-up: LINT0 in ExtINT mode (the 8259 PIC's output) and LINT1 as NMI, as
//! firmware leaves them and as Linux expects on a PC.

use kvm_ioctls::VcpuFd;

use crate::Error;

const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const DELIVERY_MODE_EXTINT: u32 = 0b111;
const DELIVERY_MODE_NMI: u32 = 0b100;

fn with_delivery_mode(reg: u32, mode: u32) -> u32 {
    (reg & !0x700) | (mode << 8)
}

fn get_reg(regs: &[std::os::raw::c_char], offset: usize) -> u32 {
    let mut bytes = [0u8; 4];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = regs.get(offset + i).copied().unwrap_or(0) as u8;
    }
    u32::from_le_bytes(bytes)
}

fn set_reg(regs: &mut [std::os::raw::c_char], offset: usize, value: u32) {
    for (i, b) in value.to_le_bytes().into_iter().enumerate() {
        if let Some(slot) = regs.get_mut(offset + i) {
            *slot = b as std::os::raw::c_char;
        }
    }
}

/// Programs LINT0/LINT1 on `vcpu`.
pub fn configure_lapic(vcpu: &VcpuFd) -> Result<(), Error> {
    let mut lapic = vcpu
        .get_lapic()
        .map_err(crate::error::kvm("KVM_GET_LAPIC"))?;
    let lvt0 = get_reg(&lapic.regs, APIC_LVT0);
    set_reg(
        &mut lapic.regs,
        APIC_LVT0,
        with_delivery_mode(lvt0, DELIVERY_MODE_EXTINT),
    );
    let lvt1 = get_reg(&lapic.regs, APIC_LVT1);
    set_reg(
        &mut lapic.regs,
        APIC_LVT1,
        with_delivery_mode(lvt1, DELIVERY_MODE_NMI),
    );
    vcpu.set_lapic(&lapic)
        .map_err(crate::error::kvm("KVM_SET_LAPIC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_mode_lands_in_bits_8_to_10() {
        assert_eq!(
            with_delivery_mode(0x0001_0000, DELIVERY_MODE_EXTINT),
            0x0001_0700
        );
        assert_eq!(
            with_delivery_mode(0x0000_0700, DELIVERY_MODE_NMI),
            0x0000_0400
        );
        let mut regs = [0 as std::os::raw::c_char; 0x400];
        set_reg(&mut regs, APIC_LVT1, 0x1234_5678);
        assert_eq!(get_reg(&regs, APIC_LVT1), 0x1234_5678);
    }
}
