/* See vtd.h. */
#include "vtd.h"

static u8 *pool_next, *pool_end;
static u64 *root_table;
static u64 *context_table;

u64 vtd_read64(u32 off) { return mmio_read64(VTD_BASE + off); }
u32 vtd_read32(u32 off) { return mmio_read32(VTD_BASE + off); }
void vtd_write32(u32 off, u32 v) { mmio_write32(VTD_BASE + off, v); }
void vtd_write64(u32 off, u64 v) { mmio_write64(VTD_BASE + off, v); }

static void *page(void)
{
    CHECK(pool_next + 4096 <= pool_end, 90, "VT-d table pool exhausted");
    void *p = pool_next;
    pool_next += 4096;
    memset(p, 0, 4096);
    return p;
}

void vtd_init_tables(void *pool, usize pool_size)
{
    pool_next = (u8 *)(((u64)pool + 4095) & ~4095ULL);
    pool_end = (u8 *)pool + pool_size;
    root_table = page();
    context_table = page();
    root_table[0] = (u64)context_table | 1; /* bus 0 */
}

void vtd_domain_init(struct vtd_domain *d, u16 did)
{
    d->did = did;
    d->pml3 = page();
}

static u64 *next_level(u64 *table, u32 index)
{
    if (!(table[index] & 3))
        table[index] = (u64)page() | 3;
    return (u64 *)(table[index] & ~0xfffULL);
}

void vtd_map(struct vtd_domain *d, u64 iova, u64 gpa, u64 size, int read, int write)
{
    for (u64 off = 0; off < size; off += 4096) {
        u64 va = iova + off;
        u64 *l2 = next_level(d->pml3, (va >> 30) & 511);
        u64 *l1 = next_level(l2, (va >> 21) & 511);
        l1[(va >> 12) & 511] = ((gpa + off) & ~0xfffULL) | (read ? 1 : 0) | (write ? 2 : 0);
    }
}

void vtd_attach(u8 devfn, struct vtd_domain *d)
{
    context_table[2 * devfn + 1] = 1 /* AW 39-bit */ | ((u64)d->did << 8);
    context_table[2 * devfn] = (u64)d->pml3 | 1; /* P, TT = 00 */
}

static void wait_clear64(u32 off, u64 bit)
{
    for (int i = 0; i < 1000000; i++)
        if (!(vtd_read64(off) & bit))
            return;
    CHECK(0, 91, "VT-d register %x bit %x did not clear", off, (u32)(bit >> 32));
}

void vtd_flush_iotlb(void)
{
    u32 iotlb = (u32)(((vtd_read64(VTD_ECAP) >> 8) & 0x3ff) * 16 + 8);
    vtd_write64(iotlb, (1ULL << 63) | (1ULL << 60)); /* IVT, global */
    wait_clear64(iotlb, 1ULL << 63);
}

void vtd_enable(void)
{
    vtd_write64(VTD_RTADDR, (u64)root_table);
    vtd_write32(VTD_GCMD, VTD_GCMD_SRTP);
    CHECK(vtd_read32(VTD_GSTS) & VTD_GCMD_SRTP, 92, "RTPS not set after SRTP");
    vtd_write64(VTD_CCMD, (1ULL << 63) | (1ULL << 61)); /* ICC, global */
    wait_clear64(VTD_CCMD, 1ULL << 63);
    vtd_flush_iotlb();
    vtd_write32(VTD_GCMD, VTD_GCMD_TE);
    CHECK(vtd_read32(VTD_GSTS) & VTD_GCMD_TE, 92, "TES not set after TE");
}

u32 vtd_frcd(u32 i) { return (u32)(((vtd_read64(VTD_CAP) >> 24) & 0x3ff) * 16 + 16 * i); }
