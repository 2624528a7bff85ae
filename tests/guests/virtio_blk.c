/* Drives a virtio-blk disk through virtio-pci: capacity, reads of a pattern the host wrote,
 * write + flush + read-back, GET_ID, an out-of-range read and an unsupported request (both
 * must fail with the right status), and with "hostile" a buffer outside guest RAM (IOERR) and a
 * descriptor loop (the device must flag NEEDS_RESET, not hang). "bench=N" times N 4 KiB reads.
 * The host test fills sector i with: u64 i, then bytes (i * 7 + 1) & 0xff. */
#include "virtio.h"

#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2

struct blk_req { u32 type; u32 reserved; u64 sector; };

static u8 ring_mem[8192] __attribute__((aligned(4096)));
static u8 data[65536] __attribute__((aligned(4096)));
static struct blk_req req __attribute__((aligned(16)));
static volatile u8 status_byte;
static struct virtq vq;

/* One request; returns the status byte (0xff if the device never answered). */
static u8 blk_request(u32 type, u64 sector, void *buf, u32 len, u32 *used_len)
{
    req.type = type;
    req.reserved = 0;
    req.sector = sector;
    status_byte = 0xee;
    u64 addrs[3] = {(u64)&req, (u64)buf, (u64)&status_byte};
    u32 lens[3] = {sizeof(req), len, 1};
    u16 flags[3] = {0, type == BLK_T_OUT ? 0 : VRING_DESC_F_WRITE, VRING_DESC_F_WRITE};
    if (len == 0) {
        addrs[1] = addrs[2];
        lens[1] = 1;
        flags[1] = VRING_DESC_F_WRITE;
    }
    virtq_submit(&vq, addrs, lens, flags, len ? 3 : 2);
    struct vq_used_elem e;
    if (virtq_wait(&vq, &e, 100000000ULL))
        return 0xff;
    if (used_len)
        *used_len = e.len;
    return status_byte;
}

static void check_pattern(u64 first, u32 sectors)
{
    for (u32 s = 0; s < sectors; s++) {
        u8 *p = data + 512 * s;
        u64 n;
        memcpy(&n, p, 8);
        CHECK(n == first + s, 10, "sector %u starts with %u", (unsigned)(first + s), (unsigned)n);
        for (u32 i = 8; i < 512; i++)
            CHECK(p[i] == (u8)((first + s) * 7 + 1), 11, "sector %u byte %u is %x",
                  (unsigned)(first + s), i, p[i]);
    }
}

int main(const struct boot_info *bi)
{
    struct vdev d;
    memset(&d, 0, sizeof(d));
    CHECK(virtio_find(&d, VIRTIO_ID_BLOCK) == 0, 2, "no virtio-blk device on bus 0");
    printf("virtio-blk at 00:%u.0, common cfg %x\n", d.dev, (u32)d.common);
    u64 features = virtio_negotiate(&d, 0);
    CHECK(features != ~0ULL, 3, "FEATURES_OK refused");
    CHECK(features & (1ULL << VIRTIO_F_VERSION_1), 3, "no VERSION_1");
    CHECK(virtio_queue_setup(&d, &vq, 0, 0, ring_mem) == 0, 4, "queue 0 setup failed");
    virtio_driver_ok(&d);
    CHECK(virtio_status(&d) & VIRTIO_STATUS_DRIVER_OK, 4, "DRIVER_OK not kept: %x", virtio_status(&d));

    u64 capacity = vd_read64(d.device);
    u64 want = cmdline_u64(bi, "sectors", 0);
    CHECK(capacity == want, 5, "capacity %u sectors, expected %u", (unsigned)capacity, (unsigned)want);

    u32 used = 0;
    CHECK(blk_request(BLK_T_IN, 0, data, 4096, &used) == BLK_S_OK, 6, "read of sectors 0-7 failed");
    CHECK(used == 4097, 6, "used length %u for a 4 KiB read (expected 4097)", used);
    check_pattern(0, 8);

    for (u32 i = 0; i < 4096; i++)
        data[i] = (u8)(0xa5 ^ i);
    CHECK(blk_request(BLK_T_OUT, 8, data, 4096, 0) == BLK_S_OK, 7, "write failed");
    CHECK(blk_request(BLK_T_FLUSH, 0, 0, 0, 0) == BLK_S_OK, 7, "flush failed");
    memset(data, 0, 4096);
    CHECK(blk_request(BLK_T_IN, 8, data, 4096, 0) == BLK_S_OK, 7, "read-back failed");
    for (u32 i = 0; i < 4096; i++)
        CHECK(data[i] == (u8)(0xa5 ^ i), 7, "read-back byte %u is %x", i, data[i]);

    memset(data, 0, 32);
    CHECK(blk_request(BLK_T_GET_ID, 0, data, 20, 0) == BLK_S_OK, 8, "GET_ID failed");
    data[20] = 0;
    printf("virtio-blk id '%s'\n", (const char *)data);

    u8 s = blk_request(BLK_T_IN, capacity, data, 512, 0);
    CHECK(s == BLK_S_IOERR, 9, "read past the end gave status %u", s);
    s = blk_request(99, 0, data, 512, 0);
    CHECK(s == BLK_S_UNSUPP, 9, "unknown request type gave status %u", s);

    u64 bench = cmdline_u64(bi, "bench", 0);
    if (bench) {
        u32 size = (u32)cmdline_u64(bi, "bsize", 4096);
        CHECK(size >= 512 && size <= sizeof(data) && size % 512 == 0, 12, "bsize %u", size);
        u64 span = capacity - size / 512;
        u64 t0 = rdtsc();
        for (u64 i = 0; i < bench; i++)
            CHECK(blk_request(BLK_T_IN, (i * (size / 512)) % span, data, size, 0) == BLK_S_OK, 12, "bench read");
        u64 t1 = rdtsc();
        printf("bench: %u reads of %u bytes, %u TSC cycles per request\n", (unsigned)bench, size,
               (unsigned)((t1 - t0) / bench));
    }

    if (cmdline_has(bi, "hostile")) {
        s = blk_request(BLK_T_IN, 0, (void *)0x7f0000000000ULL, 512, 0);
        CHECK(s == BLK_S_IOERR, 13, "a buffer outside guest RAM gave status %u", s);
        /* A descriptor that chains to itself. */
        u16 head = vq.next_avail % vq.size;
        vq.desc[head].addr = (u64)&req;
        vq.desc[head].len = sizeof(req);
        vq.desc[head].flags = VRING_DESC_F_NEXT;
        vq.desc[head].next = head;
        vq.next_avail++;
        u16 idx = vq.avail[1];
        vq.avail[2 + idx % vq.size] = head;
        barrier();
        vq.avail[1] = (u16)(idx + 1);
        barrier();
        mmio_write16(vq.notify_addr, 0);
        int flagged = 0;
        for (u64 i = 0; i < 100000000ULL && !flagged; i++)
            flagged = (virtio_status(&d) & VIRTIO_STATUS_NEEDS_RESET) != 0;
        CHECK(flagged, 14, "a descriptor loop did not set DEVICE_NEEDS_RESET (status %x)", virtio_status(&d));
        printf("virtio-blk: hostile requests handled\n");
    }
    printf("virtio-blk: OK\n");
    return 0;
}
