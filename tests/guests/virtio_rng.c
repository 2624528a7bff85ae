/* Drives virtio-rng: two 64-byte requests must come back full (used length 64), differ from
 * each other and not be all zero. */
#include "virtio.h"

static u8 ring_mem[8192] __attribute__((aligned(4096)));
static u8 buf[2][64] __attribute__((aligned(64)));
static struct virtq vq;

int main(const struct boot_info *bi)
{
    (void)bi;
    struct vdev d;
    memset(&d, 0, sizeof(d));
    CHECK(virtio_find(&d, VIRTIO_ID_RNG) == 0, 2, "no virtio-rng device on bus 0");
    CHECK(virtio_negotiate(&d, 0) != ~0ULL, 3, "FEATURES_OK refused");
    CHECK(virtio_queue_setup(&d, &vq, 0, 0, ring_mem) == 0, 4, "queue setup failed");
    virtio_driver_ok(&d);
    for (int i = 0; i < 2; i++) {
        u64 a = (u64)buf[i];
        u32 len = sizeof(buf[i]);
        u16 fl = VRING_DESC_F_WRITE;
        virtq_submit(&vq, &a, &len, &fl, 1);
        struct vq_used_elem e;
        CHECK(virtq_wait(&vq, &e, 100000000ULL) == 0, 5, "request %d not completed", i);
        CHECK(e.len == 64, 6, "used length %u", e.len);
    }
    int nonzero = 0;
    for (int i = 0; i < 64; i++)
        nonzero |= buf[0][i];
    CHECK(nonzero, 7, "all zero");
    CHECK(memcmp(buf[0], buf[1], 64) != 0, 7, "two requests gave the same bytes");
    printf("virtio-rng: OK\n");
    return 0;
}
