/* hold.c - holding requests: delayed callbacks of arbitrary duration, and noticing HTTP/1 clients that leave meanwhile.
 *
 * h2o 2.2.5 timers are lists of one fixed duration, so we keep a small cache of them keyed by duration. While an HTTP/1
 * request is processed h2o does not read its socket, so a client that disconnects during a delay or a stall would go
 * unnoticed; held HTTP/1 requests are therefore watched, peeking at their sockets a few times a second. (HTTP/2
 * connections keep being read by h2o, which disposes of the request itself.) */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "mock.h"

#define MAX_DURATIONS 32
#define WATCH_INTERVAL_MS 200

static h2o_context_t *ctx;
static struct {
    uint64_t ms;
    h2o_timeout_t timeout;
} durations[MAX_DURATIONS];
static size_t num_durations;

static h2o_linklist_t watch_list;
static h2o_timeout_entry_t watch_entry;

static h2o_timeout_t *timeout_for(uint64_t ms)
{
    size_t i, closest = 0;

    for (i = 0; i != num_durations; ++i)
        if (durations[i].ms == ms)
            return &durations[i].timeout;
    if (num_durations < MAX_DURATIONS) {
        durations[num_durations].ms = ms;
        h2o_timeout_init(ctx->loop, &durations[num_durations].timeout, ms);
        return &durations[num_durations++].timeout;
    }
    /* cache full: approximate with the nearest known duration */
    for (i = 1; i != num_durations; ++i) {
        uint64_t d = durations[i].ms > ms ? durations[i].ms - ms : ms - durations[i].ms;
        uint64_t best = durations[closest].ms > ms ? durations[closest].ms - ms : ms - durations[closest].ms;
        if (d < best)
            closest = i;
    }
    if (!mock_quiet)
        fprintf(stderr, "tollgate-mock: more than %d distinct delays; %llu ms rounded to %llu ms\n", MAX_DURATIONS,
                (unsigned long long)ms, (unsigned long long)durations[closest].ms);
    return &durations[closest].timeout;
}

static int client_gone(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    char c;

    if (sock == NULL)
        return 0;
    ssize_t n = recv(h2o_socket_get_fd(sock), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void on_watch(h2o_timeout_entry_t *entry)
{
    h2o_linklist_t *node, *next;

    for (node = watch_list.next; node != &watch_list; node = next) {
        mock_hold_t *hold = H2O_STRUCT_FROM_MEMBER(mock_hold_t, watched, node);
        next = node->next;
        if (client_gone(hold->req)) {
            hold_release(hold);
            hold->on_gone(hold);
        }
    }
    if (!h2o_linklist_is_empty(&watch_list))
        h2o_timeout_link(ctx->loop, timeout_for(WATCH_INTERVAL_MS), &watch_entry);
}

static void watch(mock_hold_t *hold)
{
    if (hold->req->version >= 0x200 || h2o_linklist_is_linked(&hold->watched))
        return;
    h2o_linklist_insert(&watch_list, &hold->watched);
    if (!h2o_timeout_is_linked(&watch_entry))
        h2o_timeout_link(ctx->loop, timeout_for(WATCH_INTERVAL_MS), &watch_entry);
}

static void on_timer(h2o_timeout_entry_t *entry)
{
    mock_hold_t *hold = H2O_STRUCT_FROM_MEMBER(mock_hold_t, timer, entry);
    hold_release(hold);
    hold->on_wake(hold);
}

void hold_init(h2o_context_t *context)
{
    ctx = context;
    h2o_linklist_init_anchor(&watch_list);
    watch_entry = (h2o_timeout_entry_t){.cb = on_watch};
}

void hold_prepare(mock_hold_t *hold, h2o_req_t *req, void (*on_wake)(mock_hold_t *), void (*on_gone)(mock_hold_t *))
{
    *hold = (mock_hold_t){.timer = {.cb = on_timer}, .req = req, .on_wake = on_wake, .on_gone = on_gone};
}

void hold_for(mock_hold_t *hold, uint64_t ms)
{
    h2o_timeout_link(ctx->loop, ms == 0 ? &ctx->zero_timeout : timeout_for(ms), &hold->timer);
    watch(hold);
}

void hold_forever(mock_hold_t *hold)
{
    watch(hold);
}

void hold_release(mock_hold_t *hold)
{
    h2o_timeout_unlink(&hold->timer);
    if (h2o_linklist_is_linked(&hold->watched))
        h2o_linklist_unlink(&hold->watched);
}
