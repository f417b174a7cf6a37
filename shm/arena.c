/* The arena file: computes the region layout, creates or re-attaches it, validates the header. */
#include "shm/arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "shm/credit.h"
#include "shm/policy.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

static uint32_t pow2_at_least(uint64_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* Fills the size and offset fields of a header for SIZES. */
static void layout(tg_arena_hdr_t *h, const tg_arena_sizes_t *sizes)
{
    memset(h, 0, sizeof(*h));
    h->magic = TG_ARENA_MAGIC;
    h->version = TG_ARENA_VERSION;
    h->header_size = sizeof(tg_arena_hdr_t);
    h->max_accounts = sizes->max_accounts;
    h->index_slots = pow2_at_least((uint64_t)sizes->max_accounts * 2);
    h->max_upstreams = sizes->max_upstreams;
    h->ring_slots = sizes->ring_slots;
    h->account_size = sizeof(tg_account_t);
    h->index_entry_size = sizeof(tg_index_entry_t);
    h->upstream_size = sizeof(tg_upstream_t);
    h->ring_slot_size = sizeof(tg_ring_slot_t);
    uint64_t off = align_up(sizeof(tg_arena_hdr_t), 4096);
    h->off_accounts = off;
    off = align_up(off + (uint64_t)h->max_accounts * h->account_size, 4096);
    h->off_index = off;
    off = align_up(off + (uint64_t)h->index_slots * h->index_entry_size, 4096);
    h->off_upstreams = off;
    off = align_up(off + (uint64_t)h->max_upstreams * h->upstream_size, 4096);
    h->off_ring = off;
    off = align_up(off + (uint64_t)h->ring_slots * h->ring_slot_size, 4096);
    /* quota engine regions (docs/quota.md): sparse until used */
    h->heap_bytes = align_up((uint64_t)h->max_accounts * TG_HEAP_BYTES_PER_ACCOUNT + TG_HEAP_BYTES_BASE, 4096);
    h->mlim_slots = h->max_accounts / 8 + 4096;
    h->n_lanes = TG_LANES;
    h->lane_holds = sizes->lane_holds ? sizes->lane_holds : TG_LANE_HOLDS_DEFAULT;
    h->lane_size = (uint32_t)align_up(sizeof(tg_lane_t) + (uint64_t)h->lane_holds * sizeof(tg_hold_t), 64);
    h->policy_buf_size = TG_POLICY_BUF_SIZE;
    h->cursor_slots = pow2_at_least((uint64_t)h->max_upstreams * 2 < 64 ? 64 : (uint64_t)h->max_upstreams * 2);
    h->off_heap = off;
    off = align_up(off + h->heap_bytes, 4096);
    h->off_mlim = off;
    off = align_up(off + (uint64_t)h->mlim_slots * sizeof(tg_mlim_state_t), 4096);
    h->off_lanes = off;
    off = align_up(off + (uint64_t)h->n_lanes * h->lane_size, 4096);
    h->off_policy = off;
    off = align_up(off + 2 * (uint64_t)h->policy_buf_size, 4096);
    h->off_cursors = off;
    off = align_up(off + (uint64_t)h->cursor_slots * sizeof(tg_rr_cursor_t), 4096);
    h->flight_size = sizeof(tg_flight_t);
    h->off_flights = off;
    off = align_up(off + (uint64_t)h->n_lanes * h->lane_holds * h->flight_size, 4096);
    h->total_size = off;
}

uint64_t tg_arena_bytes(const tg_arena_sizes_t *sizes)
{
    tg_arena_hdr_t h;
    layout(&h, sizes);
    return h.total_size;
}

static int header_matches(const tg_arena_hdr_t *have, const tg_arena_hdr_t *want)
{
    return have->magic == want->magic && have->version == want->version && have->header_size == want->header_size &&
           have->total_size == want->total_size && have->max_accounts == want->max_accounts &&
           have->index_slots == want->index_slots && have->max_upstreams == want->max_upstreams &&
           have->ring_slots == want->ring_slots && have->account_size == want->account_size &&
           have->index_entry_size == want->index_entry_size && have->upstream_size == want->upstream_size &&
           have->ring_slot_size == want->ring_slot_size && have->heap_bytes == want->heap_bytes &&
           have->mlim_slots == want->mlim_slots && have->n_lanes == want->n_lanes && have->lane_holds == want->lane_holds &&
           have->lane_size == want->lane_size &&
           have->policy_buf_size == want->policy_buf_size && have->cursor_slots == want->cursor_slots &&
           have->off_heap == want->off_heap && have->off_cursors == want->off_cursors &&
           have->flight_size == want->flight_size && have->off_flights == want->off_flights;
}

static void bind_regions(tg_arena_t *a)
{
    char *b = a->base;
    a->hdr = (tg_arena_hdr_t *)b;
    a->accounts = (tg_account_t *)(b + a->hdr->off_accounts);
    a->index = (tg_index_entry_t *)(b + a->hdr->off_index);
    a->upstreams = (tg_upstream_t *)(b + a->hdr->off_upstreams);
    a->ring = (tg_ring_slot_t *)(b + a->hdr->off_ring);
    a->heap = (uint8_t *)(b + a->hdr->off_heap);
    a->mlim = (tg_mlim_state_t *)(b + a->hdr->off_mlim);
    a->lanes = (tg_lane_t *)(b + a->hdr->off_lanes);
    a->policy[0] = (tg_policy_buf_t *)(b + a->hdr->off_policy);
    a->policy[1] = (tg_policy_buf_t *)(b + a->hdr->off_policy + a->hdr->policy_buf_size);
    a->cursors = (tg_rr_cursor_t *)(b + a->hdr->off_cursors);
    a->flights = (tg_flight_t *)(b + a->hdr->off_flights);
}

static int fail(char **err, const char *path, const char *what)
{
    if (err && asprintf(err, "%s: %s: %s", path, what, strerror(errno)) < 0)
        *err = NULL;
    return -1;
}

int tg_arena_open(tg_arena_t *arena, const char *path, const tg_arena_sizes_t *sizes, int *created, char **err)
{
    tg_arena_hdr_t want;
    layout(&want, sizes);
    memset(arena, 0, sizeof(*arena));
    *created = 0;

    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(err, path, "cannot open arena");
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fail(err, path, "cannot stat arena");
    }
    int reuse = 0;
    if ((uint64_t)st.st_size == want.total_size) {
        tg_arena_hdr_t have;
        if (pread(fd, &have, sizeof(have), 0) == (ssize_t)sizeof(have) && header_matches(&have, &want))
            reuse = 1;
    }
    if (!reuse) {
        /* Fresh file: truncate to zero first so every region starts zeroed (sparse). */
        if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)want.total_size) != 0) {
            close(fd);
            return fail(err, path, "cannot size arena");
        }
    }
    void *base = mmap(NULL, want.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        close(fd);
        return fail(err, path, "cannot map arena");
    }
    arena->base = base;
    arena->size = want.total_size;
    arena->fd = fd;
    if (!reuse) {
        /* the magic goes in last: a crash while creating leaves a file that is recreated, not reused */
        uint64_t magic = want.magic;
        want.magic = 0;
        memcpy(base, &want, sizeof(want));
        bind_regions(arena);
        arena->hdr->created_ms = tg_now_ms();
        for (uint32_t i = 0; i < want.ring_slots; i++)
            atomic_store_explicit(&arena->ring[i].seq, i, memory_order_relaxed);
        msync(base, want.total_size, MS_SYNC);
        arena->hdr->magic = magic;
        tg_quota_boot_check(arena);
        atomic_thread_fence(memory_order_release);
        *created = 1;
    } else {
        bind_regions(arena);
        tg_quota_boot_check(arena); /* after a reboot: limiter clocks and in-flight reservations are void */
    }
    return 0;
}

void tg_arena_close(tg_arena_t *arena)
{
    tg_credit_detach(arena);
    tg_policy_writer_free(arena);
    if (arena->base)
        munmap(arena->base, arena->size);
    if (arena->fd > 0)
        close(arena->fd);
    memset(arena, 0, sizeof(*arena));
}
