//! Assembles the machine from the checked configuration: KVM, memory, the in-kernel interrupt
//! controllers, the legacy devices, the guest image, the vCPUs and the event loop. Then runs it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use devices::legacy::{AcpiPmBlock, Cmos, PostCode, ResetController, SerialPort, TestExit};
use kvm_bindings::{KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Cap, Kvm, VmFd};
use resources::ports;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::cli::Output;
use crate::config::VmConfig;
use crate::event_loop::{EventLoop, InputSink, StdinInput};
use crate::guest_boot;
use crate::interrupts::IrqRouting;
use crate::io_bus::IoBus;
use crate::stop::{StopReason, StopState};
use crate::vcpu::{self, Vcpu};
use crate::{memory, pci_devices, terminal, vtd};

/// Where KVM keeps the TSS it needs for real-mode emulation on Intel: three pages just below
/// the BIOS area at the top of the 4 GiB space, clear of every MMIO range we use.
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;

/// A built machine, ready to run.
pub struct Machine {
    stop: Arc<StopState>,
    vcpus: Vec<Vcpu>,
    event_loop: EventLoop,
    serial: Arc<Mutex<SerialPort>>,
    timeout: Option<u64>,
    // Kept alive for as long as the vCPUs run.
    _kvm: Kvm,
    _vm: Arc<VmFd>,
    _mem: GuestMemoryMmap,
    _routing: Arc<IrqRouting>,
    vtd: Option<Arc<iommu::VtdUnit>>,
    iommu_trace: Option<std::path::PathBuf>,
}

fn open_kvm() -> anyhow::Result<Kvm> {
    let kvm = Kvm::new().map_err(|e| {
        anyhow::anyhow!(
            "cannot open /dev/kvm: {e} (is KVM enabled on this host, and may this user use it?)"
        )
    })?;
    for (cap, name) in [
        (Cap::Irqchip, "in-kernel irqchip"),
        (Cap::Irqfd, "irqfd"),
        (Cap::Ioeventfd, "ioeventfd"),
        (Cap::IrqRouting, "IRQ routing"),
        (Cap::SignalMsi, "KVM_SIGNAL_MSI"),
        (Cap::UserMemory, "user memory"),
    ] {
        if !kvm.check_extension(cap) {
            anyhow::bail!("this host's KVM lacks {name}, which iovmm needs");
        }
    }
    Ok(kvm)
}

fn create_vm(kvm: &Kvm, cpus: u8) -> anyhow::Result<VmFd> {
    let max = kvm.get_max_vcpus();
    if usize::from(cpus) > max {
        anyhow::bail!("--cpus {cpus}: this host's KVM supports at most {max} vCPUs");
    }
    let vm = kvm
        .create_vm()
        .map_err(|e| anyhow::anyhow!("KVM_CREATE_VM: {e}"))?;
    vm.set_tss_address(KVM_TSS_ADDRESS)
        .map_err(|e| anyhow::anyhow!("KVM_SET_TSS_ADDR: {e}"))?;
    vm.create_irq_chip()
        .map_err(|e| anyhow::anyhow!("KVM_CREATE_IRQCHIP: {e}"))?;
    // The PIT drives nothing audible; Linux still calibrates against it.
    vm.create_pit2(kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("KVM_CREATE_PIT2: {e}"))?;
    Ok(vm)
}

/// COM1, the reset paths, the clock, the ACPI block, the POST and test-exit ports.
fn add_legacy_devices(
    bus: &mut IoBus,
    vm: &VmFd,
    stop: &Arc<StopState>,
    serial_out: &Output,
) -> anyhow::Result<Arc<Mutex<SerialPort>>> {
    let irq = EventFd::new(libc::EFD_NONBLOCK)?;
    vm.register_irqfd(&irq, ports::COM1_IRQ)
        .map_err(|e| anyhow::anyhow!("KVM_IRQFD for COM1: {e}"))?;
    let serial = Arc::new(Mutex::new(SerialPort::new(
        irq,
        terminal::open_output(serial_out, "--serial")?,
    )));
    bus.add_pio(ports::COM1, 8, serial.clone())?;
    bus.add_pio(
        ports::I8042_DATA,
        ports::I8042_COMMAND - ports::I8042_DATA + 1,
        Arc::new(Mutex::new(ResetController::new(stop.clone()))),
    )?;
    bus.add_pio(ports::CMOS_INDEX, 2, Arc::new(Mutex::new(Cmos::new())))?;
    bus.add_pio(
        ports::POST_CODE,
        1,
        Arc::new(Mutex::new(PostCode::default())),
    )?;
    bus.add_pio(
        ports::TEST_EXIT,
        4,
        Arc::new(Mutex::new(TestExit::new(stop.clone()))),
    )?;
    bus.add_pio(
        ports::ACPI_PM_BASE,
        ports::ACPI_PM_LEN,
        Arc::new(Mutex::new(AcpiPmBlock::new(stop.clone()))),
    )?;
    Ok(serial)
}

impl Machine {
    /// Builds everything `config` describes.
    pub fn build(config: VmConfig) -> anyhow::Result<Self> {
        let kvm = open_kvm()?;
        let vm = Arc::new(create_vm(&kvm, config.cpus)?);
        let mem = memory::create_guest_memory(&vm, config.memory)?;
        let stop = Arc::new(StopState::new()?);
        let routing = Arc::new(IrqRouting::new(vm.clone())?);

        let mut bus = IoBus::new();
        let serial = add_legacy_devices(&mut bus, &vm, &stop, &config.serial)?;

        let vtd = match &config.iommu {
            Some(spec) => Some(vtd::create(
                spec,
                config.iommu_trace.as_deref(),
                &mem,
                routing.clone(),
                &mut bus,
            )?),
            None => None,
        };
        let translator = vtd.clone().map(|u| u as Arc<dyn iommu::DmaTranslate>);
        let pci = pci_devices::create(&config, &mem, &vm, &routing, translator, &mut bus)?;
        let boot = guest_boot::load(&config, &mem)?;
        let bus = Arc::new(bus);
        let mut vcpus = Vec::new();
        for index in 0..config.cpus {
            let fd = vm
                .create_vcpu(u64::from(index))
                .map_err(|e| anyhow::anyhow!("KVM_CREATE_VCPU {index}: {e}"))?;
            guest_boot::configure_vcpu(&kvm, &fd, index, config.cpus, &boot)?;
            vcpus.push(Vcpu::new(index, fd, bus.clone(), stop.clone(), mem.clone()));
        }

        let mut event_loop = EventLoop::new(stop.clone())?;
        for subscriber in pci.subscribers {
            event_loop.add(subscriber);
        }
        // The terminal feeds one console: the virtio console when it is on stdio, else COM1.
        let terminal_input = match pci.console_input {
            Some(pipe) => Some((InputSink::Pipe(pipe), "virtio console (hvc0)")),
            None if config.serial == Output::Stdio => {
                Some((InputSink::Serial(serial.clone()), "serial console"))
            }
            None => None,
        };
        if let Some((sink, name)) = terminal_input {
            let interactive = terminal::stdin_is_tty();
            let input = StdinInput::new(sink, stop.clone(), interactive)?;
            event_loop.add(Arc::new(Mutex::new(input)));
            if interactive {
                terminal::enter_raw_mode();
                log::info!("{name} on this terminal; press Ctrl-A x to quit");
            }
        }

        Ok(Self {
            stop,
            vcpus,
            event_loop,
            serial,
            timeout: config.timeout,
            _kvm: kvm,
            _vm: vm,
            _mem: mem,
            _routing: routing,
            vtd,
            iommu_trace: config.iommu_trace.clone(),
        })
    }

    /// Runs the guest until it stops; returns why.
    pub fn run(mut self) -> StopReason {
        if let Err(e) = vcpu::install_kick_handler() {
            return StopReason::VmmError(format!("{e:#}"));
        }
        let mut threads = Vec::new();
        for v in self.vcpus.drain(..) {
            match v.spawn() {
                Ok(t) => threads.push(t),
                Err(e) => {
                    self.stop.stop(StopReason::VmmError(format!("{e:#}")));
                    break;
                }
            }
        }
        if let Err(e) = self.event_loop.run(self.timeout) {
            self.stop.stop(StopReason::VmmError(format!("{e:#}")));
        }
        vcpu::stop_all(threads, Duration::from_secs(2));
        if let Ok(mut serial) = self.serial.lock() {
            serial.flush();
        }
        if let Some(unit) = &self.vtd {
            vtd::report(unit, self.iommu_trace.as_deref());
        }
        self.stop
            .reason()
            .unwrap_or_else(|| StopReason::VmmError("stopped without a reason".into()))
    }
}
