//! COM1: a 16550A UART from vm-superio, raising its interrupt through a KVM irqfd.

use std::io::{self, Write};

use vm_device::MutDevicePio;
use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_superio::{Serial, Trigger, serial::NoEvents};
use vmm_sys_util::eventfd::EventFd;

/// Fires an eventfd (registered by the VMM as an irqfd for the UART's GSI).
#[derive(Debug)]
pub struct EventFdTrigger(EventFd);

impl EventFdTrigger {
    /// Wraps `fd`.
    pub fn new(fd: EventFd) -> Self {
        Self(fd)
    }
}

impl Trigger for EventFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// The UART and where its output goes.
pub struct SerialPort {
    uart: Serial<EventFdTrigger, NoEvents, Box<dyn Write + Send>>,
}

impl std::fmt::Debug for SerialPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialPort").finish_non_exhaustive()
    }
}

impl SerialPort {
    /// A UART whose interrupt fires `irq` and whose output goes to `out`.
    pub fn new(irq: EventFd, out: Box<dyn Write + Send>) -> Self {
        Self {
            uart: Serial::new(EventFdTrigger::new(irq), out),
        }
    }

    /// Room left in the receive FIFO.
    pub fn input_room(&self) -> usize {
        self.uart.fifo_capacity()
    }

    /// Queues bytes typed by the user; returns how many fit.
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        let room = self.uart.fifo_capacity().min(bytes.len());
        match self
            .uart
            .enqueue_raw_bytes(bytes.get(..room).unwrap_or_default())
        {
            Ok(n) => n,
            Err(e) => {
                log::warn!("serial: dropping input: {e:?}");
                0
            }
        }
    }

    /// Flushes buffered output (at exit).
    pub fn flush(&mut self) {
        let _ = self.uart.writer_mut().flush();
    }
}

impl MutDevicePio for SerialPort {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        let Ok(offset) = u8::try_from(offset) else {
            return data.fill(0xff);
        };
        if let Some(first) = data.first_mut() {
            *first = self.uart.read(offset);
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let (Ok(offset), Some(&value)) = (u8::try_from(offset), data.first()) else {
            return;
        };
        if let Err(e) = self.uart.write(offset, value) {
            log::warn!("serial: write to register {offset} failed: {e:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_written_to_thr_reach_the_output() {
        let sink = Sink::default();
        let mut port = SerialPort::new(EventFd::new(0).unwrap(), Box::new(sink.clone()));
        for b in b"hi\n" {
            port.pio_write(PioAddress(0x3f8), 0, &[*b]);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"hi\n");
    }

    #[test]
    fn input_is_read_back_from_rbr_and_raises_the_interrupt() {
        let irq = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mut port = SerialPort::new(irq.try_clone().unwrap(), Box::new(io::sink()));
        // Enable the "received data available" interrupt (IER bit 0).
        port.pio_write(PioAddress(0x3f8), 1, &[1]);
        assert_eq!(port.enqueue_input(b"ab"), 2);
        assert_eq!(irq.read().unwrap(), 1);
        let mut b = [0u8];
        port.pio_read(PioAddress(0x3f8), 0, &mut b);
        assert_eq!(b[0], b'a');
        port.pio_read(PioAddress(0x3f8), 0, &mut b);
        assert_eq!(b[0], b'b');
    }

    #[test]
    fn input_beyond_the_fifo_is_not_accepted() {
        let mut port = SerialPort::new(EventFd::new(0).unwrap(), Box::new(io::sink()));
        let room = port.input_room();
        assert_eq!(port.enqueue_input(&vec![b'x'; room + 10]), room);
        assert_eq!(port.input_room(), 0);
    }

    #[test]
    fn odd_accesses_do_not_panic() {
        let mut port = SerialPort::new(EventFd::new(0).unwrap(), Box::new(io::sink()));
        let mut empty = [0u8; 0];
        port.pio_read(PioAddress(0x3f8), 7, &mut empty);
        port.pio_write(PioAddress(0x3f8), 300, &[1]);
        port.pio_write(PioAddress(0x3f8), 2, &[]);
    }
}
