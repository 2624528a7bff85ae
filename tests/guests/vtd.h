/* Programming the emulated VT-d unit from a micro-guest: a legacy root table, context entries
 * and 3-level (39-bit) second-level page tables, the register-based invalidations, TE. Register
 * facts: ../shared/spec/vtd-amdvi-checklist.md §2-§5. */
#ifndef IOVMM_VTD_H
#define IOVMM_VTD_H
#include "guest.h"

#define VTD_CAP 0x08
#define VTD_ECAP 0x10
#define VTD_GCMD 0x18
#define VTD_GSTS 0x1c
#define VTD_RTADDR 0x20
#define VTD_CCMD 0x28
#define VTD_FSTS 0x34
#define VTD_GCMD_TE (1u << 31)
#define VTD_GCMD_SRTP (1u << 30)
#define VTD_FSTS_PPF (1u << 1)

/* A domain: one 3-level second-level table tree, built from `pool` (4 KiB pages). */
struct vtd_domain {
    u16 did;
    u64 *pml3; /* level 3 (top for a 39-bit AGAW) */
};

void vtd_init_tables(void *pool, usize pool_size);
void vtd_domain_init(struct vtd_domain *d, u16 did);
/* Maps [iova, iova + size) to gpa with 4 KiB pages, read/write as given. */
void vtd_map(struct vtd_domain *d, u64 iova, u64 gpa, u64 size, int read, int write);
/* Points devfn on bus 0 at domain `d` (TT = 00, AW = 39-bit). */
void vtd_attach(u8 devfn, struct vtd_domain *d);
/* Root table pointer, global context-cache and IOTLB invalidation, TE on. */
void vtd_enable(void);
/* Global IOTLB invalidation (after changing mappings). */
void vtd_flush_iotlb(void);
u64 vtd_read64(u32 off);
u32 vtd_read32(u32 off);
void vtd_write32(u32 off, u32 v);
void vtd_write64(u32 off, u64 v);
/* Offset of fault recording register i. */
u32 vtd_frcd(u32 i);
#endif
