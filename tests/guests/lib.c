/* The micro-guest runtime (see guest.h). */
#include "guest.h"
#include <stdarg.h>

void guest_exit(int status)
{
    outb(TEST_EXIT_PORT, (u8)status);
    for (;;)
        ;
}

void putc(char c)
{
    /* Wait for the transmit holding register to be empty (LSR bit 5). */
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (u8)c);
}

void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static void put_unsigned(u64 v, unsigned base, int width, char pad)
{
    char buf[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        buf[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v && n < (int)sizeof(buf));
    while (n < width--)
        putc(pad);
    while (n)
        putc(buf[--n]);
}

/* %s %c %d %u %x %lx %llx %lu %llu %p, with an optional zero-pad width (%08x). */
void printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        switch (*fmt) {
        case 's': puts(va_arg(ap, const char *)); break;
        case 'c': putc((char)va_arg(ap, int)); break;
        case 'd': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            if (v < 0) {
                putc('-');
                v = -v;
            }
            put_unsigned((u64)v, 10, width, pad);
            break;
        }
        case 'u': put_unsigned(longs ? va_arg(ap, u64) : va_arg(ap, unsigned), 10, width, pad); break;
        case 'x': put_unsigned(longs ? va_arg(ap, u64) : va_arg(ap, unsigned), 16, width, pad); break;
        case 'p': puts("0x"); put_unsigned((u64)va_arg(ap, void *), 16, width, pad); break;
        case '%': putc('%'); break;
        default: putc('?'); break;
        }
    }
    va_end(ap);
}

void *memset(void *d, int c, usize n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, usize n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, usize n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
}

usize strlen(const char *s)
{
    usize n = 0;
    while (s[n])
        n++;
    return n;
}

static char cmdline_copy[1024];

const char *cmdline(const struct boot_info *bi)
{
    usize n = bi->cmdline_len < sizeof(cmdline_copy) - 1 ? bi->cmdline_len : sizeof(cmdline_copy) - 1;
    memcpy(cmdline_copy, (const void *)bi->cmdline_addr, n);
    cmdline_copy[n] = 0;
    /* The kernel command line convention ends at the first NUL. */
    return cmdline_copy;
}

/* Finds `key` as a whole word (followed by '=', ' ' or the end); returns what follows it. */
static const char *find_word(const char *s, const char *key)
{
    usize k = strlen(key);
    while (*s) {
        while (*s == ' ')
            s++;
        if (!memcmp(s, key, k) && (s[k] == '=' || s[k] == ' ' || s[k] == 0))
            return s + k;
        while (*s && *s != ' ')
            s++;
    }
    return 0;
}

int cmdline_has(const struct boot_info *bi, const char *word)
{
    return find_word(cmdline(bi), word) != 0;
}

u64 cmdline_u64(const struct boot_info *bi, const char *key, u64 dflt)
{
    const char *p = find_word(cmdline(bi), key);
    if (!p || *p != '=')
        return dflt;
    p++;
    u64 v = 0;
    unsigned base = 10;
    if (p[0] == '0' && p[1] == 'x') {
        base = 16;
        p += 2;
    }
    for (;; p++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else
            break;
        v = v * base + d;
    }
    return v;
}

static u64 ecam(u8 bus, u8 dev, u8 fn, u16 reg)
{
    return PCI_ECAM_BASE | ((u64)bus << 20) | ((u64)dev << 15) | ((u64)fn << 12) | reg;
}

u32 pci_read32(u8 bus, u8 dev, u8 fn, u16 reg) { return mmio_read32(ecam(bus, dev, fn, reg)); }
void pci_write32(u8 bus, u8 dev, u8 fn, u16 reg, u32 v) { mmio_write32(ecam(bus, dev, fn, reg), v); }
u16 pci_read16(u8 bus, u8 dev, u8 fn, u16 reg) { return mmio_read16(ecam(bus, dev, fn, reg)); }
void pci_write16(u8 bus, u8 dev, u8 fn, u16 reg, u16 v) { mmio_write16(ecam(bus, dev, fn, reg), v); }
u8 pci_read8(u8 bus, u8 dev, u8 fn, u16 reg) { return mmio_read8(ecam(bus, dev, fn, reg)); }

u32 pci_cf8_read32(u8 bus, u8 dev, u8 fn, u8 reg)
{
    outl(0xcf8, 0x80000000u | ((u32)bus << 16) | ((u32)dev << 11) | ((u32)fn << 8) | (reg & 0xfc));
    return inl(0xcfc);
}
