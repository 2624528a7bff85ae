/* A denied DMA through the emulated VT-d: the virtio-blk device gets a domain that maps only the
 * guest's rings, request headers and one data buffer. A read into a second, unmapped buffer
 * must fail with IOERR, be recorded in fault recording register 0 (reason 0x5: the device
 * writes guest memory for a disk read, and that page has no write permission; SID = the
 * device's bus/dev/fn; T = 0, a write; FI = the page) with FSTS.PPF set, and the device and
 * the VM must keep working: a read into the mapped buffer succeeds afterwards. */
#include "virtio.h"
#include "vtd.h"

#define BLK_T_IN 0
#define BLK_S_OK 0
#define BLK_S_IOERR 1

struct blk_req { u32 type; u32 reserved; u64 sector; };

static u8 ring_mem[8192] __attribute__((aligned(4096)));
static u8 allowed[4096] __attribute__((aligned(4096)));
static u8 denied[4096] __attribute__((aligned(4096)));
static struct blk_req req __attribute__((aligned(4096)));
static volatile u8 status_byte;
static u8 pool[64 * 4096] __attribute__((aligned(4096)));
static struct virtq vq;

static u8 read_into(void *buf)
{
    req.type = BLK_T_IN;
    req.reserved = 0;
    req.sector = 0;
    status_byte = 0xee;
    u64 addrs[3] = {(u64)&req, (u64)buf, (u64)&status_byte};
    u32 lens[3] = {sizeof(req), 4096, 1};
    u16 flags[3] = {0, VRING_DESC_F_WRITE, VRING_DESC_F_WRITE};
    virtq_submit(&vq, addrs, lens, flags, 3);
    struct vq_used_elem e;
    if (virtq_wait(&vq, &e, 100000000ULL))
        return 0xff;
    return status_byte;
}

int main(const struct boot_info *bi)
{
    (void)bi;
    u64 cap = vtd_read64(VTD_CAP);
    CHECK(cap != 0 && cap != ~0ULL, 2, "no VT-d unit at %x (CAP %x)", (u32)VTD_BASE, (u32)cap);
    CHECK(cap & (1 << 9), 2, "SAGAW lacks 39-bit (CAP %x)", (u32)cap);

    struct vdev d;
    memset(&d, 0, sizeof(d));
    CHECK(virtio_find(&d, VIRTIO_ID_BLOCK) == 0, 3, "no virtio-blk device");
    u8 devfn = (u8)(d.dev << 3);

    vtd_init_tables(pool, sizeof(pool));
    struct vtd_domain dom;
    vtd_domain_init(&dom, 7);
    /* Identity-map what the device may touch: its ring pages, the request page (header and
     * status byte share it) and the allowed buffer. Nothing else. */
    vtd_map(&dom, (u64)ring_mem, (u64)ring_mem, sizeof(ring_mem), 1, 1);
    vtd_map(&dom, (u64)&req, (u64)&req, 4096, 1, 1);
    vtd_map(&dom, (u64)allowed, (u64)allowed, sizeof(allowed), 1, 1);
    /* The status byte lives elsewhere in .bss; `denied` fills its own page, so this mapping
     * cannot cover it. */
    vtd_map(&dom, (u64)&status_byte & ~4095ULL, (u64)&status_byte & ~4095ULL, 4096, 1, 1);
    vtd_attach(devfn, &dom);
    vtd_enable();
    vtd_write32(VTD_FSTS, 0xff); /* start clean */

    CHECK(virtio_negotiate(&d, 0) != ~0ULL, 5, "FEATURES_OK refused");
    CHECK(d.offered & (1ULL << VIRTIO_F_ACCESS_PLATFORM), 5, "ACCESS_PLATFORM not offered");
    CHECK(virtio_queue_setup(&d, &vq, 0, 0, ring_mem) == 0, 5, "queue setup failed");
    virtio_driver_ok(&d);

    u8 s = read_into(allowed);
    CHECK(s == BLK_S_OK, 6, "read into the mapped buffer gave status %u", s);
    u64 sector0;
    memcpy(&sector0, allowed, 8);
    CHECK(sector0 == 0, 6, "sector 0 starts with %u", (unsigned)sector0);

    s = read_into(denied);
    CHECK(s == BLK_S_IOERR, 7, "read into an unmapped buffer gave status %u", s);
    u32 fsts = vtd_read32(VTD_FSTS);
    CHECK(fsts & VTD_FSTS_PPF, 8, "FSTS %x: no primary fault pending", fsts);
    u32 frcd = vtd_frcd((fsts >> 8) & 0xff);
    u64 lo = vtd_read64(frcd), hi = vtd_read64(frcd + 8);
    u32 reason = (u32)(hi >> 32) & 0xff;
    u32 sid = (u32)hi & 0xffff;
    printf("fault: FSTS %x FI %x SID %x FR %x T %u F %u\n", fsts, (u32)lo, sid, reason,
           (u32)(hi >> 62) & 1, (u32)(hi >> 63));
    CHECK(hi >> 63, 9, "F not set in the fault record");
    CHECK(reason == 5, 9, "fault reason %x, expected 5 (PTE write access not set)", reason);
    CHECK(sid == devfn, 9, "source id %x, expected %x", sid, devfn);
    CHECK(((hi >> 62) & 1) == 0, 9, "T says read; the device was writing");
    CHECK((lo & ~0xfffULL) == (u64)denied, 9, "fault address %x, expected %x", (u32)lo, (u32)(u64)denied);
    /* Clear the record (F is RW1C) and the status. */
    vtd_write32(frcd + 12, 1u << 31);
    vtd_write32(VTD_FSTS, 0xff);
    CHECK(!(vtd_read32(VTD_FSTS) & VTD_FSTS_PPF), 10, "PPF still set after clearing F");

    memset(allowed, 0x5a, sizeof(allowed));
    s = read_into(allowed);
    CHECK(s == BLK_S_OK, 11, "the device stopped working after the fault (status %u)", s);
    CHECK(allowed[8] == 1, 11, "stale data after the fault");
    printf("vtd-fault: OK\n");
    return 0;
}
