/* GET /manage/... and /admin/...: the browser pages (docs/ui.md), static files from the admin-ui
 * directory. /manage/x → admin-ui/manage/x, /admin/x → admin-ui/admin/x, and under either prefix
 * /shared/x → admin-ui/shared/x; a path ending in "/" serves its index.html; /manage and /admin
 * redirect to the path with a trailing slash. The directory is found once: <dir of the
 * executable>/../admin-ui, else ./admin-ui, else $TOLLGATE_UI_DIR. No authentication: the pages
 * are public, the API calls they make carry the user's key. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http.h"
#include "store/api.h"

#define TG_PAGES_MAX_FILE (4u << 20)

static char g_ui_dir[PATH_MAX];
static int g_ui_state; /* 0 not looked up, 1 found, -1 none */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int try_dir(const char *p)
{
    char real[PATH_MAX];
    if (!is_dir(p) || realpath(p, real) == NULL)
        return 0;
    snprintf(g_ui_dir, sizeof(g_ui_dir), "%s", real);
    return 1;
}

static const char *ui_dir(void)
{
    if (g_ui_state == 0) {
        char exe[PATH_MAX], cand[PATH_MAX + 16];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        int found = 0;
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash) {
                *slash = '\0';
                snprintf(cand, sizeof(cand), "%s/../admin-ui", exe);
                found = try_dir(cand);
            }
        }
        if (!found)
            found = try_dir("admin-ui");
        if (!found) {
            const char *env = getenv("TOLLGATE_UI_DIR");
            found = env && *env && try_dir(env);
        }
        g_ui_state = found ? 1 : -1;
    }
    return g_ui_state == 1 ? g_ui_dir : NULL;
}

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"}, {".png", "image/png"}, {".json", "application/json"},
        {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    if (dot == NULL || strchr(dot, '/') != NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

static void not_found(tg_api_req_t *r)
{
    tg_api_error(r, 404, "not_found", "no such page");
}

/* Only [A-Za-z0-9._-/] segments, none empty-leading-dot ("." / ".." / hidden files). */
static int safe_rel(const char *p, size_t len)
{
    int seg_start = 1;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (c == '/') {
            if (seg_start && i > 0)
                return 0; /* "//" */
            seg_start = 1;
            continue;
        }
        if (seg_start && c == '.')
            return 0;
        seg_start = 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void redirect(tg_api_req_t *r, const char *to)
{
    h2o_req_t *req = r->req;
    req->res.status = 301;
    req->res.reason = "Moved Permanently";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, to, strlen(to));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
    h2o_send_inline(req, H2O_STRLIT("moved\n"));
}

void tg_api_pages(tg_api_req_t *r)
{
    const char *section = r->route->path + 1; /* "manage" or "admin" */
    if (r->rest.len == 0) {
        redirect(r, strcmp(section, "admin") == 0 ? "/admin/" : "/manage/");
        return;
    }
    const char *dir = ui_dir();
    if (dir == NULL) {
        tg_api_error(r, 404, "not_found", "the pages are not installed (no admin-ui directory; see docs/ui.md)");
        return;
    }
    /* rest starts with "/" */
    const char *rel = r->rest.base + 1;
    size_t rel_len = r->rest.len - 1;
    if (rel_len > 200 || !safe_rel(rel, rel_len)) {
        not_found(r);
        return;
    }
    char path[PATH_MAX];
    int n;
    if (rel_len >= 7 && memcmp(rel, "shared/", 7) == 0)
        n = snprintf(path, sizeof(path), "%s/%.*s", dir, (int)rel_len, rel);
    else
        n = snprintf(path, sizeof(path), "%s/%s/%.*s", dir, section, (int)rel_len, rel);
    if (n < 0 || (size_t)n >= sizeof(path) - 16) {
        not_found(r);
        return;
    }
    if (rel_len == 0 || rel[rel_len - 1] == '/')
        strcat(path, "index.html");
    const char *type = content_type(path);
    char real[PATH_MAX];
    size_t dlen = strlen(dir);
    if (type == NULL || realpath(path, real) == NULL || strncmp(real, dir, dlen) != 0 || real[dlen] != '/') {
        not_found(r);
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)TG_PAGES_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        not_found(r);
        return;
    }
    size_t size = (size_t)st.st_size;
    char *buf = h2o_mem_alloc_pool(&r->req->pool, size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (got != size) {
        tg_api_error(r, 500, NULL, "could not read the page");
        return;
    }
    h2o_req_t *req = r->req;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    /* Revalidate every time: the pages change with the binary, and they are small. */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0, NULL, H2O_STRLIT("nosniff"));
    if (strncmp(type, "text/html", 9) == 0) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0, NULL,
                              H2O_STRLIT("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                         "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("referrer-policy"), 0, NULL, H2O_STRLIT("no-referrer"));
    }
    h2o_send_inline(req, buf, size);
}
