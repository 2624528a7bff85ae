/* The micro-guest runtime: port and MMIO access, the serial port, PCI configuration space,
 * formatted output and the exit port. Everything runs at CPL3 with IOPL 3. */
#ifndef IOVMM_GUEST_H
#define IOVMM_GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long usize;

/* Mirrors boot::params::MicroGuestInfo (at 0x7000, pointed to by RDI at entry). */
struct boot_info {
    u32 magic;   /* "IOVM" */
    u32 version;
    u64 mem_size;
    u32 num_cpus;
    u32 pad;
    u64 cmdline_addr;
    u64 cmdline_len;
};

#define TEST_EXIT_PORT 0xf4
#define COM1 0x3f8
#define PCI_ECAM_BASE 0xe0000000ULL
#define VTD_BASE 0xfed90000ULL
#define LAPIC_BASE 0xfee00000ULL

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline u8 mmio_read8(u64 a) { return *(volatile u8 *)a; }
static inline u16 mmio_read16(u64 a) { return *(volatile u16 *)a; }
static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline u64 mmio_read64(u64 a) { return *(volatile u64 *)a; }
static inline void mmio_write8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void mmio_write16(u64 a, u16 v) { *(volatile u16 *)a = v; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void mmio_write64(u64 a, u64 v) { *(volatile u64 *)a = v; }

static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }

void guest_exit(int status) __attribute__((noreturn));
void putc(char c);
void puts(const char *s);
void printf(const char *fmt, ...);
void *memset(void *d, int c, usize n);
void *memcpy(void *d, const void *s, usize n);
int memcmp(const void *a, const void *b, usize n);
usize strlen(const char *s);

/* The command line iovmm passed (--cmdline), NUL-terminated copy. */
const char *cmdline(const struct boot_info *bi);
/* Value of "key=<number>" on the command line, or `dflt`. */
u64 cmdline_u64(const struct boot_info *bi, const char *key, u64 dflt);
/* Whether the word `word` (or "word=...") is on the command line. */
int cmdline_has(const struct boot_info *bi, const char *word);

/* PCI configuration space of 00:dev.fn through ECAM. */
u32 pci_read32(u8 bus, u8 dev, u8 fn, u16 reg);
void pci_write32(u8 bus, u8 dev, u8 fn, u16 reg, u32 v);
u16 pci_read16(u8 bus, u8 dev, u8 fn, u16 reg);
void pci_write16(u8 bus, u8 dev, u8 fn, u16 reg, u16 v);
u8 pci_read8(u8 bus, u8 dev, u8 fn, u16 reg);
/* The same through the 0xcf8/0xcfc mechanism. */
u32 pci_cf8_read32(u8 bus, u8 dev, u8 fn, u8 reg);

/* Reports a failed check and exits with `status`. */
#define CHECK(cond, status, ...) do { if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); guest_exit(status); } } while (0)

#endif
