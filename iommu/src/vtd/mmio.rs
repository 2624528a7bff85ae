//! Register accesses: decoding 4- and 8-byte reads and writes into register semantics
//! (read-only fields, RW1C bits, one-shot and level commands).

use super::config::VtdConfig;
use super::regs::{self, *};
use super::state::{Effects, State};
use super::trace::VtdEvent;

/// The 64-bit register containing `offset`, if any.
fn wide_register(offset: u64) -> Option<u64> {
    let base = offset & !7;
    WIDE.contains(&base).then_some(base)
}

impl State {
    /// The 32-bit value at dword-aligned `offset`.
    pub(crate) fn read_dword(&self, offset: u64, config: &VtdConfig) -> u32 {
        if let Some(base) = wide_register(offset) {
            let value = self.read_wide(base, config);
            return if offset & 4 != 0 {
                (value >> 32) as u32
            } else {
                value as u32
            };
        }
        match offset {
            VER => VER_VALUE,
            GSTS => self.regs.gsts,
            FSTS => self.fsts(),
            FECTL => self.regs.fectl,
            FEDATA => self.regs.fedata,
            FEADDR => self.regs.feaddr,
            FEUADDR => self.regs.feuaddr,
            ICS => self.regs.ics,
            IECTL => self.regs.iectl,
            IEDATA => self.regs.iedata,
            IEADDR => self.regs.ieaddr,
            IEUADDR => self.regs.ieuaddr,
            o if o >= FRCD_BASE => self.faults.read_dword(o - FRCD_BASE),
            // GCMD is write-only, PMEN reads 0 (no protected memory regions), others unknown.
            _ => 0,
        }
    }

    fn read_wide(&self, base: u64, config: &VtdConfig) -> u64 {
        match base {
            CAP => config.cap(),
            ECAP => config.ecap(),
            RTADDR => self.regs.rtaddr,
            CCMD => self.regs.ccmd,
            IQH => self.regs.iqh,
            IQT => self.regs.iqt,
            IQA => self.regs.iqa,
            IOTLB => self.regs.iotlb,
            // IVA is write-only; IQER has no error information to give.
            _ => 0,
        }
    }

    /// A register write of `size` bytes (4 or 8, naturally aligned) at `offset`.
    pub(crate) fn write(&mut self, offset: u64, size: usize, value: u64, fx: &mut Effects) {
        let name = regs::name(offset, self.config.fault_records);
        self.trace(|| VtdEvent::RegisterWrite {
            offset,
            name,
            size,
            value,
        });
        if let Some(base) = wide_register(offset) {
            let (value, mask) = match (size, offset & 4) {
                (8, _) => (value, u64::MAX),
                (_, 0) => (value & 0xffff_ffff, 0xffff_ffff),
                _ => (value << 32, 0xffff_ffff << 32),
            };
            self.write_wide(base, value, mask, fx);
        } else if size == 8 {
            self.write_dword(offset, value as u32, fx);
            self.write_dword(offset + 4, (value >> 32) as u32, fx);
        } else {
            self.write_dword(offset, value as u32, fx);
        }
    }

    /// A write to a 64-bit register; `mask` says which bytes the access covered.
    fn write_wide(&mut self, base: u64, value: u64, mask: u64, fx: &mut Effects) {
        let merge =
            |old: u64, writable: u64| (old & !(mask & writable)) | (value & mask & writable);
        match base {
            RTADDR => {
                if value & mask & RTADDR_TTM != 0 {
                    log::warn!(
                        "vtd: RTADDR translation table mode {} ignored (legacy mode only)",
                        (value >> 10) & 3
                    );
                }
                self.regs.rtaddr = merge(self.regs.rtaddr, RTADDR_ADDR);
            }
            CCMD => {
                if self.regs.qi_enabled() {
                    log::warn!("vtd: CCMD write ignored while queued invalidation is enabled");
                    return;
                }
                self.regs.ccmd = merge(self.regs.ccmd, CCMD_WRITABLE);
                if mask & CCMD_ICC != 0 && self.regs.ccmd & CCMD_ICC != 0 {
                    self.register_context_invalidation(fx);
                }
            }
            IQT => {
                self.regs.iqt = merge(self.regs.iqt, IQ_INDEX_MASK);
                self.queue_tail_written(fx);
            }
            IQA => self.regs.iqa = merge(self.regs.iqa, IQA_WRITABLE),
            IVA => self.regs.iva = merge(self.regs.iva, IVA_WRITABLE),
            IOTLB => {
                if self.regs.qi_enabled() {
                    log::warn!("vtd: IOTLB write ignored while queued invalidation is enabled");
                    return;
                }
                self.regs.iotlb = merge(self.regs.iotlb, IOTLB_WRITABLE);
                if mask & IOTLB_IVT != 0 && self.regs.iotlb & IOTLB_IVT != 0 {
                    self.register_iotlb_invalidation(fx);
                }
            }
            // CAP, ECAP, IQH, IQER are read-only.
            _ => {}
        }
    }

    fn write_dword(&mut self, offset: u64, value: u32, fx: &mut Effects) {
        match offset {
            GCMD => self.global_command(value, fx),
            FSTS => {
                self.regs.fsts &= !(value & FSTS_RW1C);
                self.settle_fault_pending();
                // Clearing IQE lets the queue resume at IQH (Linux has overwritten the bad
                // descriptor with its wait descriptor by then).
                self.claim_queue(fx);
            }
            FECTL => {
                self.regs.fectl = (self.regs.fectl & !CTL_IM) | (value & CTL_IM);
                if self.regs.fectl & (CTL_IM | CTL_IP) == CTL_IP {
                    fx.msis.push(self.regs.fault_msi());
                    self.regs.fectl &= !CTL_IP;
                }
            }
            FEDATA => self.regs.fedata = value & MSI_DATA_MASK,
            FEADDR => self.regs.feaddr = value & MSI_ADDR_MASK,
            FEUADDR => self.regs.feuaddr = value,
            ICS if value & ICS_IWC != 0 => {
                self.regs.ics &= !ICS_IWC;
                self.regs.iectl &= !CTL_IP;
            }
            IECTL => {
                self.regs.iectl = (self.regs.iectl & !CTL_IM) | (value & CTL_IM);
                if self.regs.iectl & (CTL_IM | CTL_IP) == CTL_IP {
                    fx.msis.push(self.regs.completion_msi());
                    self.regs.iectl &= !CTL_IP;
                }
            }
            IEDATA => self.regs.iedata = value & MSI_DATA_MASK,
            IEADDR => self.regs.ieaddr = value & MSI_ADDR_MASK,
            IEUADDR => self.regs.ieuaddr = value,
            o if o >= FRCD_BASE => {
                self.faults.write_dword(o - FRCD_BASE, value);
                self.settle_fault_pending();
            }
            // VER, GSTS, PMEN (no PLMR/PHMR) and unknown offsets ignore writes.
            _ => {}
        }
    }

    /// GCMD: level commands act when they differ from GSTS, one-shot commands when written as
    /// 1 (Linux writes its whole cached command image each time). Status changes before the
    /// write returns: Linux polls GSTS with a timeout that ends in a panic.
    fn global_command(&mut self, value: u32, fx: &mut Effects) {
        let te = value & GCMD_TE != 0;
        if te != self.regs.translation_enabled() {
            self.regs.gsts ^= GSTS_TES;
            self.trace(|| VtdEvent::Command {
                name: "TE",
                enable: te,
            });
            self.flush_caches();
            // Every address space changes (identity <-> translated): mirrors start over.
            self.end_all_spaces(fx);
            fx.drain = true;
        }
        if value & GCMD_SRTP != 0 {
            self.regs.root_table = self.regs.rtaddr & RTADDR_ADDR;
            self.regs.gsts |= GSTS_RTPS;
            self.trace(|| VtdEvent::Command {
                name: "SRTP",
                enable: true,
            });
            self.flush_caches();
            self.end_all_spaces(fx);
            fx.drain = true;
        }
        if value & GCMD_WBF != 0 {
            // Nothing is buffered: the flush is complete at once (WBFS reads 0).
            self.trace(|| VtdEvent::Command {
                name: "WBF",
                enable: true,
            });
        }
        let qie = value & GCMD_QIE != 0;
        if qie != self.regs.qi_enabled() {
            self.set_queued_invalidation(qie);
        }
        // SFL/EAFL (no AFL), IRE/SIRTP/CFI (no IR) are not supported: their status stays 0.
    }

    fn set_queued_invalidation(&mut self, enable: bool) {
        if enable {
            let qs = (self.regs.iqa & 7) as u32;
            self.regs.queue_base = self.regs.iqa & !0xfff;
            self.regs.queue_len = 1u64 << (qs + 8);
            self.regs.iqh = 0;
            self.regs.gsts |= GSTS_QIES;
        } else if self.regs.iqh == self.regs.iqt {
            self.regs.gsts &= !GSTS_QIES;
            self.regs.iqh = 0;
        } else {
            log::warn!(
                "vtd: queued invalidation not disabled: head {:#x} != tail {:#x}",
                self.regs.iqh,
                self.regs.iqt
            );
            return;
        }
        self.trace(|| VtdEvent::Command {
            name: "QIE",
            enable,
        });
    }
}
