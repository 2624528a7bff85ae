//! Interrupt delivery into KVM: the GSI routing table (the IOAPIC/PIC defaults plus one MSI
//! route per device vector), irqfds, and direct MSIs for interrupts the IOMMU raises itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use kvm_bindings::{
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER,
    KVM_IRQCHIP_PIC_SLAVE, KvmIrqRouting, kvm_irq_routing_entry, kvm_msi,
};
use kvm_ioctls::VmFd;
use resources::GsiAllocator;
use resources::layout::IOAPIC_PINS;
use vmm_sys_util::eventfd::EventFd;

/// The first GSI handed to MSI routes (after the IOAPIC's pins).
const FIRST_MSI_GSI: u32 = IOAPIC_PINS;
/// KVM's limit on routing entries is 4096; stay well inside it.
const LAST_MSI_GSI: u32 = 2047;

fn irqchip_route(gsi: u32, chip: u32, pin: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        ..Default::default()
    };
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    e
}

fn msi_route(gsi: u32, address: u64, data: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    e.u.msi.address_lo = address as u32;
    e.u.msi.address_hi = (address >> 32) as u32;
    e.u.msi.data = data;
    e
}

/// KVM's default routes, which `KVM_SET_GSI_ROUTING` replaces wholesale unless we repeat them:
/// GSIs 0-15 on both PICs and the IOAPIC, 16-23 on the IOAPIC.
fn default_routes() -> Vec<kvm_irq_routing_entry> {
    let mut routes = Vec::new();
    for gsi in 0..IOAPIC_PINS {
        if gsi < 8 {
            routes.push(irqchip_route(gsi, KVM_IRQCHIP_PIC_MASTER, gsi));
        } else if gsi < 16 {
            routes.push(irqchip_route(gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8));
        }
        routes.push(irqchip_route(gsi, KVM_IRQCHIP_IOAPIC, gsi));
    }
    routes
}

struct RoutingState {
    gsis: GsiAllocator,
    msi: BTreeMap<u32, kvm_irq_routing_entry>,
}

/// The VM's interrupt routing.
pub struct IrqRouting {
    vm: Arc<VmFd>,
    state: Mutex<RoutingState>,
}

impl std::fmt::Debug for IrqRouting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqRouting").finish_non_exhaustive()
    }
}

/// One MSI vector: its GSI and the irqfd that fires it.
#[derive(Debug)]
pub struct MsiVector {
    /// The GSI whose route carries the vector's message.
    pub gsi: u32,
    /// Writing this eventfd raises the interrupt (KVM irqfd).
    pub irqfd: EventFd,
}

impl IrqRouting {
    /// The default routing of `vm` (which must have an in-kernel irqchip).
    pub fn new(vm: Arc<VmFd>) -> anyhow::Result<Self> {
        let gsis = GsiAllocator::new(FIRST_MSI_GSI, LAST_MSI_GSI)?;
        let routing = Self {
            vm,
            state: Mutex::new(RoutingState {
                gsis,
                msi: BTreeMap::new(),
            }),
        };
        routing.commit(&routing.lock())?;
        Ok(routing)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoutingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn commit(&self, state: &RoutingState) -> std::io::Result<()> {
        let mut table = KvmIrqRouting::new(0).map_err(std::io::Error::other)?;
        for entry in default_routes()
            .into_iter()
            .chain(state.msi.values().copied())
        {
            table.push(entry).map_err(std::io::Error::other)?;
        }
        self.vm
            .set_gsi_routing(&table)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
    }

    /// A new MSI vector with an irqfd, routed nowhere until [`IrqRouting::set_msi`].
    pub fn new_msi_vector(&self) -> anyhow::Result<MsiVector> {
        let gsi = self.lock().gsis.allocate()?;
        let irqfd = EventFd::new(libc::EFD_NONBLOCK)?;
        self.vm
            .register_irqfd(&irqfd, gsi)
            .map_err(|e| anyhow::anyhow!("KVM_IRQFD for GSI {gsi}: {e}"))?;
        Ok(MsiVector { gsi, irqfd })
    }

    /// Routes `gsi` to the MSI `address`/`data` (None: no route; a trigger then does nothing).
    pub fn set_msi(&self, gsi: u32, message: Option<(u64, u32)>) -> std::io::Result<()> {
        let mut state = self.lock();
        let changed = match message {
            Some((address, data)) => {
                let route = msi_route(gsi, address, data);
                let old = state.msi.insert(gsi, route);
                old.is_none_or(|o| {
                    // SAFETY: both are MSI routes built by `msi_route`, so `u.msi` is the
                    // initialised member of the union.
                    let (a, b) = unsafe { (o.u.msi, route.u.msi) };
                    (a.address_lo, a.address_hi, a.data) != (b.address_lo, b.address_hi, b.data)
                })
            }
            None => state.msi.remove(&gsi).is_some(),
        };
        if changed {
            self.commit(&state)?;
        }
        Ok(())
    }

    /// Sets or clears an IOAPIC input line (level-triggered INTx).
    pub fn set_line(&self, gsi: u32, level: bool) -> std::io::Result<()> {
        self.vm
            .set_irq_line(gsi, level)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
    }

    /// Delivers one MSI right now (for interrupts the VMM raises itself, e.g. IOMMU faults).
    pub fn signal_msi(&self, address: u64, data: u32) -> bool {
        let msi = kvm_msi {
            address_lo: address as u32,
            address_hi: (address >> 32) as u32,
            data,
            ..Default::default()
        };
        match self.vm.signal_msi(msi) {
            Ok(delivered) => delivered > 0,
            Err(e) => {
                log::warn!("KVM_SIGNAL_MSI {address:#x}/{data:#x} failed: {e}");
                false
            }
        }
    }
}

impl iommu::MsiSink for IrqRouting {
    fn send_msi(&self, address: u64, data: u32) -> bool {
        self.signal_msi(address, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chip(r: &kvm_irq_routing_entry) -> (u32, u32) {
        assert_eq!(r.type_, KVM_IRQ_ROUTING_IRQCHIP);
        // SAFETY: the type says `u.irqchip` is the initialised member.
        let c = unsafe { r.u.irqchip };
        (c.irqchip, c.pin)
    }

    #[test]
    fn default_routes_cover_the_pics_and_the_ioapic() {
        let routes = default_routes();
        // 16 PIC routes + 24 IOAPIC routes.
        assert_eq!(routes.len(), 40);
        let ioapic: Vec<u32> = routes
            .iter()
            .filter(|r| chip(r).0 == KVM_IRQCHIP_IOAPIC)
            .map(|r| r.gsi)
            .collect();
        assert_eq!(ioapic, (0..24).collect::<Vec<_>>());
        let slave = routes
            .iter()
            .find(|r| r.gsi == 9 && chip(r).0 == KVM_IRQCHIP_PIC_SLAVE)
            .unwrap();
        assert_eq!(chip(slave).1, 1);
    }

    #[test]
    fn msi_route_splits_the_address() {
        let r = msi_route(30, 0x1_fee0_1000, 0x4041);
        // SAFETY: `msi_route` builds an MSI route, so `u.msi` is the initialised member.
        let m = unsafe { r.u.msi };
        assert_eq!(
            (m.address_lo, m.address_hi, m.data),
            (0xfee0_1000, 1, 0x4041)
        );
    }
}
