//! The PCI side of the machine: the root bus behind the host bridge (with the IOMMU, if any,
//! translating every function's DMA), its configuration mechanisms and MMIO window on the VM's
//! buses, and the virtio devices the command line asks for, each with MSI-X vectors backed by
//! KVM routes and irqfds and an INTx line on the IOAPIC.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

use devices::virtio::pci::{IoEventRegistry, VirtioPciDevice};
use devices::virtio::{Block, Console, Rng, VirtioDevice};
use iommu::{DmaTranslate, RequesterId};
use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use pci::{DeviceDma, InterruptVectors, MsiMessage, PciBus};
use resources::layout::{PCI_ECAM_SIZE, PCI_ECAM_START, PCI_MMIO32_SIZE, PCI_MMIO32_START};
use resources::ports::{PCI_CONFIG_ADDRESS, pci_intx_gsi};
use vm_device::bus::{MmioAddress, MmioAddressOffset, PioAddress, PioAddressOffset};
use vm_device::{MutDeviceMmio, MutDevicePio};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::cli::Output;
use crate::config::VmConfig;
use crate::event_loop::Subscriber;
use crate::interrupts::{IrqRouting, MsiVector};
use crate::io_bus::IoBus;

/// One function's interrupts: MSI-X vectors allocated on first use, and its INTx GSI.
#[derive(Debug)]
struct FunctionVectors {
    routing: Arc<IrqRouting>,
    intx_gsi: u32,
    vectors: Mutex<BTreeMap<u16, MsiVector>>,
}

impl FunctionVectors {
    fn with_vector<T>(
        &self,
        index: u16,
        f: impl FnOnce(&MsiVector) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        let mut vectors = self.vectors.lock().unwrap_or_else(PoisonError::into_inner);
        let vector = match vectors.entry(index) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(
                self.routing
                    .new_msi_vector()
                    .map_err(std::io::Error::other)?,
            ),
        };
        f(vector)
    }
}

impl InterruptVectors for FunctionVectors {
    fn update(&self, index: u16, msg: MsiMessage, masked: bool) -> std::io::Result<()> {
        let route = (!masked).then_some((msg.address, msg.data));
        self.with_vector(index, |v| self.routing.set_msi(v.gsi, route))
    }

    fn trigger(&self, index: u16) -> std::io::Result<()> {
        self.with_vector(index, |v| v.irqfd.write(1))
    }

    fn set_intx(&self, asserted: bool) -> std::io::Result<()> {
        self.routing.set_line(self.intx_gsi, asserted)
    }
}

/// Queue notification addresses as KVM ioeventfds: a guest's notify write signals the queue's
/// eventfd in the kernel, without an exit to a vCPU thread.
#[derive(Debug)]
struct KvmIoEvents(Arc<VmFd>);

impl IoEventRegistry for KvmIoEvents {
    fn register(&self, addr: u64, _len: u32, fd: &EventFd) -> std::io::Result<()> {
        // No datamatch: any write size matches (kvm-ioctls then registers length 0).
        self.0
            .register_ioevent(fd, &IoEventAddress::Mmio(addr), NoDatamatch)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
    }

    fn unregister(&self, addr: u64, _len: u32, fd: &EventFd) -> std::io::Result<()> {
        self.0
            .unregister_ioevent(fd, &IoEventAddress::Mmio(addr), NoDatamatch)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
    }
}

/// 0xCF8..0xCFF.
struct ConfigPorts(Arc<PciBus>);

impl MutDevicePio for ConfigPorts {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        self.0.config_io_read(offset, data);
    }
    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        self.0.config_io_write(offset, data);
    }
}

/// The ECAM window.
struct Ecam(Arc<PciBus>);

impl MutDeviceMmio for Ecam {
    fn mmio_read(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        self.0.ecam_read(offset, data);
    }
    fn mmio_write(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.0.ecam_write(offset, data);
    }
}

/// The 32-bit memory window where BARs live.
struct BarWindow(Arc<PciBus>);

impl MutDeviceMmio for BarWindow {
    fn mmio_read(&mut self, base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        if !self.0.mmio_read(base.0 + offset, data) {
            data.fill(0xff);
        }
    }
    fn mmio_write(&mut self, base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.0.mmio_write(base.0 + offset, data);
    }
}

/// A device to attach: its log name, its transport view and its event-loop view.
type NamedDevice = (String, Arc<Mutex<dyn VirtioDevice>>, Subscriber);

fn disk_id(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disk".into())
}

/// What the rest of the machine needs from the PCI devices.
pub struct PciDevices {
    /// Event-loop subscribers, one per virtio device.
    pub subscribers: Vec<Subscriber>,
    /// The write end of the virtio console's input pipe, when the console is on the terminal.
    pub console_input: Option<std::fs::File>,
}

/// A pipe for terminal input to the virtio console: (read end for the device, write end for the
/// terminal reader), both non-blocking so neither side can stall the event loop.
fn console_pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

/// Builds the bus and the devices `config` names.
pub fn create(
    config: &VmConfig,
    guest: &GuestMemoryMmap,
    vm: &Arc<VmFd>,
    routing: &Arc<IrqRouting>,
    translator: Option<Arc<dyn DmaTranslate>>,
    io: &mut IoBus,
) -> anyhow::Result<PciDevices> {
    let mut bus = PciBus::new(guest.clone(), translator.clone());
    let mut subscribers: Vec<Subscriber> = Vec::new();
    let mut devices: Vec<NamedDevice> = Vec::new();
    for disk in &config.disks {
        let file = disk.file.try_clone()?;
        let block = Arc::new(Mutex::new(Block::new(
            file,
            disk.readonly,
            &disk_id(&disk.path),
        )?));
        let name = format!(
            "virtio-blk {}{}",
            disk.path.display(),
            if disk.readonly { " (read-only)" } else { "" }
        );
        devices.push((name, block.clone(), block));
    }
    let mut console_input = None;
    if let Some(out) = &config.console {
        let output = crate::terminal::open_output(out, "--console")?;
        let input = if *out == Output::Stdio {
            let (read, write) = console_pipe()?;
            console_input = Some(write);
            Some(read)
        } else {
            None
        };
        let console = Arc::new(Mutex::new(Console::new(output, input)?));
        devices.push(("virtio-console".into(), console.clone(), console));
    }
    if config.rng {
        let rng = Arc::new(Mutex::new(Rng::new()?));
        devices.push(("virtio-rng".into(), rng.clone(), rng));
    }
    for (name, device, subscriber) in devices {
        let slot = bus.free_slot()?;
        let intx_gsi = pci_intx_gsi(slot, 0);
        let vectors = Arc::new(FunctionVectors {
            routing: routing.clone(),
            intx_gsi,
            vectors: Mutex::new(BTreeMap::new()),
        });
        let dma_guest = guest.clone();
        let dma_translator = translator.clone();
        let rid = RequesterId::new(0, 0, slot, 0);
        let dma =
            Arc::new(move || DeviceDma::memory(dma_guest.clone(), rid, dma_translator.clone()));
        let mut function =
            VirtioPciDevice::new(device, vectors, dma, translator.is_some(), intx_gsi as u8)?;
        function.set_ioevent_registry(Arc::new(KvmIoEvents(vm.clone())));
        let bars = bus.attach(slot, Arc::new(Mutex::new(function)))?;
        log::info!(
            "{name} at 00:{slot:02x}.0, BAR0 {:#x}",
            bars.first().map_or(0, |b| b.1)
        );
        subscribers.push(subscriber);
    }
    let bus = Arc::new(bus);
    io.add_pio(
        PCI_CONFIG_ADDRESS,
        8,
        Arc::new(Mutex::new(ConfigPorts(bus.clone()))),
    )?;
    io.add_mmio(
        PCI_ECAM_START,
        PCI_ECAM_SIZE,
        Arc::new(Mutex::new(Ecam(bus.clone()))),
    )?;
    io.add_mmio(
        PCI_MMIO32_START,
        PCI_MMIO32_SIZE,
        Arc::new(Mutex::new(BarWindow(bus))),
    )?;
    Ok(PciDevices {
        subscribers,
        console_input,
    })
}
