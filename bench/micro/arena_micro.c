/* arena_micro - micro-benchmarks of tollgate's shared-memory arena (scenario M of
 * docs/benchmarks.md), linked against the tgcore static library.
 *
 * Builds a private arena file (never tollgate's own), publishes N accounts, then times the hot-path
 * primitives with 1 process and with P processes running the same loop at once (fork; the arena is
 * MAP_SHARED, exactly as in tollgate's workers):
 *   key_hash      tg_key_hash() of a random existing API key (the SHA-256 every request computes)
 *   key_lookup    tg_account_lookup() of a random existing key (SHA-256 digest -> slot)
 *   key_auth      both: tg_key_hash() then tg_account_lookup(), what a request's authentication costs
 *                 (the key texts are prefetched: a request's key is in cache, read from its headers)
 *   key_miss      tg_account_lookup() of an unknown key
 *   seqlock_read  tg_account_read() of a random slot (the seqlock-protected settings copy)
 *   ring_push     tg_ring_push() of a realistic usage record into an empty ring (producers contend on
 *                 the head; the ring is released between rounds, untimed)
 *   reserve_settle  tg_credit_reserve() + tg_credit_settle() on a random account (1 account: the
 *                 hot account every process hits)
 *   gcra_check    clock_gettime() + tg_gcra_take() on one RPM limit shared by all processes (a limit
 *                 high enough never to refuse)
 * and prints the arena's size for a range of account counts (tg_arena_bytes).
 *
 * Output: one JSON object per line on stdout.
 *   arena_micro DIR ACCOUNTS[,ACCOUNTS...] PROCS OPS
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/keyhash.h"
#include "shm/accounts.h"
#include "shm/arena.h"
#include "shm/credit.h"
#include "shm/limiter.h"
#include "shm/ring.h"
#include "shm/usage.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void) /* xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dULL;
}

/* The API key of account I (sk-Xvs form, pseudo-random characters) and its digest, the SHA-256 of
 * the key as tollgate indexes it. */
static void key_text(uint32_t i, char out[TG_KEY_LEN + 1])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t s = 0x51ed270b27a1f0c3ULL ^ ((uint64_t)i * 0x9e3779b97f4a7c15ULL);
    memcpy(out, TG_KEY_PREFIX, sizeof(TG_KEY_PREFIX) - 1);
    for (size_t k = sizeof(TG_KEY_PREFIX) - 1; k < TG_KEY_LEN; k++) {
        s ^= s >> 31;
        s *= 0xbf58476d1ce4e5b9ULL;
        s ^= s >> 29;
        out[k] = alphabet[s % 62];
    }
    out[TG_KEY_LEN] = '\0';
}

static void key_of(uint32_t i, uint8_t out[32])
{
    char key[TG_KEY_LEN + 1];
    key_text(i, key);
    tg_key_hash(key, TG_KEY_LEN, out);
}

typedef enum { OP_HASH, OP_LOOKUP, OP_AUTH, OP_MISS, OP_READ, OP_PUSH, OP_CREDIT, OP_GCRA } op_t;
static const char *op_names[] = {"key_hash", "key_lookup", "key_auth", "key_miss", "seqlock_read", "ring_push", "reserve_settle", "gcra_check"};

struct shared;
typedef struct shared {
    _Atomic int ready, go, round, pushed_rounds;
    _Atomic uint64_t tat; /* the GCRA limit every process takes from */
    double ns_per_op[64];
    uint64_t full_retries[64];
} shared_t;

static tg_arena_t arena;
#define gcra_tat (g_shared->tat)
static struct shared *g_shared;
static uint32_t n_accounts;
static uint8_t record[TG_RING_PAYLOAD];
static size_t record_len;

/* One process's timed loop; returns ns per operation. */
static double run_loop(op_t op, uint64_t ops, uint32_t seed, uint64_t *full_retries)
{
    /* Operands are prepared before timing: random slots, and their keys for lookups. The set is
     * large (up to 1M) so that lookups into a big arena miss the CPU caches as real traffic does. */
    uint32_t batch = 1u << 20;
    while (batch > 1 && batch > ops)
        batch >>= 1;
    uint32_t *slots = malloc(batch * sizeof(uint32_t));
    uint8_t(*keys)[32] = malloc((size_t)batch * 32);
    char(*texts)[TG_KEY_LEN + 1] = op == OP_HASH || op == OP_AUTH ? malloc((size_t)batch * (TG_KEY_LEN + 1)) : NULL;
    rng_state = 0x2545f4914f6cdd1dULL + (uint64_t)seed * 0x9e3779b97f4a7c15ULL; /* never 0 */
    for (uint32_t i = 0; i < batch; i++) {
        slots[i] = (uint32_t)(rng() % n_accounts);
        key_of(op == OP_MISS ? n_accounts + 1 + (uint32_t)(rng() % 1000000) : slots[i], keys[i]);
        if (texts)
            key_text(slots[i], texts[i]);
    }
    /* Each operation's operand depends on the previous result (through arithmetic on it, not a
     * branch the CPU could predict past), so operations do not overlap: the time is one operation's
     * latency, as in a request, not the throughput of many lookups in flight. */
    int64_t last = 0;
    tg_account_settings_t st;
    tg_credit_hold_t hold;
    const tg_credit_terms_t terms = {0, 0, 24300, 0}; /* no minimum balance, no monthly cap */
    struct timespec ts;
    uint64_t retries = 0, t0 = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0 warms the page tables and caches, untimed */
        uint64_t n = pass == 0 ? (ops < batch ? ops : batch) : ops;
        t0 = now_ns();
        for (uint64_t i = 0; i < n; i++) {
            uint32_t k = (uint32_t)(i + ((uint64_t)last >> 63)) & (batch - 1);
            uint8_t digest[32];
            if (texts) /* a request's key was just read from its headers: keep the text in cache */
                __builtin_prefetch(texts[(k + 16) & (batch - 1)]);
            switch (op) {
            case OP_HASH:
                tg_key_hash(texts[k], TG_KEY_LEN, digest);
                last = -(int64_t)(digest[0] >> 7);
                break;
            case OP_AUTH:
                tg_key_hash(texts[k], TG_KEY_LEN, digest);
                last = tg_account_lookup(&arena, digest);
                break;
            case OP_LOOKUP:
            case OP_MISS: last = tg_account_lookup(&arena, keys[k]); break;
            case OP_READ: last = tg_account_read(&arena, slots[k], &st); break;
            case OP_CREDIT:
                last = tg_credit_reserve(&arena, slots[k], 1000, &terms, &hold);
                if (last == TG_CREDIT_OK)
                    tg_credit_settle(&arena, &hold, 900, terms.month, 0);
                break;
            case OP_GCRA:
                clock_gettime(CLOCK_MONOTONIC, &ts);
                last = -(int64_t)tg_gcra_take(&gcra_tat, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                                              TG_NS_PER_MIN, 1000000000000ull, 1, NULL);
                break;
            case OP_PUSH: break; /* see push_rounds() */
            }
        }
    }
    double ns = (double)(now_ns() - t0) / (double)ops;
    free(slots);
    free(keys);
    free(texts);
    *full_retries = retries;
    return ns;
}

/* OP_PUSH in one of PROCS processes: rounds in which every process pushes its share of an empty
 * ring while the parent waits; between rounds the parent releases the ring (untimed). So the time
 * is the push itself, with the producers contending on the ring head, never a wait for a consumer. */
static double push_rounds(shared_t *sh, int procs, uint64_t ops, uint64_t *full_retries)
{
    uint64_t share = (arena.hdr->ring_slots - 1) / (uint64_t)procs, done = 0, retries = 0, elapsed = 0;
    for (int round = 1; done < ops; round++) {
        while (atomic_load(&sh->round) < round)
            ;
        uint64_t n = ops - done < share ? ops - done : share, t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
            if (tg_ring_push(&arena, record, record_len) != TG_RING_OK)
                retries++;
        elapsed += now_ns() - t0;
        done += n;
        atomic_fetch_add(&sh->pushed_rounds, 1);
    }
    *full_retries = retries;
    return (double)elapsed / (double)ops;
}

/* The parent's side of push_rounds(): release the ring after each round, then start the next. */
static void release_rounds(shared_t *sh, int procs, uint64_t ops)
{
    uint64_t share = (arena.hdr->ring_slots - 1) / (uint64_t)procs, rounds = (ops + share - 1) / share;
    for (uint64_t r = 1; r <= rounds; r++) {
        atomic_store(&sh->round, (int)r);
        while ((uint64_t)atomic_load(&sh->pushed_rounds) < r * (uint64_t)procs)
            ;
        tg_ring_release(&arena, atomic_load(&arena.hdr->ring_head));
    }
}

static void bench(op_t op, int procs, uint64_t ops, shared_t *sh)
{
    memset(sh, 0, sizeof(*sh));
    pid_t kids[64];
    for (int p = 0; p < procs; p++) {
        if ((kids[p] = fork()) == 0) {
            atomic_fetch_add(&sh->ready, 1);
            while (!atomic_load(&sh->go))
                ;
            if (op == OP_PUSH)
                sh->ns_per_op[p] = push_rounds(sh, procs, ops, &sh->full_retries[p]);
            else
                sh->ns_per_op[p] = run_loop(op, ops, (uint32_t)p + 1, &sh->full_retries[p]);
            _exit(0);
        }
    }
    while (atomic_load(&sh->ready) < procs)
        usleep(100);
    uint64_t t0 = now_ns();
    atomic_store(&sh->go, 1);
    if (op == OP_PUSH)
        release_rounds(sh, procs, ops);
    for (int p = 0; p < procs; p++)
        waitpid(kids[p], NULL, 0);
    double wall = (double)(now_ns() - t0);

    double sum = 0;
    uint64_t retries = 0;
    for (int p = 0; p < procs; p++) {
        sum += sh->ns_per_op[p];
        retries += sh->full_retries[p];
    }
    printf("{\"bench\":\"%s\",\"accounts\":%u,\"procs\":%d,\"ops_per_proc\":%llu,\"ns_per_op\":%.1f,"
           "\"mops_total\":%.2f,\"ring_full_retries\":%llu}\n",
           op_names[op], n_accounts, procs, (unsigned long long)ops, sum / procs, (double)ops * procs / wall * 1e3,
           (unsigned long long)retries);
    fflush(stdout);
}

static void make_record(void)
{
    tg_usage_t u = {0};
    snprintf(u.request_id, sizeof(u.request_id), "req_867c4ca841ed1feb000000000001");
    u.ts_ms = 1795639248000ULL;
    u.account_id = 1;
    u.upstream_id = 1;
    snprintf(u.model, sizeof(u.model), "gpt-4o-mini");
    snprintf(u.path, sizeof(u.path), "/v1/chat/completions");
    u.status = 200;
    u.prompt_tokens = 17;
    u.completion_tokens = 16;
    u.latency_ms = 1;
    int n = tg_usage_encode(&u, record, sizeof(record));
    if (n < 0) {
        fprintf(stderr, "arena_micro: cannot encode a usage record\n");
        exit(1);
    }
    record_len = (size_t)n;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: arena_micro DIR ACCOUNTS[,ACCOUNTS...] PROCS OPS\n");
        return 2;
    }
    const char *dir = argv[1];
    int procs = atoi(argv[3]);
    uint64_t ops = strtoull(argv[4], NULL, 10);
    if (procs < 1 || procs > 64 || ops == 0) {
        fprintf(stderr, "arena_micro: PROCS must be 1..64 and OPS positive\n");
        return 2;
    }
    shared_t *sh = mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    g_shared = sh;
    make_record();

    /* sizes: what the arena costs for a given number of accounts (default upstream keys and ring) */
    const uint32_t size_points[] = {1000, 10000, 100000, 1000000, 10000000};
    for (size_t i = 0; i < sizeof(size_points) / sizeof(size_points[0]); i++) {
        tg_arena_sizes_t sz = {size_points[i], 4096, 65536};
        tg_arena_sizes_t bare = {size_points[i], 1, 1024};
        printf("{\"bench\":\"arena_bytes\",\"accounts\":%u,\"bytes\":%llu,\"bytes_accounts_only\":%llu,"
               "\"account_size\":%zu,\"index_entry_size\":%zu,\"upstream_size\":%zu,\"ring_slot_size\":%zu}\n",
               size_points[i], (unsigned long long)tg_arena_bytes(&sz), (unsigned long long)tg_arena_bytes(&bare),
               sizeof(tg_account_t), sizeof(tg_index_entry_t), sizeof(tg_upstream_t), sizeof(tg_ring_slot_t));
    }
    fflush(stdout);

    int first = 1;
    for (char *list = argv[2], *tok; (tok = strsep(&list, ",")) != NULL;) {
        n_accounts = (uint32_t)strtoul(tok, NULL, 10);
        if (n_accounts < 1)
            continue;
        char path[4096], *err = NULL;
        snprintf(path, sizeof(path), "%s/micro-arena-%u.tg", dir, n_accounts);
        unlink(path);
        tg_arena_sizes_t sizes = {n_accounts < 16 ? 16 : n_accounts, 16, 65536};
        int created;
        if (tg_arena_open(&arena, path, &sizes, &created, &err) != 0) {
            fprintf(stderr, "arena_micro: %s\n", err);
            return 1;
        }
        uint64_t t0 = now_ns();
        for (uint32_t i = 0; i < n_accounts; i++) {
            tg_account_settings_t st = {.id = i + 1, .parent_id = 1, .owner_id = 1, .flags = TG_ACCT_ENABLED, .level = 1, .depth = 1};
            key_of(i, st.key_hash);
            snprintf(st.name, sizeof(st.name), "acct-%u", i);
            if (tg_account_publish(&arena, i, &st) != 0) {
                fprintf(stderr, "arena_micro: publish %u failed\n", i);
                return 1;
            }
            atomic_store(&arena.accounts[i].balance, (int64_t)1 << 60); /* never runs out */
        }
        printf("{\"bench\":\"publish\",\"accounts\":%u,\"procs\":1,\"ns_per_op\":%.1f}\n", n_accounts,
               (double)(now_ns() - t0) / n_accounts);
        /* verify before timing: every key must be found in its own slot */
        for (uint32_t i = 0; i < n_accounts; i += 1 + n_accounts / 1000) {
            uint8_t k[32];
            key_of(i, k);
            if (tg_account_lookup(&arena, k) != (int64_t)i) {
                fprintf(stderr, "arena_micro: lookup of account %u is wrong\n", i);
                return 1;
            }
        }
        for (int p = 1; p <= procs; p = p == procs ? procs + 1 : (p * 2 > procs ? procs : p * 2)) {
            bench(OP_LOOKUP, p, ops, sh);
            bench(OP_AUTH, p, ops, sh);
            bench(OP_MISS, p, ops, sh);
            bench(OP_READ, p, ops, sh);
            bench(OP_CREDIT, p, ops, sh);
            if (first) { /* the hash, the ring and the shared limit do not depend on the number of accounts */
                bench(OP_HASH, p, ops, sh);
                bench(OP_PUSH, p, ops, sh);
                bench(OP_GCRA, p, ops, sh);
            }
        }
        tg_arena_close(&arena);
        unlink(path);
        first = 0;
    }
    return 0;
}
