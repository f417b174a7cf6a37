/* files.c - the OpenAI Files surface: POST /v1/files (multipart upload), GET /v1/files, GET /v1/files/{id},
 * GET /v1/files/{id}/content, DELETE /v1/files/{id}. Files are kept in memory per upstream key (objects.c). */
#include <string.h>

#include "mock.h"

static const char *const purposes[] = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"};

/* A 404 naming the missing object (the id is escaped: it comes from the path). */
void reject_not_found(mock_exchange_t *ex, const char *what, h2o_iovec_t id)
{
    mj_buf_t lit = {0};
    mj_string(&lit, id.base, id.len, 0);
    h2o_iovec_t msg = mj_pool_printf(&ex->req->pool, "No such %s: %.*s", what, (int)lit.len - 2, lit.base + 1);
    mj_free(&lit);
    exchange_reject(ex, 404, NULL, msg.base);
}

static void render_file(mj_buf_t *out, const mock_obj_t *f)
{
    mj_printf(out,
              "{\"object\":\"file\",\"id\":\"%s\",\"purpose\":%s,\"filename\":%s,\"bytes\":%zu,\"created_at\":%lld,"
              "\"expires_at\":null,\"status\":\"processed\",\"status_details\":null}",
              f->id, f->b, f->a, f->data_len, (long long)f->created);
}

/* One part of a multipart body. */
typedef struct part {
    h2o_iovec_t name, filename, value;
    int has_filename;
} part_t;

/* The quoted parameter `param="..."` in a part's headers. */
static int header_param(h2o_iovec_t headers, const char *param, h2o_iovec_t *out)
{
    size_t n = strlen(param);
    for (const char *p = headers.base; p + n + 2 <= headers.base + headers.len; ++p) {
        if (memcmp(p, param, n) != 0 || p[n] != '=' || p[n + 1] != '"' || (p > headers.base && p[-1] != ' ' && p[-1] != ';'))
            continue;
        const char *v = p + n + 2, *end = memchr(v, '"', (size_t)(headers.base + headers.len - v));
        if (end == NULL)
            return 0;
        *out = h2o_iovec_init(v, (size_t)(end - v));
        return 1;
    }
    return 0;
}

/* Splits BODY on BOUNDARY and calls fn for each part; -1 when the body is not well formed. */
static int each_part(h2o_iovec_t body, h2o_iovec_t boundary, void (*fn)(void *ctx, const part_t *part), void *ctx)
{
    char delim[128];
    if (boundary.len == 0 || boundary.len + 4 > sizeof(delim))
        return -1;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary.base, boundary.len);
    size_t dlen = boundary.len + 4;
    const char *end = body.base + body.len;
    /* the first delimiter has no leading CRLF */
    if (body.len < dlen - 2 || memcmp(body.base, delim + 2, dlen - 2) != 0)
        return -1;
    const char *p = body.base + dlen - 2;
    for (;;) {
        if (end - p >= 2 && p[0] == '-' && p[1] == '-')
            return 0; /* the closing delimiter */
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return -1;
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hend == NULL)
            return -1;
        h2o_iovec_t headers = h2o_iovec_init(p, (size_t)(hend - p));
        const char *v = hend + 4, *next = memmem(v, (size_t)(end - v), delim, dlen);
        if (next == NULL)
            return -1;
        part_t part = {{NULL, 0}, {NULL, 0}, h2o_iovec_init(v, (size_t)(next - v)), 0};
        if (!header_param(headers, "name", &part.name))
            return -1;
        part.has_filename = header_param(headers, "filename", &part.filename);
        fn(ctx, &part);
        p = next + dlen;
    }
}

typedef struct upload {
    part_t purpose, file;
    int has_purpose, has_file;
} upload_t;

static void on_part(void *ctx, const part_t *part)
{
    upload_t *u = ctx;
    if (h2o_memis(part->name.base, part->name.len, H2O_STRLIT("purpose"))) {
        u->purpose = *part;
        u->has_purpose = 1;
    } else if (h2o_memis(part->name.base, part->name.len, H2O_STRLIT("file"))) {
        u->file = *part;
        u->has_file = 1;
    }
}

static h2o_iovec_t boundary_of(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i == -1)
        return h2o_iovec_init(NULL, 0);
    h2o_iovec_t ct = req->headers.entries[i].value;
    const char *b;
    if (ct.len < 19 || !h2o_lcstris(ct.base, 19, H2O_STRLIT("multipart/form-data")) ||
        (b = memmem(ct.base, ct.len, "boundary=", 9)) == NULL)
        return h2o_iovec_init(NULL, 0);
    b += 9;
    size_t n = (size_t)(ct.base + ct.len - b);
    if (n != 0 && *b == '"') {
        const char *q = memchr(b + 1, '"', n - 1);
        return q != NULL ? h2o_iovec_init(b + 1, (size_t)(q - b - 1)) : h2o_iovec_init(NULL, 0);
    }
    const char *semi = memchr(b, ';', n);
    return h2o_iovec_init(b, semi != NULL ? (size_t)(semi - b) : n);
}

void files_create(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);
    upload_t u = {0};
    if (ex == NULL || exchange_apply_fault(ex))
        return;
    h2o_iovec_t boundary = boundary_of(req);
    if (boundary.len == 0) {
        exchange_reject(ex, 400, NULL, "Content-Type must be multipart/form-data with a boundary.");
        return;
    }
    if (each_part(req->entity, boundary, on_part, &u) != 0) {
        exchange_reject(ex, 400, NULL, "The multipart body could not be parsed.");
        return;
    }
    if (!u.has_file || !u.file.has_filename) {
        exchange_reject(ex, 400, NULL, "Missing required parameter: 'file'.");
        return;
    }
    if (!u.has_purpose) {
        exchange_reject(ex, 400, NULL, "Missing required parameter: 'purpose'.");
        return;
    }
    int known = 0;
    for (size_t i = 0; i != sizeof(purposes) / sizeof(purposes[0]); ++i)
        known |= h2o_memis(u.purpose.value.base, u.purpose.value.len, purposes[i], strlen(purposes[i]));
    if (!known) {
        exchange_reject(ex, 400, NULL, "Invalid value for 'purpose'.");
        return;
    }
    mock_obj_t *f = obj_new(OBJ_FILE, ex->key, "file-mock", NULL);
    obj_set_text(&f->a, u.file.filename.base, u.file.filename.len, 0);
    obj_set_text(&f->b, u.purpose.value.base, u.purpose.value.len, 0);
    obj_set_data(f, u.file.value.base, u.file.value.len);
    serve_obj(ex, render_file, f);
}

/* GET /v1/files?purpose=P lists the files of purpose P only (CTX: the query's value, {NULL, 0} when absent). */
static int of_purpose(mock_exchange_t *ex, mock_obj_t *f, void *ctx)
{
    (void)ex;
    const h2o_iovec_t *purpose = ctx;
    return purpose->base == NULL || (strlen(f->b) == purpose->len + 2 && memcmp(f->b + 1, purpose->base, purpose->len) == 0);
}

void files_list(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);
    if (ex == NULL || exchange_apply_fault(ex))
        return;
    h2o_iovec_t purpose = query_param(req, H2O_STRLIT("purpose"));
    serve_objs(ex, OBJ_FILE, NULL, render_file, of_purpose, &purpose);
}

/* The file named by path segment 2 (/v1/files/{id}...), or NULL after answering 404. */
static mock_obj_t *file_of(mock_exchange_t *ex)
{
    return obj_at_path(ex, OBJ_FILE, 2, NULL, "File object");
}

void files_retrieve(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);
    mock_obj_t *f;
    if (ex == NULL || exchange_apply_fault(ex) || (f = file_of(ex)) == NULL)
        return;
    serve_obj(ex, render_file, f);
}

void files_content(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);
    mock_obj_t *f;
    if (ex == NULL || exchange_apply_fault(ex) || (f = file_of(ex)) == NULL)
        return;
    ex->body = h2o_strdup(&req->pool, f->data, f->data_len);
    exchange_serve(ex, "application/octet-stream");
}

void files_delete(h2o_req_t *req)
{
    mock_exchange_t *ex = exchange_new(req, &openai_surface);
    mock_obj_t *f;
    if (ex == NULL || exchange_apply_fault(ex) || (f = file_of(ex)) == NULL)
        return;
    mj_buf_t out = {0};
    mj_printf(&out, "{\"id\":\"%s\",\"object\":\"file\",\"deleted\":true}\n", f->id);
    obj_delete(f);
    serve_json(ex, &out);
}
