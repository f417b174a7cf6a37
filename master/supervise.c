/* Process supervision for the master (see supervise.h). */
#include "master/supervise.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "shm/credit.h"
#include "store/persister.h"

typedef enum { CHILD_PERSISTER, CHILD_WORKER } child_kind_t;

typedef struct child {
    pid_t pid;
    child_kind_t kind;
    int index;
    int generation;
    uint64_t started_ms;
    uint64_t respawn_at_ms; /* when pid == 0: time to start it again */
    uint32_t backoff_ms;
} child_t;

static volatile sig_atomic_t g_sig_term, g_sig_hup, g_sig_usr1, g_sig_chld;
static volatile sig_atomic_t g_child_stop; /* in a child: set by SIGTERM/SIGINT */

static void on_master_signal(int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT: g_sig_term = 1; break;
    case SIGHUP: g_sig_hup = 1; break;
    case SIGUSR1: g_sig_usr1 = 1; break;
    case SIGCHLD: g_sig_chld = 1; break;
    }
}

static void on_child_signal(int sig)
{
    g_child_stop = 1;
}

static void install(int sig, void (*fn)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static uint64_t now_ms(void)
{
    return tg_mono_ns() / 1000000u;
}

/* In the child right after fork: its own signal dispositions, death with the master. */
static void child_setup(const char *role, const tg_config_t *cfg)
{
    tg_log_level_t level = TG_LOG_INFO;
    tg_log_level_parse(cfg->log.level, &level);
    tg_log_init(role, level);
    install(SIGTERM, on_child_signal);
    install(SIGINT, on_child_signal);
    install(SIGHUP, SIG_IGN);
    install(SIGUSR1, tg_log_request_reopen);
    install(SIGCHLD, SIG_DFL);
    install(SIGPIPE, SIG_IGN);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    char name[16];
    snprintf(name, sizeof(name), "tg-%s", role);
    prctl(PR_SET_NAME, name); /* visible in ps and /proc/PID/comm */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static int run_child(tg_master_t *m, const child_t *c)
{
    if (c->kind == CHILD_PERSISTER) {
        child_setup("persister", &m->cfg);
        for (size_t i = 0; i < m->n_listeners; i++) /* client traffic is the workers' */
            close(m->listeners[i].fd);
        tg_persister_args_t pa = {&m->cfg, &m->arena, m->master_key, m->persister_socket, &g_child_stop};
        return tg_persister_run(&pa);
    }
    child_setup("worker", &m->cfg);
    tg_worker_args_t wa = {&m->cfg, &m->arena, m->master_key, m->listeners, m->n_listeners, m->persister_socket,
                           c->index, &g_child_stop};
    return tg_worker_run(&wa);
}

static void spawn(tg_master_t *m, child_t *c)
{
    pid_t pid = fork();
    if (pid < 0) {
        tg_error("fork: %s", strerror(errno));
        c->pid = 0;
        c->respawn_at_ms = now_ms() + 1000;
        return;
    }
    if (pid == 0)
        exit(run_child(m, c)); /* exit, not _exit: LeakSanitizer checks at exit in sanitized builds */
    c->pid = pid;
    c->started_ms = now_ms();
    if (c->kind == CHILD_PERSISTER)
        tg_info("started persister (pid %d)", (int)pid);
    else
        tg_info("started worker %d (pid %d)", c->index, (int)pid);
}

typedef struct tree {
    child_t *children;
    size_t n, cap;
    int generation;
} tree_t;

static child_t *add_child(tree_t *t, child_kind_t kind, int index)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->children = realloc(t->children, t->cap * sizeof(child_t));
    }
    child_t *c = &t->children[t->n++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->index = index;
    c->generation = t->generation;
    c->backoff_ms = 100;
    return c;
}

static void start_workers(tg_master_t *m, tree_t *t)
{
    for (int i = 0; i < m->workers; i++)
        spawn(m, add_child(t, CHILD_WORKER, i));
}

/* Reaps exited children; schedules a restart for those of the current generation. */
static void reap(tg_master_t *m, tree_t *t, int stopping)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < t->n; i++) {
            child_t *c = &t->children[i];
            if (c->pid != pid)
                continue;
            c->pid = 0;
            int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (!clean && c->kind == CHILD_WORKER)
                tg_credit_reap(&m->arena); /* bill its requests in flight now, before its successor starts */
            if (!clean || !stopping)
                tg_log(clean ? TG_LOG_INFO : TG_LOG_WARN, "%s %d (pid %d) exited: %s %d",
                       c->kind == CHILD_PERSISTER ? "persister" : "worker", c->index, (int)pid,
                       WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            if (stopping || c->generation != t->generation) {
                *c = t->children[--t->n]; /* retired */
                break;
            }
            uint64_t lived = now_ms() - c->started_ms;
            c->backoff_ms = lived > 10000 ? 100 : (c->backoff_ms * 2 > 10000 ? 10000 : c->backoff_ms * 2);
            c->respawn_at_ms = now_ms() + (lived > 10000 ? 0 : c->backoff_ms);
            break;
        }
    }
}

static void respawn_due(tg_master_t *m, tree_t *t)
{
    uint64_t now = now_ms();
    for (size_t i = 0; i < t->n; i++)
        if (t->children[i].pid == 0 && t->children[i].respawn_at_ms <= now)
            spawn(m, &t->children[i]);
}

static uint64_t next_respawn_in_ms(const tree_t *t)
{
    uint64_t now = now_ms(), best = 1000;
    for (size_t i = 0; i < t->n; i++)
        if (t->children[i].pid == 0)
            best = t->children[i].respawn_at_ms <= now ? 0 : (t->children[i].respawn_at_ms - now < best ? t->children[i].respawn_at_ms - now : best);
    return best;
}

static int listeners_equal(const tg_config_t *a, const tg_config_t *b)
{
    if (a->n_listens != b->n_listens)
        return 0;
    for (size_t i = 0; i < a->n_listens; i++)
        if (strcmp(a->listens[i].host, b->listens[i].host) != 0 || a->listens[i].port != b->listens[i].port ||
            !a->listens[i].tls_cert != !b->listens[i].tls_cert)
            return 0;
    return 1;
}

/* SIGHUP: validate the file; a bad one keeps the running config. A good one starts a new
 * generation of workers and retires the old ones (they drain). */
static void reload(tg_master_t *m, tree_t *t)
{
    tg_config_t next;
    char *err = NULL;
    if (tg_config_load(m->config_path, &next, &err) != 0) {
        tg_error("reload refused, keeping the running config: %s", err ? err : "unknown error");
        free(err);
        return;
    }
    if (!listeners_equal(&m->cfg, &next) || strcmp(m->cfg.data_dir, next.data_dir) != 0 ||
        m->cfg.arena.max_accounts != next.arena.max_accounts || m->cfg.arena.ring_slots != next.arena.ring_slots ||
        m->cfg.arena.max_upstream_keys != next.arena.max_upstream_keys ||
        m->cfg.arena.max_inflight_per_worker != next.arena.max_inflight_per_worker)
        tg_warn("reload: listen, data_dir and arena changes take effect at the next restart");
    /* the parts that need a restart stay as they are in the running tree */
    tg_config_t old = m->cfg;
    m->cfg = next;
    m->cfg.n_listens = old.n_listens;
    tg_listen_t *keep = old.listens;
    old.listens = next.listens;
    m->cfg.listens = keep;
    char *dd = m->cfg.data_dir;
    m->cfg.data_dir = old.data_dir;
    old.data_dir = dd;
    m->cfg.arena = old.arena;
    if (m->workers_override == 0 && next.workers > 0)
        m->workers = next.workers;
    tg_log_level_t level = TG_LOG_INFO;
    tg_log_level_parse(m->cfg.log.level, &level);
    tg_log_init("master", level);
    tg_log_open(m->cfg.log.error, m->cfg.log.access);

    t->generation++;
    for (size_t i = 0; i < t->n; i++)
        if (t->children[i].kind == CHILD_WORKER && t->children[i].pid > 0)
            kill(t->children[i].pid, SIGTERM);
    for (size_t i = 0; i < t->n;) { /* workers waiting for a respawn belong to the old generation */
        if (t->children[i].kind == CHILD_WORKER && t->children[i].pid == 0)
            t->children[i] = t->children[--t->n];
        else
            i++;
    }
    for (size_t i = 0; i < t->n; i++)
        if (t->children[i].kind == CHILD_PERSISTER)
            t->children[i].generation = t->generation;
    start_workers(m, t);
    /* old workers still hold a pointer-free copy of the old config (fork copied it) */
    tg_config_dispose(&old);
    tg_info("reloaded %s", m->config_path);
}

static size_t count_alive(const tree_t *t, int kind)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->children[i].pid > 0 && (kind < 0 || (int)t->children[i].kind == kind))
            n++;
    return n;
}

static void signal_kind(const tree_t *t, child_kind_t kind, int sig)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->children[i].pid > 0 && t->children[i].kind == kind)
            kill(t->children[i].pid, sig);
}

/* Waits (handling SIGCHLD) until no child of KIND lives or DEADLINE passes. */
static void wait_kind(tg_master_t *m, tree_t *t, int kind, uint64_t deadline, const sigset_t *waitmask)
{
    while (count_alive(t, kind) > 0 && now_ms() < deadline) {
        struct timespec ts = {0, 50 * 1000000};
        sigset_t blocked;
        sigprocmask(SIG_SETMASK, waitmask, &blocked);
        nanosleep(&ts, NULL);
        sigprocmask(SIG_SETMASK, &blocked, NULL);
        reap(m, t, 1);
    }
}

static void drain_and_stop(tg_master_t *m, tree_t *t, const sigset_t *waitmask)
{
    tg_info("stopping: draining workers (up to %u ms)", m->cfg.server.drain_timeout_ms);
    for (size_t i = 0; i < m->n_listeners; i++) /* the kernel stops queueing connections once no process holds it */
        close(m->listeners[i].fd);
    signal_kind(t, CHILD_WORKER, SIGTERM);
    wait_kind(m, t, CHILD_WORKER, now_ms() + m->cfg.server.drain_timeout_ms + 2000, waitmask);
    signal_kind(t, CHILD_WORKER, SIGKILL);
    wait_kind(m, t, CHILD_WORKER, now_ms() + 2000, waitmask);
    signal_kind(t, CHILD_PERSISTER, SIGTERM); /* it empties the ring, then exits */
    wait_kind(m, t, CHILD_PERSISTER, now_ms() + 30000, waitmask);
    if (count_alive(t, -1)) {
        tg_error("children still alive after the drain; killing them");
        for (size_t i = 0; i < t->n; i++)
            if (t->children[i].pid > 0)
                kill(t->children[i].pid, SIGKILL);
    }
}

int tg_supervise(tg_master_t *m)
{
    tree_t t = {0};
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);
    sigdelset(&waitmask, SIGHUP);
    sigdelset(&waitmask, SIGUSR1);
    sigdelset(&waitmask, SIGCHLD);
    install(SIGTERM, on_master_signal);
    install(SIGINT, on_master_signal);
    install(SIGHUP, on_master_signal);
    install(SIGUSR1, on_master_signal);
    install(SIGCHLD, on_master_signal);
    install(SIGPIPE, SIG_IGN);

    spawn(m, add_child(&t, CHILD_PERSISTER, 0));
    start_workers(m, &t);

    while (!g_sig_term) {
        uint64_t wait = next_respawn_in_ms(&t);
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000};
        sigset_t blocked;
        sigprocmask(SIG_SETMASK, &waitmask, &blocked); /* signals arrive only while sleeping */
        if (!g_sig_term && !g_sig_hup && !g_sig_usr1 && !g_sig_chld)
            nanosleep(&ts, NULL);
        sigprocmask(SIG_SETMASK, &blocked, NULL);
        if (g_sig_chld) {
            g_sig_chld = 0;
            reap(m, &t, 0);
        }
        if (g_sig_usr1) {
            g_sig_usr1 = 0;
            tg_log_open(m->cfg.log.error, m->cfg.log.access);
            for (size_t i = 0; i < t.n; i++)
                if (t.children[i].pid > 0)
                    kill(t.children[i].pid, SIGUSR1);
            tg_info("log files reopened");
        }
        if (g_sig_hup) {
            g_sig_hup = 0;
            reload(m, &t);
        }
        if (!g_sig_term)
            respawn_due(m, &t);
    }
    drain_and_stop(m, &t, &waitmask);
    free(t.children);
    tg_info("stopped");
    return 0;
}
