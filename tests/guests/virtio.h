/* A minimal virtio 1.x PCI (modern) driver for micro-guests: finds a device on bus 0, negotiates
 * features, sets up split virtqueues in identity-mapped guest memory and polls for completions.
 * Everything a guest does here is what Linux's virtio_pci_modern.c and virtio_ring.c do, minus
 * interrupts (a CPL3 guest cannot read its local APIC here; see ENVIRONMENT.md). */
#ifndef IOVMM_VIRTIO_H
#define IOVMM_VIRTIO_H
#include "guest.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33

#define VIRTIO_STATUS_ACK 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2

/* Common configuration offsets (virtio 1.2 §4.1.4.3). */
#define VCC_DFSELECT 0
#define VCC_DF 4
#define VCC_GFSELECT 8
#define VCC_GF 12
#define VCC_MSIX_CONFIG 16
#define VCC_NUM_QUEUES 18
#define VCC_STATUS 20
#define VCC_GENERATION 21
#define VCC_Q_SELECT 22
#define VCC_Q_SIZE 24
#define VCC_Q_MSIX 26
#define VCC_Q_ENABLE 28
#define VCC_Q_NOFF 30
#define VCC_Q_DESC 32
#define VCC_Q_DRIVER 40
#define VCC_Q_DEVICE 48

struct vq_desc { u64 addr; u32 len; u16 flags; u16 next; };
struct vq_used_elem { u32 id; u32 len; };

#define VQ_MAX 64
struct virtq {
    u16 size;
    u16 index;
    u16 next_avail;
    u16 last_used;
    struct vq_desc *desc;
    volatile u16 *avail;   /* flags, idx, ring[size], used_event */
    volatile u16 *used;    /* flags, idx, then elems */
    u64 notify_addr;
};

struct vdev {
    u8 bus, dev, fn;
    u16 device_id;
    u64 common, notify, isr, device;
    u32 notify_mult;
    u64 offered;
};

/* Finds the first virtio device of `type` on bus 0 and maps its capabilities. 0 on success. */
int virtio_find(struct vdev *d, u16 type);
/* Reset, ACK, DRIVER, feature negotiation (accepting `wanted` of what is offered, always
 * VERSION_1 and ACCESS_PLATFORM when offered), FEATURES_OK. Returns the negotiated set, or
 * ~0ULL if the device refused FEATURES_OK. */
u64 virtio_negotiate(struct vdev *d, u64 wanted);
/* Sets up queue `index` with `size` entries (0 = the device maximum, capped at VQ_MAX) in
 * `mem` (at least 8 KiB, 4 KiB aligned). 0 on success. */
int virtio_queue_setup(struct vdev *d, struct virtq *q, u16 index, u16 size, void *mem);
void virtio_driver_ok(struct vdev *d);
u8 virtio_status(struct vdev *d);
/* Puts a chain of `n` buffers on the avail ring and notifies. Returns the head index. */
u16 virtq_submit(struct virtq *q, const u64 *addrs, const u32 *lens, const u16 *flags, int n);
/* Waits for the next used element; returns 0 and fills `elem`, or -1 after `spins` polls. */
int virtq_wait(struct virtq *q, struct vq_used_elem *elem, u64 spins);

static inline u64 vd_read64(u64 a) { return (u64)mmio_read32(a) | ((u64)mmio_read32(a + 4) << 32); }
static inline void vd_write64(u64 a, u64 v) { mmio_write32(a, (u32)v); mmio_write32(a + 4, (u32)(v >> 32)); }
#endif
