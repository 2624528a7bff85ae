/* See virtio.h. */
#include "virtio.h"

static u64 bar_address(u8 bus, u8 dev, u8 fn, u8 bar)
{
    u32 lo = pci_read32(bus, dev, fn, 0x10 + 4 * bar);
    if (lo & 1)
        return 0; /* I/O BAR: not used by modern virtio */
    u64 addr = lo & ~0xfULL;
    if (((lo >> 1) & 3) == 2)
        addr |= (u64)pci_read32(bus, dev, fn, 0x14 + 4 * bar) << 32;
    return addr;
}

int virtio_find(struct vdev *d, u16 type)
{
    for (u8 dev = 0; dev < 32; dev++) {
        u32 id = pci_read32(0, dev, 0, 0);
        if ((id & 0xffff) != VIRTIO_VENDOR || (id >> 16) != 0x1040u + type)
            continue;
        d->bus = 0;
        d->dev = dev;
        d->fn = 0;
        d->device_id = id >> 16;
        /* Memory decode and bus mastering on. */
        pci_write16(0, dev, 0, 0x04, pci_read16(0, dev, 0, 0x04) | 0x6);
        if (!(pci_read16(0, dev, 0, 0x06) & 0x10))
            return -1;
        u8 cap = pci_read8(0, dev, 0, 0x34) & 0xfc;
        for (int guard = 0; cap && guard < 48; guard++) {
            u8 vndr = pci_read8(0, dev, 0, cap);
            if (vndr == 0x09) {
                u8 cfg_type = pci_read8(0, dev, 0, cap + 3);
                u8 bar = pci_read8(0, dev, 0, cap + 4);
                u32 off = pci_read32(0, dev, 0, cap + 8);
                u64 base = bar < 6 ? bar_address(0, dev, 0, bar) + off : 0;
                switch (cfg_type) {
                case 1: d->common = base; break;
                case 2:
                    d->notify = base;
                    d->notify_mult = pci_read32(0, dev, 0, cap + 16);
                    break;
                case 3: d->isr = base; break;
                case 4: d->device = base; break;
                default: break;
                }
            }
            cap = pci_read8(0, dev, 0, cap + 1) & 0xfc;
        }
        return d->common && d->notify && d->isr ? 0 : -1;
    }
    return -1;
}

u8 virtio_status(struct vdev *d) { return mmio_read8(d->common + VCC_STATUS); }

u64 virtio_negotiate(struct vdev *d, u64 wanted)
{
    mmio_write8(d->common + VCC_STATUS, 0);
    for (int i = 0; i < 1000 && virtio_status(d) != 0; i++)
        ;
    mmio_write8(d->common + VCC_STATUS, VIRTIO_STATUS_ACK);
    mmio_write8(d->common + VCC_STATUS, VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER);
    u64 offered = 0;
    for (u32 sel = 0; sel < 2; sel++) {
        mmio_write32(d->common + VCC_DFSELECT, sel);
        offered |= (u64)mmio_read32(d->common + VCC_DF) << (32 * sel);
    }
    d->offered = offered;
    u64 take = offered & (wanted | (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_ACCESS_PLATFORM));
    for (u32 sel = 0; sel < 2; sel++) {
        mmio_write32(d->common + VCC_GFSELECT, sel);
        mmio_write32(d->common + VCC_GF, (u32)(take >> (32 * sel)));
    }
    u8 s = VIRTIO_STATUS_ACK | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    mmio_write8(d->common + VCC_STATUS, s);
    if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK))
        return ~0ULL;
    return take;
}

int virtio_queue_setup(struct vdev *d, struct virtq *q, u16 index, u16 size, void *mem)
{
    mmio_write16(d->common + VCC_Q_SELECT, index);
    u16 max = mmio_read16(d->common + VCC_Q_SIZE);
    if (max == 0)
        return -1;
    if (size == 0)
        size = max < VQ_MAX ? max : VQ_MAX;
    memset(mem, 0, 8192);
    q->size = size;
    q->index = index;
    q->next_avail = 0;
    q->last_used = 0;
    q->desc = (struct vq_desc *)mem;
    q->avail = (volatile u16 *)((u8 *)mem + 16 * VQ_MAX);
    q->used = (volatile u16 *)((u8 *)mem + 4096);
    mmio_write16(d->common + VCC_Q_SIZE, size);
    mmio_write16(d->common + VCC_Q_MSIX, 0xffff);
    vd_write64(d->common + VCC_Q_DESC, (u64)q->desc);
    vd_write64(d->common + VCC_Q_DRIVER, (u64)q->avail);
    vd_write64(d->common + VCC_Q_DEVICE, (u64)q->used);
    q->notify_addr = d->notify + (u64)mmio_read16(d->common + VCC_Q_NOFF) * d->notify_mult;
    mmio_write16(d->common + VCC_Q_ENABLE, 1);
    return mmio_read16(d->common + VCC_Q_ENABLE) == 1 ? 0 : -1;
}

void virtio_driver_ok(struct vdev *d)
{
    mmio_write8(d->common + VCC_STATUS, virtio_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

u16 virtq_submit(struct virtq *q, const u64 *addrs, const u32 *lens, const u16 *flags, int n)
{
    u16 head = q->next_avail % q->size;
    for (int i = 0; i < n; i++) {
        u16 slot = (head + i) % q->size;
        q->desc[slot].addr = addrs[i];
        q->desc[slot].len = lens[i];
        q->desc[slot].flags = flags[i] | (i + 1 < n ? VRING_DESC_F_NEXT : 0);
        q->desc[slot].next = (slot + 1) % q->size;
    }
    q->next_avail = (u16)(q->next_avail + n);
    u16 idx = q->avail[1];
    q->avail[2 + idx % q->size] = head;
    barrier();
    q->avail[1] = (u16)(idx + 1);
    barrier();
    mmio_write16(q->notify_addr, q->index);
    return head;
}

int virtq_wait(struct virtq *q, struct vq_used_elem *elem, u64 spins)
{
    for (u64 i = 0; i < spins; i++) {
        barrier();
        if (q->used[1] != q->last_used) {
            volatile u32 *e = (volatile u32 *)(q->used + 2) + 2 * (q->last_used % q->size);
            elem->id = e[0];
            elem->len = e[1];
            q->last_used++;
            /* Chains are consecutive slots, so the next submission may reuse them now. */
            return 0;
        }
        __asm__ volatile("pause");
    }
    return -1;
}
