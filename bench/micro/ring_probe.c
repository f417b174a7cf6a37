/* ring_probe - watches and loads the usage ring of a running tollgate (scenario S6 of
 * docs/benchmarks.md), linked against the tgcore static library.
 *
 * It maps tollgate's arena file read-write but never creates, resizes or re-initialises it: the
 * header must match this build's layout, or it refuses.
 *
 *   ring_probe stat ARENA                 one JSON object: head, tail (= records the persister has
 *                                         made durable), used, full events
 *   ring_probe watch ARENA MS INTERVAL    samples every INTERVAL ms for MS ms: the persisted rate
 *                                         (tail advance per second), the largest backlog, full events
 *   ring_probe inject ARENA N TIMEOUT_S [spread]
 *                                         "persister alone": pushes N realistic usage records of the
 *                                         root account as fast as the ring takes them, then waits
 *                                         until the persister has released them all; records/s.
 *                                         With "spread" the records go round-robin to every account
 *                                         in the arena, each costing 1,000 nano-dollars (so each
 *                                         batch updates the record, cards and ledger of every account
 *                                         it holds, as with keys in rotation)
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm/accounts.h"
#include "shm/arena-t.h"
#include "shm/ring.h"
#include "shm/usage.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int attach(tg_arena_t *a, const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    tg_arena_hdr_t h;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
        perror(path);
        return -1;
    }
    if (h.magic != TG_ARENA_MAGIC || h.version != TG_ARENA_VERSION || h.header_size != sizeof(tg_arena_hdr_t) ||
        h.account_size != sizeof(tg_account_t) || h.index_entry_size != sizeof(tg_index_entry_t) ||
        h.upstream_size != sizeof(tg_upstream_t) || h.ring_slot_size != sizeof(tg_ring_slot_t) ||
        (uint64_t)st.st_size != h.total_size) {
        fprintf(stderr, "ring_probe: %s does not match this build's arena layout\n", path);
        return -1;
    }
    char *base = mmap(NULL, h.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        perror("mmap");
        return -1;
    }
    memset(a, 0, sizeof(*a));
    a->base = base;
    a->size = h.total_size;
    a->fd = fd;
    a->hdr = (tg_arena_hdr_t *)base;
    a->accounts = (tg_account_t *)(base + h.off_accounts);
    a->index = (tg_index_entry_t *)(base + h.off_index);
    a->upstreams = (tg_upstream_t *)(base + h.off_upstreams);
    a->ring = (tg_ring_slot_t *)(base + h.off_ring);
    return 0;
}

static uint64_t head_of(tg_arena_t *a)
{
    return atomic_load(&a->hdr->ring_head);
}

static uint64_t full_of(tg_arena_t *a)
{
    return atomic_load(&a->hdr->ring_full_events);
}

static int cmd_stat(tg_arena_t *a)
{
    printf("{\"head\":%llu,\"tail\":%llu,\"used\":%llu,\"slots\":%u,\"full_events\":%llu,\"skipped\":%llu}\n",
           (unsigned long long)head_of(a), (unsigned long long)tg_ring_tail(a), (unsigned long long)tg_ring_used(a),
           a->hdr->ring_slots, (unsigned long long)full_of(a), (unsigned long long)atomic_load(&a->hdr->ring_skipped));
    return 0;
}

static int cmd_watch(tg_arena_t *a, uint64_t ms, uint64_t interval_ms)
{
    uint64_t t0 = now_ns(), end = t0 + ms * 1000000u, tail0 = tg_ring_tail(a), head0 = head_of(a), full0 = full_of(a);
    uint64_t max_used = 0, sum_used = 0, samples = 0;
    while (now_ns() < end) {
        uint64_t used = tg_ring_used(a);
        max_used = used > max_used ? used : max_used;
        sum_used += used;
        samples++;
        usleep((useconds_t)(interval_ms * 1000));
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    uint64_t tail1 = tg_ring_tail(a), head1 = head_of(a);
    printf("{\"seconds\":%.3f,\"pushed\":%llu,\"persisted\":%llu,\"pushed_per_s\":%.0f,\"persisted_per_s\":%.0f,"
           "\"max_backlog\":%llu,\"mean_backlog\":%.1f,\"slots\":%u,\"full_events\":%llu}\n",
           secs, (unsigned long long)(head1 - head0), (unsigned long long)(tail1 - tail0), (head1 - head0) / secs,
           (tail1 - tail0) / secs, (unsigned long long)max_used, samples ? (double)sum_used / samples : 0.0,
           a->hdr->ring_slots, (unsigned long long)(full_of(a) - full0));
    return 0;
}

/* The root account's id, so injected records are folded into a real account like live traffic. */
static uint64_t root_id(tg_arena_t *a)
{
    uint32_t hw = atomic_load(&a->hdr->n_accounts_hw);
    for (uint32_t i = 0; i < hw; i++) {
        tg_account_settings_t st;
        if (tg_account_read(a, i, &st) == 0 && (st.flags & TG_ACCT_ROOT))
            return st.id;
    }
    return 1;
}

/* Ids of every used account slot (malloc'd, *N of them). */
static uint64_t *account_ids(tg_arena_t *a, size_t *n)
{
    uint32_t hw = atomic_load(&a->hdr->n_accounts_hw);
    uint64_t *ids = malloc((hw ? hw : 1) * sizeof(*ids));
    *n = 0;
    for (uint32_t i = 0; ids && i < hw; i++) {
        tg_account_settings_t st;
        if (tg_account_read(a, i, &st) == 0)
            ids[(*n)++] = st.id;
    }
    return ids;
}

static int cmd_inject(tg_arena_t *a, uint64_t n, double timeout_s, int spread)
{
    tg_usage_t u = {0};
    uint8_t buf[TG_RING_PAYLOAD];
    size_t n_ids = 0;
    uint64_t *ids = spread ? account_ids(a, &n_ids) : NULL;
    if (spread && n_ids == 0) {
        fprintf(stderr, "ring_probe: no account in the arena\n");
        free(ids);
        return 1;
    }
    u.account_id = root_id(a);
    u.cost_nanos = spread ? 1000 : 0;
    u.upstream_id = 1;
    snprintf(u.model, sizeof(u.model), "gpt-4o-mini");
    snprintf(u.path, sizeof(u.path), "/v1/chat/completions");
    u.status = 200;
    u.prompt_tokens = 17;
    u.completion_tokens = 16;
    u.latency_ms = 1;
    uint64_t start_tail = tg_ring_tail(a), waits = 0;
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(timeout_s * 1e9);
    struct timespec wall;
    for (uint64_t i = 0; i < n; i++) {
        clock_gettime(CLOCK_REALTIME, &wall);
        u.ts_ms = (uint64_t)wall.tv_sec * 1000u + (uint64_t)wall.tv_nsec / 1000000u;
        snprintf(u.request_id, sizeof(u.request_id), "req_bench_%d_%llu", (int)getpid(), (unsigned long long)i);
        if (spread)
            u.account_id = ids[i % n_ids];
        int len = tg_usage_encode(&u, buf, sizeof(buf));
        if (len < 0)
            return 1;
        while (tg_ring_push(a, buf, (size_t)len) == TG_RING_FULL) {
            waits++;
            if (now_ns() > deadline)
                goto out;
            usleep(200);
        }
    }
out:;
    free(ids);
    uint64_t pushed_end = head_of(a), t_pushed = now_ns();
    while (tg_ring_tail(a) < pushed_end && now_ns() < deadline)
        usleep(500);
    uint64_t t1 = now_ns(), persisted = tg_ring_tail(a) - start_tail;
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"accounts\":%zu,\"records\":%llu,\"persisted\":%llu,\"seconds\":%.3f,\"push_seconds\":%.3f,\"records_per_s\":%.0f,"
           "\"full_waits\":%llu,\"complete\":%s}\n",
           spread ? n_ids : (size_t)1, (unsigned long long)n, (unsigned long long)persisted, secs, (double)(t_pushed - t0) / 1e9, persisted / secs,
           (unsigned long long)waits, tg_ring_tail(a) >= pushed_end ? "true" : "false");
    return tg_ring_tail(a) >= pushed_end ? 0 : 1;
}

int main(int argc, char **argv)
{
    tg_arena_t a;
    if (argc < 3 || attach(&a, argv[2]) != 0) {
        fprintf(stderr, "usage: ring_probe stat ARENA | watch ARENA MS INTERVAL_MS | inject ARENA N TIMEOUT_S [spread]\n");
        return 2;
    }
    if (strcmp(argv[1], "stat") == 0)
        return cmd_stat(&a);
    if (strcmp(argv[1], "watch") == 0 && argc == 5)
        return cmd_watch(&a, strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10));
    if (strcmp(argv[1], "inject") == 0 && (argc == 5 || (argc == 6 && strcmp(argv[5], "spread") == 0)))
        return cmd_inject(&a, strtoull(argv[3], NULL, 10), atof(argv[4]), argc == 6);
    fprintf(stderr, "ring_probe: unknown command\n");
    return 2;
}
