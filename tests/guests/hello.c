/* The first micro-guest: checks its boot info, prints to COM1 and exits with the status given
 * as "exit=N" on the command line (default 0). Proves CPL3 entry, port I/O, the serial port and
 * the test-exit port end to end. */
#include "guest.h"

int main(const struct boot_info *bi)
{
    CHECK(bi->magic == 0x4d564f49, 1, "boot info magic %x", bi->magic);
    CHECK(bi->version == 1, 1, "boot info version %u", bi->version);
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    printf("hello from a micro-guest: cpl %u, %u MiB, %u cpus, cmdline '%s'\n", cs & 3,
           (unsigned)(bi->mem_size >> 20), bi->num_cpus, cmdline(bi));
    return (int)cmdline_u64(bi, "exit", 0);
}
