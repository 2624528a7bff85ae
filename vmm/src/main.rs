//! iovmm: a virtual machine monitor on KVM whose virtio devices do DMA through an emulated IOMMU.
//!
//! `main` parses and checks the command line, builds the machine, runs it until the guest stops
//! (or the timeout expires) and turns the reason into the exit status.

mod cli;
mod config;
mod emulation;
mod event_loop;
mod guest_boot;
mod interrupts;
mod io_bus;
mod logger;
mod machine;
mod memory;
mod pci_devices;
mod stop;
mod terminal;
mod vcpu;
mod vtd;

use clap::Parser;

use crate::config::{UsageError, VmConfig};
use crate::stop::{EXIT_USAGE, EXIT_VMM_ERROR, StopReason};

fn run() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    logger::init(cli.log_level);
    let config = match VmConfig::from_cli(cli) {
        Ok(c) => c,
        Err(UsageError(msg)) => {
            eprintln!("iovmm: {msg}");
            return EXIT_USAGE;
        }
    };
    let machine = match machine::Machine::build(config) {
        Ok(m) => m,
        Err(e) => {
            terminal::restore();
            eprintln!("iovmm: {e:#}");
            return EXIT_VMM_ERROR;
        }
    };
    let reason = machine.run();
    terminal::restore();
    match &reason {
        StopReason::Guest(_) => log::info!("{reason}"),
        StopReason::UserQuit => log::info!("{reason}"),
        _ => log::error!("{reason}"),
    }
    reason.exit_code()
}

fn main() {
    let code = run();
    // Exit right away: vCPU threads that did not leave KVM_RUN must not keep the process alive.
    std::process::exit(code);
}
