/* loadgen - the HTTP/1.1 load client of the benchmark suite for what wrk and h2load cannot do
 * (bench/run.sh). Two modes over C keep-alive connections to one loopback server:
 *
 * streams (S2, S3): N streaming POSTs in total, each connection running its streams one after
 *   another. Per stream: time from sending to the first complete SSE event (TTFB), gaps between
 *   events, whole duration. With C = N every stream has its own connection and all are open at
 *   once (S3); the number open is written to a status file so the caller can sample memory.
 *
 * paced (S7, --rate R): wrk2-style open loop. Request i is due at t0 + i/R whatever happened to
 *   the earlier ones; it goes out on the first idle connection, and its latency is counted from
 *   when it was due, not when it was sent, so a server that falls behind is charged for the queue
 *   it causes (no coordinated omission). The first --warmup-s seconds are not counted.
 *
 * Output: one JSON object on stdout. Exit 0 when every request/stream completed with status 200.
 *
 *   loadgen --port P --body FILE [--host 127.0.0.1] [--path /v1/chat/completions] [-H 'N: v']...
 *           [--conns C] [--timeout-s T] [--max-connecting K]
 *           [--streams N] [--status FILE]                      streams mode
 *           --rate R --duration-s D [--warmup-s W]             paced mode
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_IDLE, ST_CONNECTING, ST_READY, ST_HEADERS, ST_BODY };
enum { CH_SIZE, CH_SIZE_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

typedef struct conn {
    int fd, state, chunked, close_after, status, chunk_state, trailer_line;
    uint64_t remaining; /* content-length body bytes left, chunk bytes left, or UINT64_MAX (until close) */
    char hdr[8192];
    size_t hdr_len;
    uint64_t t_due, t_sent, t_last_event;
    unsigned events, tail; /* tail: the last body byte, to find "\n\n" across reads */
} conn_t;

typedef struct series {
    double *v;
    size_t n, cap;
} series_t;

/* settings */
static const char *host = "127.0.0.1", *path = "/v1/chat/completions", *status_path;
static int port, nconns = 1, max_connecting = 64;
static long total; /* streams, or in paced mode the requests due over warm-up + duration */
static double timeout_s = 60, rate, duration_s, warmup_s;
static char *request;
static size_t request_len;

/* state */
static int epfd;
static conn_t *conns;
static int *idle, nidle;
static long issued, completed, failed, open_now, peak_open, connecting_now;
static uint64_t t0, t_measure, t_measure_end, total_events, window_done;
static series_t ttfb, gaps, durations, latency, service;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void add(series_t *s, double v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        if ((s->v = realloc(s->v, s->cap * sizeof(double))) == NULL)
            die("realloc");
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* "NAME":{"n":..,"mean":..,"p50":..,"p90":..,"p99":..,"p999":..,"max":..} in milliseconds */
static void print_series(const char *name, series_t *s)
{
    double sum = 0;
    printf("\"%s\":{\"n\":%zu", name, s->n);
    if (s->n) {
        qsort(s->v, s->n, sizeof(double), cmp_double);
        for (size_t i = 0; i < s->n; i++)
            sum += s->v[i];
        const double qs[] = {0.5, 0.9, 0.99, 0.999};
        const char *qn[] = {"p50", "p90", "p99", "p999"};
        printf(",\"mean\":%.4f", sum / s->n);
        for (int i = 0; i < 4; i++) {
            size_t k = (size_t)(qs[i] * s->n);
            printf(",\"%s\":%.4f", qn[i], s->v[k < s->n ? k : s->n - 1]);
        }
        printf(",\"max\":%.4f", s->v[s->n - 1]);
    }
    printf("}");
}

static void write_status(void)
{
    if (!status_path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", status_path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "%ld %ld %ld %ld\n", open_now, completed, failed, peak_open);
    fclose(f);
    rename(tmp, status_path);
}

/* ---- connections ------------------------------------------------------------------------------ */

static void watch(conn_t *c, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, op, c->fd, &ev) != 0)
        die("epoll_ctl");
}

static void start_connect(conn_t *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)
        die("connect");
    c->state = ST_CONNECTING;
    connecting_now++;
    watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void close_conn(conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    if (c->state == ST_CONNECTING)
        connecting_now--;
    c->fd = -1;
    c->state = ST_IDLE;
}

/* Sends a request on a ready connection, due at T_DUE; 0, or -1 if the write failed. */
static int send_request(conn_t *c, uint64_t t_due)
{
    ssize_t w = write(c->fd, request, request_len); /* a few hundred bytes: fits the socket buffer */
    if (w != (ssize_t)request_len)
        return -1;
    c->t_due = t_due;
    c->t_sent = now_ns();
    c->state = ST_HEADERS;
    c->hdr_len = 0;
    c->events = 0;
    c->tail = 0;
    return 0;
}

/* ---- the response ------------------------------------------------------------------------------ */

/* SSE events end with a blank line; counts them across reads. */
static void sse_bytes(conn_t *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\r')
            continue;
        if (ch == '\n' && c->tail == '\n') {
            uint64_t t = now_ns();
            if (c->events == 0)
                add(&ttfb, (t - c->t_sent) / 1e6);
            else
                add(&gaps, (t - c->t_last_event) / 1e6);
            c->t_last_event = t;
            c->events++;
            total_events++;
            ch = 0; /* "\n\n\n" is one boundary, not two */
        }
        c->tail = (unsigned char)ch;
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 32;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Feeds body bytes; 1 when the body is complete, 0 when more is expected, -1 on a framing error. */
static int body_bytes(conn_t *c, const char *p, size_t n)
{
    if (!c->chunked) {
        if (c->remaining == UINT64_MAX) { /* delimited by close */
            sse_bytes(c, p, n);
            return 0;
        }
        size_t take = n < c->remaining ? n : (size_t)c->remaining;
        sse_bytes(c, p, take);
        c->remaining -= take;
        return c->remaining == 0;
    }
    for (size_t i = 0; i < n;) {
        char ch = p[i];
        switch (c->chunk_state) {
        case CH_SIZE:
            if (ch == '\r' || ch == ';') {
                c->chunk_state = ch == ';' ? CH_SIZE_EXT : CH_SIZE_LF;
            } else {
                if (hexval(ch) < 0)
                    return -1;
                c->remaining = c->remaining * 16 + (uint64_t)hexval(ch);
            }
            i++;
            break;
        case CH_SIZE_EXT:
            if (ch == '\r')
                c->chunk_state = CH_SIZE_LF;
            i++;
            break;
        case CH_SIZE_LF:
            i++;
            c->chunk_state = c->remaining == 0 ? CH_TRAILER : CH_DATA;
            c->trailer_line = 0;
            break;
        case CH_DATA: {
            size_t take = n - i < c->remaining ? n - i : (size_t)c->remaining;
            sse_bytes(c, p + i, take);
            c->remaining -= take;
            i += take;
            if (c->remaining == 0)
                c->chunk_state = CH_DATA_CR;
        } break;
        case CH_DATA_CR:
            c->chunk_state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            c->chunk_state = CH_SIZE;
            c->remaining = 0;
            i++;
            break;
        case CH_TRAILER: /* trailer lines until an empty one */
            if (ch == '\n') {
                if (c->trailer_line == 0)
                    return 1;
                c->trailer_line = 0;
            } else if (ch != '\r') {
                c->trailer_line++;
            }
            i++;
            break;
        }
    }
    return 0;
}

/* Parses the response head in c->hdr; its length, 0 if incomplete, -1 if bad. */
static long parse_head(conn_t *c)
{
    char *end = memmem(c->hdr, c->hdr_len, "\r\n\r\n", 4);
    if (!end)
        return c->hdr_len == sizeof(c->hdr) ? -1 : 0;
    long head_len = (end - c->hdr) + 4;
    *end = '\0';
    if (sscanf(c->hdr, "HTTP/1.%*d %d", &c->status) != 1)
        return -1;
    c->chunked = 0;
    c->close_after = strncmp(c->hdr, "HTTP/1.0", 8) == 0;
    c->remaining = UINT64_MAX;
    for (char *l = strstr(c->hdr, "\r\n"); l;) { /* header lines, split in place */
        l += 2;
        char *next = strstr(l, "\r\n");
        if (next)
            *next = '\0';
        if (strncasecmp(l, "content-length:", 15) == 0)
            c->remaining = strtoull(l + 15, NULL, 10);
        else if (strncasecmp(l, "transfer-encoding:", 18) == 0 && strcasestr(l, "chunked"))
            c->chunked = 1;
        else if (strncasecmp(l, "connection:", 11) == 0 && strcasestr(l, "close"))
            c->close_after = 1;
        l = next;
    }
    if (c->chunked) {
        c->chunk_state = CH_SIZE;
        c->remaining = 0;
    }
    return head_len;
}

/* ---- scheduling -------------------------------------------------------------------------------- */

static uint64_t due_time(long i)
{
    return rate > 0 ? t0 + (uint64_t)((double)i * 1e9 / rate) : 0;
}

/* A connection is ready for its next request: send one now (streams mode) or park it (paced). */
static void on_ready(conn_t *c)
{
    c->state = ST_READY;
    if (rate > 0) {
        idle[nidle++] = (int)(c - conns);
        return;
    }
    if (issued >= total) {
        close_conn(c);
        return;
    }
    issued++;
    if (send_request(c, 0) != 0) {
        failed++;
        close_conn(c);
    }
}

/* The response on C ended, OK or not. */
static void finish(conn_t *c, int ok)
{
    uint64_t t = now_ns();
    if (c->state == ST_BODY)
        open_now--;
    ok = ok && c->status == 200 && (rate > 0 || c->events > 0);
    if (ok) {
        completed++;
        if (rate > 0) {
            if (c->t_due >= t_measure) {
                add(&latency, (t - c->t_due) / 1e6);
                add(&service, (t - c->t_sent) / 1e6);
            }
            if (t >= t_measure && t < t_measure_end) /* throughput: completions inside the window */
                window_done++;
        } else {
            add(&durations, (t - c->t_sent) / 1e6);
        }
    } else {
        failed++;
    }
    if (c->close_after || !ok) {
        close_conn(c);
        if (rate > 0 || issued < total) /* the server closed: open a new connection */
            start_connect(c);
    } else {
        on_ready(c);
    }
}

static void on_readable(conn_t *c)
{
    char buf[65536];
    for (;;) {
        ssize_t r = read(c->fd, buf, sizeof(buf));
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) { /* EOF or error */
            int in_request = c->state == ST_HEADERS || c->state == ST_BODY;
            int ok = c->state == ST_BODY && !c->chunked && c->remaining == UINT64_MAX;
            c->close_after = 1;
            if (in_request) {
                finish(c, ok);
            } else {
                close_conn(c);
                if (rate > 0 || issued < total)
                    start_connect(c);
            }
            return;
        }
        const char *p = buf;
        size_t n = (size_t)r;
        if (c->state == ST_HEADERS) {
            size_t before = c->hdr_len, room = sizeof(c->hdr) - c->hdr_len, take = n < room ? n : room;
            memcpy(c->hdr + c->hdr_len, p, take);
            c->hdr_len += take;
            long head = parse_head(c);
            if (head < 0) {
                c->close_after = 1;
                finish(c, 0);
                return;
            }
            if (head == 0)
                continue;
            c->state = ST_BODY;
            if (++open_now > peak_open)
                peak_open = open_now;
            p += (size_t)head - before;
            n -= (size_t)head - before;
        }
        if (c->state != ST_BODY)
            continue; /* bytes after a complete response: none expected */
        int done = body_bytes(c, p, n);
        if (done != 0) {
            if (done < 0)
                c->close_after = 1;
            finish(c, done == 1);
            if (c->fd < 0 || c->state == ST_CONNECTING)
                return;
        }
    }
}

static void on_connected(conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    connecting_now--;
    if (err) {
        c->state = ST_IDLE;
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        if (rate == 0 && issued < total) { /* the stream this connection was for fails */
            issued++;
            failed++;
        }
        return;
    }
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
    on_ready(c);
}

/* ---- main ------------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --port P --body FILE [--host H] [--path P] [-H 'Name: value']... [--conns C]\n"
                    "               [--timeout-s T] [--max-connecting K] [--streams N] [--status FILE]\n"
                    "               [--rate R --duration-s D [--warmup-s W]]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"host", 1, 0, 'h'},    {"port", 1, 0, 'p'},           {"path", 1, 0, 'u'},       {"body", 1, 0, 'b'},
        {"header", 1, 0, 'H'},  {"conns", 1, 0, 'c'},          {"streams", 1, 0, 'n'},    {"timeout-s", 1, 0, 't'},
        {"status", 1, 0, 's'},  {"max-connecting", 1, 0, 'k'}, {"rate", 1, 0, 'r'},       {"duration-s", 1, 0, 'd'},
        {"warmup-s", 1, 0, 'w'}, {0, 0, 0, 0},
    };
    char headers[8192] = "", *body = NULL;
    size_t body_len = 0;
    int opt;
    total = 1;
    while ((opt = getopt_long(argc, argv, "H:", opts, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': path = optarg; break;
        case 'b': {
            FILE *f = fopen(optarg, "rb");
            if (!f)
                die(optarg);
            body = malloc(1 << 20);
            body_len = fread(body, 1, 1 << 20, f);
            fclose(f);
        } break;
        case 'H':
            if (strlen(headers) + strlen(optarg) + 3 >= sizeof(headers))
                usage();
            strcat(headers, optarg);
            strcat(headers, "\r\n");
            break;
        case 'c': nconns = atoi(optarg); break;
        case 'n': total = atol(optarg); break;
        case 't': timeout_s = atof(optarg); break;
        case 's': status_path = optarg; break;
        case 'k': max_connecting = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': duration_s = atof(optarg); break;
        case 'w': warmup_s = atof(optarg); break;
        default: usage();
        }
    }
    if (!port || !body || nconns < 1 || total < 1 || rate < 0 || (rate > 0 && duration_s <= 0))
        usage();
    if (rate > 0)
        total = (long)(rate * (warmup_s + duration_s));
    else if (nconns > total)
        nconns = (int)total;
    request = malloc(body_len + 16384);
    request_len = (size_t)sprintf(request,
                                  "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                                  "Content-Length: %zu\r\n%s\r\n",
                                  path, host, port, body_len, headers);
    memcpy(request + request_len, body, body_len);
    request_len += body_len;

    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1");
    conns = calloc((size_t)nconns, sizeof(conn_t));
    idle = calloc((size_t)nconns, sizeof(int));
    for (int i = 0; i < nconns; i++)
        conns[i].fd = -1;

    /* paced mode: connect everything first, so the schedule does not start with handshakes */
    if (rate > 0) {
        for (int i = 0; i < nconns; i++)
            start_connect(&conns[i]);
        struct epoll_event evs[256];
        uint64_t give_up = now_ns() + 10000000000u;
        while (nidle < nconns && now_ns() < give_up) {
            int n = epoll_wait(epfd, evs, 256, 10);
            for (int i = 0; i < n; i++)
                on_connected(evs[i].data.ptr);
        }
    }

    t0 = now_ns();
    t_measure = t0 + (uint64_t)(warmup_s * 1e9);
    t_measure_end = t_measure + (uint64_t)(duration_s * 1e9);
    uint64_t t_stop = t0 + (uint64_t)((rate > 0 ? warmup_s + duration_s + 2 : timeout_s) * 1e9);
    uint64_t next_status = 0, backlog_max = 0;
    int next_to_open = 0;
    struct epoll_event evs[256];
    while (completed + failed < total && now_ns() < t_stop) {
        uint64_t t = now_ns();
        int timeout_ms = 10;
        if (rate > 0) {
            /* send every request that is due, as far as idle connections allow */
            while (issued < total && due_time(issued) <= t && nidle > 0) {
                conn_t *c = &conns[idle[--nidle]];
                if (send_request(c, due_time(issued)) != 0) {
                    failed++;
                    close_conn(c);
                    start_connect(c);
                }
                issued++;
            }
            uint64_t due_now = (uint64_t)((double)(t - t0) * rate / 1e9);
            if (due_now > (uint64_t)issued && due_now - (uint64_t)issued > backlog_max)
                backlog_max = due_now - (uint64_t)issued;
            if (issued < total && nidle > 0) /* sleep until the next request is due */
                timeout_ms = due_time(issued) > t ? (int)((due_time(issued) - t) / 1000000u) : 0;
            else if (issued >= total)
                timeout_ms = 10;
            else
                timeout_ms = 1;
        } else {
            while (next_to_open < nconns && connecting_now < max_connecting)
                start_connect(&conns[next_to_open++]);
        }
        int n = epoll_wait(epfd, evs, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->state == ST_CONNECTING)
                on_connected(c);
            else
                on_readable(c);
        }
        if (t >= next_status) {
            write_status();
            next_status = t + 100000000u;
        }
    }
    double elapsed = (now_ns() - t0) / 1e9;
    long unfinished = total - completed - failed;
    write_status();

    if (rate > 0) {
        printf("{\"mode\":\"paced\",\"rate\":%.1f,\"conns\":%d,\"duration_s\":%.3f,\"warmup_s\":%.3f,\"due\":%ld,"
               "\"issued\":%ld,\"completed\":%ld,\"failed\":%ld,\"unfinished\":%ld,\"achieved_rps\":%.1f,"
               "\"backlog_max\":%llu,",
               rate, nconns, duration_s, warmup_s, total, issued, completed, failed, unfinished,
               window_done / duration_s, (unsigned long long)backlog_max);
        print_series("latency_ms", &latency);
        printf(",");
        print_series("service_ms", &service);
        printf("}\n");
    } else {
        printf("{\"mode\":\"streams\",\"streams\":%ld,\"conns\":%d,\"completed\":%ld,\"failed\":%ld,\"unfinished\":%ld,"
               "\"peak_open\":%ld,\"events\":%llu,\"elapsed_s\":%.3f,",
               total, nconns, completed, failed, unfinished, peak_open, (unsigned long long)total_events, elapsed);
        print_series("ttfb_ms", &ttfb);
        printf(",");
        print_series("gap_ms", &gaps);
        printf(",");
        print_series("duration_ms", &durations);
        printf("}\n");
    }
    return failed || unfinished ? 1 : 0;
}
