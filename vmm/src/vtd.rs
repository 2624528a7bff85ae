//! The emulated Intel VT-d unit in the VM: built from `--iommu intel,...`, its register page on
//! the MMIO bus at `VTD_START`, its interrupts through the VM's MSI path, the DMAR table that
//! describes it, and its counters in the log when the VM stops.

use std::fs::{File, OpenOptions};
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use boot::acpi::DmarConfig;
use iommu::{VtdConfig, VtdEvent, VtdUnit};
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

/// Sends every event of `unit` to `path`, one line each, flushed per line so a crash loses
/// nothing.
fn trace_to(unit: &VtdUnit, path: &Path) -> anyhow::Result<()> {
    let file =
        File::create(path).map_err(|e| anyhow::anyhow!("--iommu-trace {}: {e}", path.display()))?;
    let out = Mutex::new(LineWriter::new(file));
    let started = Instant::now();
    unit.set_tracer(Some(Arc::new(move |event: &VtdEvent| {
        let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(out, "{:12.6} {event}", started.elapsed().as_secs_f64());
    })));
    Ok(())
}

/// Builds the unit `spec` describes and maps its registers on `bus`.
pub fn create(
    spec: &IommuSpec,
    trace: Option<&Path>,
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
    if let Some(path) = trace {
        trace_to(&unit, path)?;
    }
    bus.add_mmio(
        VTD_START,
        VTD_SIZE,
        Arc::new(Mutex::new(RegisterPage(unit.clone()))),
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
pub fn report(unit: &VtdUnit, trace: Option<&Path>) {
    if let Some(path) = trace {
        unit.set_tracer(None);
        let dump = OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| {
                writeln!(
                    f,
                    "--- state when the VM stopped ---\n{}",
                    unit.dump_state()
                )
            });
        if let Err(e) = dump {
            log::warn!("--iommu-trace {}: {e}", path.display());
        }
    }
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
