/* tests/unit/test_ring.c: unit tests for shm/ring.c (the lock-free MPSC usage ring): ordering,
 * FULL/TOOBIG, wraparound, release-after-durability, a multi-process stress test, and claims
 * whose producer is alive (PENDING), dead or never wrote its pid (STUCK). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "shm/arena.h"
#include "shm/ring.h"

#include "arena_fixture.h"

typedef tg_test_arena_t fixture_t; /* tests/unit/arena_fixture.h */

static int open_ring(void **state, uint32_t slots)
{
    return tg_test_arena_setup(state, "ring", (tg_arena_sizes_t){4, 1, slots});
}

static int setup8(void **state)
{
    return open_ring(state, 8);
}

static int setup256(void **state)
{
    return open_ring(state, 256);
}

/* Record number N: "rec-N" followed by N % 50 bytes derived from N. */
static size_t make_record(uint64_t n, uint8_t *buf)
{
    int k = snprintf((char *)buf, 32, "rec-%llu", (unsigned long long)n);
    size_t len = (size_t)k + 1 + (size_t)(n % 50);
    for (size_t i = (size_t)k + 1; i < len; i++)
        buf[i] = (uint8_t)(n * 31 + i);
    return len;
}

static void expect_record(tg_arena_t *a, uint64_t pos, uint64_t n)
{
    uint8_t want[128];
    size_t wlen = make_record(n, want);
    const uint8_t *data = NULL;
    size_t len = 0;
    int rc = tg_ring_peek(a, pos, &data, &len);
    if (rc != TG_RING_OK)
        fail_msg("peek(%llu): rc %d, want record %llu", (unsigned long long)pos, rc, (unsigned long long)n);
    if (len != wlen || memcmp(data, want, len) != 0)
        fail_msg("peek(%llu): got \"%.*s\" (%zu bytes), want record %llu", (unsigned long long)pos, (int)len,
                 (const char *)data, len, (unsigned long long)n);
}

static void push_record(tg_arena_t *a, uint64_t n)
{
    uint8_t buf[128];
    size_t len = make_record(n, buf);
    assert_int_equal(tg_ring_push(a, buf, len), TG_RING_OK);
}

static void test_push_peek_release_order(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    const uint8_t *data;
    size_t len;
    assert_true(tg_ring_tail(a) == 0);
    assert_true(tg_ring_used(a) == 0);
    assert_int_equal(tg_ring_peek(a, 0, &data, &len), TG_RING_EMPTY);

    for (uint64_t n = 0; n < 5; n++)
        push_record(a, n);
    assert_true(tg_ring_used(a) == 5);
    /* peeking does not consume: twice, in any order */
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t n = 0; n < 5; n++)
            expect_record(a, n, n);
    expect_record(a, 3, 3);
    assert_int_equal(tg_ring_peek(a, 5, &data, &len), TG_RING_EMPTY);
    assert_true(tg_ring_tail(a) == 0);
    assert_true(tg_ring_used(a) == 5);

    tg_ring_release(a, 2);
    assert_true(tg_ring_tail(a) == 2);
    assert_true(tg_ring_used(a) == 3);
    expect_record(a, 2, 2);
    expect_record(a, 4, 4);
    push_record(a, 5);
    expect_record(a, 5, 5);
    tg_ring_release(a, 6);
    assert_true(tg_ring_tail(a) == 6);
    assert_true(tg_ring_used(a) == 0);
    assert_int_equal(tg_ring_peek(a, 6, &data, &len), TG_RING_EMPTY);

    /* an empty record is a record */
    assert_int_equal(tg_ring_push(a, "", 0), TG_RING_OK);
    assert_int_equal(tg_ring_peek(a, 6, &data, &len), TG_RING_OK);
    assert_int_equal(len, 0);
    tg_ring_release(a, 7);
}

/* FULL when every slot holds an unreleased record, read or not; a release makes room. */
static void test_full(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    for (uint64_t n = 0; n < 8; n++)
        push_record(a, n);
    uint64_t full0 = atomic_load(&a->hdr->ring_full_events);
    uint8_t buf[128];
    size_t len = make_record(99, buf);
    assert_int_equal(tg_ring_push(a, buf, len), TG_RING_FULL);
    assert_int_equal(tg_ring_push(a, buf, len), TG_RING_FULL);
    assert_true(atomic_load(&a->hdr->ring_full_events) == full0 + 2);
    assert_true(tg_ring_used(a) == 8);
    /* reading everything without releasing frees nothing (release comes after durability) */
    for (uint64_t n = 0; n < 8; n++)
        expect_record(a, n, n);
    assert_int_equal(tg_ring_push(a, buf, len), TG_RING_FULL);
    /* the records are intact after the failed pushes */
    for (uint64_t n = 0; n < 8; n++)
        expect_record(a, n, n);
    tg_ring_release(a, 1);
    push_record(a, 8);
    assert_int_equal(tg_ring_push(a, buf, len), TG_RING_FULL);
    for (uint64_t n = 1; n < 9; n++)
        expect_record(a, n, n);
    tg_ring_release(a, 9);
    assert_true(tg_ring_used(a) == 0);
}

static void test_toobig(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t big[TG_RING_PAYLOAD + 2];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 13 + 1);
    assert_int_equal(tg_ring_push(a, big, TG_RING_PAYLOAD + 1), TG_RING_TOOBIG);
    assert_int_equal(tg_ring_push(a, big, SIZE_MAX), TG_RING_TOOBIG);
    assert_true(tg_ring_used(a) == 0);
    assert_true(atomic_load(&a->hdr->ring_head) == 0);
    /* exactly the payload size fits, byte for byte */
    assert_int_equal(tg_ring_push(a, big, TG_RING_PAYLOAD), TG_RING_OK);
    const uint8_t *data;
    size_t len;
    assert_int_equal(tg_ring_peek(a, 0, &data, &len), TG_RING_OK);
    assert_int_equal(len, TG_RING_PAYLOAD);
    assert_memory_equal(data, big, TG_RING_PAYLOAD);
    /* and does not spill into the next slot */
    push_record(a, 1);
    expect_record(a, 1, 1);
    assert_int_equal(tg_ring_peek(a, 0, &data, &len), TG_RING_OK);
    assert_memory_equal(data, big, TG_RING_PAYLOAD);
}

/* Many laps around an 8-slot ring with batches of every size. */
static void test_wraparound(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint64_t next_push = 0, next_read = 0;
    for (int round = 0; round < 200; round++) {
        uint64_t room = 8 - (next_push - next_read);
        uint64_t batch = 1 + (uint64_t)(round * 5) % 8;
        if (batch > room)
            batch = room;
        for (uint64_t i = 0; i < batch; i++)
            push_record(a, next_push++);
        assert_true(tg_ring_used(a) == next_push - next_read);
        if (next_push - next_read == 8)
            assert_int_equal(tg_ring_push(a, "x", 1), TG_RING_FULL);
        /* consume part of what is there, sometimes nothing */
        uint64_t avail = next_push - next_read;
        uint64_t take = (round % 4 == 3) ? 0 : 1 + (uint64_t)round % avail;
        uint64_t tail = tg_ring_tail(a);
        assert_true(tail == next_read);
        for (uint64_t i = 0; i < take; i++)
            expect_record(a, tail + i, next_read + i);
        next_read += take;
        tg_ring_release(a, next_read);
        assert_true(tg_ring_tail(a) == next_read);
    }
    /* drain the rest */
    uint64_t tail = tg_ring_tail(a);
    for (uint64_t p = tail; p < next_push; p++)
        expect_record(a, p, p);
    tg_ring_release(a, next_push);
    assert_true(next_push > 8 * 40); /* at least 40 laps */
    assert_true(atomic_load(&a->hdr->ring_head) == next_push);
    assert_true(tg_ring_used(a) == 0);
    const uint8_t *data;
    size_t len;
    assert_int_equal(tg_ring_peek(a, next_push, &data, &len), TG_RING_EMPTY);
    /* a full lap at once still works after all that */
    for (uint64_t i = 0; i < 8; i++)
        push_record(a, next_push + i);
    assert_int_equal(tg_ring_push(a, "x", 1), TG_RING_FULL);
    for (uint64_t i = 0; i < 8; i++)
        expect_record(a, next_push + i, next_push + i);
}

/* Records survive the consumer going away before release: re-attaching the arena (a persister or
 * master restart) finds them again at the same positions. */
static void test_unreleased_survive_reattach(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    for (uint64_t n = 0; n < 5; n++)
        push_record(a, n);
    tg_ring_release(a, 2);
    expect_record(a, 2, 2); /* read, but not released: "crash" */
    int created = -1;
    assert_int_equal(tg_test_arena_reopen(f, &created), 0);
    assert_int_equal(created, 0);
    assert_true(tg_ring_tail(a) == 2);
    assert_true(tg_ring_used(a) == 3);
    for (uint64_t n = 2; n < 5; n++)
        expect_record(a, n, n);
    push_record(a, 5);
    expect_record(a, 5, 5);
}

/* Payload of the stress test. */
typedef struct stress_rec {
    uint32_t producer;
    uint32_t seq;
    uint8_t fill[40];
} stress_rec_t;

enum { PRODUCERS = 4, PER_PRODUCER = 20000 };

static size_t stress_len(uint32_t seq)
{
    return offsetof(stress_rec_t, fill) + seq % 41;
}

static void producer_main(tg_arena_t *a, uint32_t id, int start_fd)
{
    char c;
    if (read(start_fd, &c, 1) != 0) /* all producers start together, when the parent closes the pipe */
        _exit(3);
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++) {
        if (seq % 256 == 255)
            sched_yield(); /* let the other producers in, so that their pushes interleave */
        stress_rec_t r;
        r.producer = id;
        r.seq = seq;
        for (size_t i = 0; i < sizeof(r.fill); i++)
            r.fill[i] = (uint8_t)(id * 101 + seq + i);
        for (;;) {
            int rc = tg_ring_push(a, &r, stress_len(seq));
            if (rc == TG_RING_OK)
                break;
            if (rc != TG_RING_FULL)
                _exit(2);
            sched_yield();
        }
    }
    _exit(0);
}

/* 4 producer processes push 20,000 records each while this process consumes in batches: every
 * record arrives exactly once, intact, and in order per producer. */
static void test_multiprocess_stress(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    pid_t pids[PRODUCERS];
    int start[2];
    assert_int_equal(pipe(start), 0);
    fflush(NULL);
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            close(start[1]);
            producer_main(a, p, start[0]);
        }
    }
    close(start[0]);
    close(start[1]);
    uint32_t next[PRODUCERS] = {0};
    uint64_t total = 0, batches = 0, switches = 0;
    uint32_t last_producer = UINT32_MAX;
    uint64_t deadline = tg_mono_ns() + 60ull * 1000000000ull;
    const char *problem = NULL;
    char msg[256];
    while (total < (uint64_t)PRODUCERS * PER_PRODUCER && !problem) {
        if (tg_mono_ns() > deadline) {
            problem = "timed out";
            break;
        }
        uint64_t tail = tg_ring_tail(a), pos = tail;
        uint64_t max_batch = 1 + batches % 37;
        while (pos - tail < max_batch) {
            const uint8_t *data;
            size_t len;
            int rc = tg_ring_peek(a, pos, &data, &len);
            if (rc == TG_RING_PENDING || rc == TG_RING_STUCK) { /* a producer is mid-write */
                break;
            }
            if (rc == TG_RING_EMPTY)
                break;
            stress_rec_t r;
            memset(&r, 0, sizeof(r));
            if (len < offsetof(stress_rec_t, fill) || len > sizeof(r)) {
                snprintf(msg, sizeof(msg), "record of %zu bytes at %llu", len, (unsigned long long)pos);
                problem = msg;
                break;
            }
            memcpy(&r, data, len);
            if (r.producer >= PRODUCERS || r.seq != next[r.producer] || len != stress_len(r.seq)) {
                snprintf(msg, sizeof(msg), "at %llu: producer %u seq %u len %zu, expected seq %u",
                         (unsigned long long)pos, r.producer, r.seq, len,
                         r.producer < PRODUCERS ? next[r.producer] : 0);
                problem = msg;
                break;
            }
            for (size_t i = 0; i + offsetof(stress_rec_t, fill) < len; i++)
                if (r.fill[i] != (uint8_t)(r.producer * 101 + r.seq + i)) {
                    snprintf(msg, sizeof(msg), "corrupt payload: producer %u seq %u byte %zu", r.producer, r.seq, i);
                    problem = msg;
                    break;
                }
            if (problem)
                break;
            switches += r.producer != last_producer;
            last_producer = r.producer;
            next[r.producer]++;
            total++;
            pos++;
        }
        if (pos > tail)
            tg_ring_release(a, pos);
        else
            sched_yield();
        batches++;
    }
    if (problem)
        for (uint32_t p = 0; p < PRODUCERS; p++)
            kill(pids[p], SIGKILL);
    for (uint32_t p = 0; p < PRODUCERS; p++) {
        int status;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        if (!problem && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            snprintf(msg, sizeof(msg), "producer %u exited with status 0x%x", p, status);
            problem = msg;
        }
    }
    if (problem)
        fail_msg("%s (%llu records consumed)", problem, (unsigned long long)total);
    for (uint32_t p = 0; p < PRODUCERS; p++)
        assert_int_equal(next[p], PER_PRODUCER);
    assert_true(tg_ring_used(a) == 0);
    assert_true(atomic_load(&a->hdr->ring_head) == (uint64_t)PRODUCERS * PER_PRODUCER);
    const uint8_t *data;
    size_t len;
    assert_int_equal(tg_ring_peek(a, tg_ring_tail(a), &data, &len), TG_RING_EMPTY);
    assert_true(atomic_load(&a->hdr->ring_skipped) == 0);
    /* the producers really ran concurrently: their records are interleaved (how much depends on
     * the scheduler; on a loaded 2-core machine a few switches are all one can count on) */
    if (switches < PRODUCERS)
        fail_msg("only %llu producer switches in the consumed order", (unsigned long long)switches);
}

/* Claims position head the way a producer does, without publishing; writes PID into the slot. */
static uint64_t claim_without_publish(tg_arena_t *a, int32_t pid)
{
    uint64_t head = atomic_load(&a->hdr->ring_head);
    tg_ring_slot_t *s = &a->ring[head & (a->hdr->ring_slots - 1)];
    assert_true(atomic_load(&s->seq) == head); /* free for this position */
    assert_true(atomic_compare_exchange_strong(&a->hdr->ring_head, &head, head + 1));
    s->pid = pid;
    return head;
}

static void test_pending_and_stuck(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    const uint8_t *data;
    size_t len;

    /* a live producer in another process, blocked until we let it go */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t live = fork();
    assert_true(live >= 0);
    if (live == 0) {
        char c;
        close(fds[1]);
        ssize_t r = read(fds[0], &c, 1);
        _exit(r < 0 ? 1 : 0);
    }
    close(fds[0]);

    push_record(a, 0);                                   /* position 0 */
    uint64_t claimed = claim_without_publish(a, live);   /* position 1 */
    push_record(a, 2);                                   /* position 2, published after the claim */
    assert_true(claimed == 1);
    assert_true(tg_ring_used(a) == 3);

    expect_record(a, 0, 0);
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_PENDING);
    expect_record(a, 2, 2); /* later records are complete but must wait behind the claim */
    a->ring[1].pid = (int32_t)getpid();
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_PENDING);
    a->ring[1].pid = (int32_t)live;
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_PENDING);

    /* the producer dies (and is reaped): STUCK */
    close(fds[1]);
    int status;
    assert_int_equal(waitpid(live, &status, 0), live);
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_STUCK);

    /* a child that exited normally */
    pid_t dead = fork();
    assert_true(dead >= 0);
    if (dead == 0)
        _exit(0);
    assert_int_equal(waitpid(dead, &status, 0), dead);
    a->ring[1].pid = (int32_t)dead;
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_STUCK);

    /* pid never written */
    a->ring[1].pid = 0;
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_STUCK);

    /* the consumer stores record 0, releases it, then skips the stuck claim */
    tg_ring_release(a, 1);
    assert_int_equal(tg_ring_peek(a, 1, &data, &len), TG_RING_STUCK);
    uint64_t skipped0 = atomic_load(&a->hdr->ring_skipped);
    tg_ring_skip(a, 1);
    assert_true(atomic_load(&a->hdr->ring_skipped) == skipped0 + 1);
    assert_true(tg_ring_tail(a) == 2);
    assert_true(tg_ring_used(a) == 1);
    expect_record(a, 2, 2);
    tg_ring_release(a, 3);
    assert_true(tg_ring_used(a) == 0);

    /* the skipped slot is recycled: a whole lap of pushes fits and reads back in order */
    for (uint64_t n = 3; n < 11; n++)
        push_record(a, n);
    assert_int_equal(tg_ring_push(a, "x", 1), TG_RING_FULL);
    for (uint64_t n = 3; n < 11; n++)
        expect_record(a, n, n);
    tg_ring_release(a, 11);

    /* a claim at the very tail with nothing before it */
    uint64_t c2 = claim_without_publish(a, 0);
    assert_true(c2 == 11);
    assert_int_equal(tg_ring_peek(a, 11, &data, &len), TG_RING_STUCK);
    assert_int_equal(tg_ring_peek(a, 12, &data, &len), TG_RING_EMPTY);
    tg_ring_skip(a, 11);
    assert_true(atomic_load(&a->hdr->ring_skipped) == skipped0 + 2);
    assert_int_equal(tg_ring_peek(a, 12, &data, &len), TG_RING_EMPTY);
    push_record(a, 12);
    expect_record(a, 12, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_peek_release_order, setup8, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_full, setup8, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_toobig, setup8, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_wraparound, setup8, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_unreleased_survive_reattach, setup8, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_multiprocess_stress, setup256, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_pending_and_stuck, setup8, tg_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
