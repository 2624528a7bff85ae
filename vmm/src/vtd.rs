//! The emulated Intel VT-d unit in the VM: built from `--iommu intel,...`, its register page on
//! the MMIO bus at `VTD_START`, its interrupts through the VM's MSI path, the DMAR table that
//! describes it, and its counters in the log when the VM stops.

use std::sync::Arc;

use boot::acpi::DmarConfig;
use iommu::{VtdConfig, VtdUnit};
use resources::layout::{VTD_SIZE, VTD_START};
use vm_device::MutDeviceMmio;
use vm_device::bus::{MmioAddress, MmioAddressOffset};
use vm_memory::GuestMemoryMmap;

use crate::cli::IommuSpec;
use crate::interrupts::IrqRouting;
use crate::io_bus::IoBus;

/// Forwards MMIO in the register page to the unit.
struct RegisterPage(Arc<VtdUnit>);

impl MutDeviceMmio for RegisterPage {
    fn mmio_read(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        self.0.mmio_read(offset, data);
    }

    fn mmio_write(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.0.mmio_write(offset, data);
    }
}

/// Builds the unit `spec` describes and maps its registers on `bus`.
pub fn create(
    spec: &IommuSpec,
    guest: &GuestMemoryMmap,
    routing: Arc<IrqRouting>,
    bus: &mut IoBus,
) -> anyhow::Result<Arc<VtdUnit>> {
    let config = VtdConfig {
        aw_bits: spec.aw_bits,
        caching_mode: spec.caching_mode,
        pass_through: spec.pass_through,
        ..VtdConfig::default()
    };
    let unit = VtdUnit::new(config, guest.clone(), routing)
        .map_err(|e| anyhow::anyhow!("--iommu: {e}"))?;
    bus.add_mmio(
        VTD_START,
        VTD_SIZE,
        Arc::new(std::sync::Mutex::new(RegisterPage(unit.clone()))),
    )?;
    log::info!(
        "Intel VT-d at {VTD_START:#x}: {}-bit, caching mode {}, pass-through {}, CAP {:#x} ECAP {:#x}",
        spec.aw_bits,
        on_off(spec.caching_mode),
        on_off(spec.pass_through),
        unit.cap(),
        unit.ecap()
    );
    Ok(unit)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The DMAR table's view of the unit.
pub fn dmar_config(spec: &IommuSpec) -> DmarConfig {
    DmarConfig {
        host_address_width: spec.aw_bits,
        intr_remap: false,
        register_base: VTD_START,
    }
}

/// One line per counter group, for the log when the VM stops. The first line's format is
/// parsed by the tests: "VT-d: DMA translations by domain id: 1=120 2=7".
pub fn report(unit: &VtdUnit) {
    let s = unit.stats();
    let domains: Vec<String> = s
        .translations_per_domain
        .iter()
        .map(|(did, n)| format!("{did}={n}"))
        .collect();
    log::info!("VT-d: DMA translations by domain id: {}", domains.join(" "));
    log::info!(
        "VT-d: IOTLB {} hits / {} misses, context cache {} hits / {} misses, {} untranslated, \
         faults {} recorded / {} dropped / {} suppressed, {} waits, {} queue errors",
        s.iotlb_hits,
        s.iotlb_misses,
        s.context_hits,
        s.context_misses,
        s.untranslated,
        s.faults_recorded,
        s.faults_dropped,
        s.faults_suppressed,
        s.waits,
        s.queue_errors
    );
    let invalidations: Vec<String> = s
        .invalidations
        .iter()
        .map(|(kind, n)| format!("{kind:?}={n}"))
        .collect();
    log::info!("VT-d: invalidations: {}", invalidations.join(" "));
}
