/* objects.c - the objects a provider keeps between requests (files, threads, messages, runs), each visible only to
 * the upstream API key that created it, as at a real provider; and helpers shared by the surfaces that serve them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mock.h"

static mock_obj_t *objects; /* newest first */
static uint64_t next_id = 1;

static char *dup_bytes(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        h2o_fatal("no memory");
    if (n != 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

mock_obj_t *obj_new(mock_obj_kind_t kind, h2o_iovec_t key, const char *id_prefix, const char *parent)
{
    mock_obj_t *o = calloc(1, sizeof(*o));
    if (o == NULL)
        h2o_fatal("no memory");
    o->kind = kind;
    snprintf(o->id, sizeof(o->id), "%s%llu", id_prefix, (unsigned long long)next_id++);
    snprintf(o->parent, sizeof(o->parent), "%s", parent != NULL ? parent : "");
    o->key = dup_bytes(key.base, key.len);
    o->created = (int64_t)time(NULL);
    o->next = objects;
    objects = o;
    return o;
}

void obj_set_text(char **field, const char *p, size_t n, int is_json)
{
    mj_buf_t buf = {0};
    mj_string(&buf, p, n, is_json);
    free(*field);
    *field = dup_bytes(buf.base, buf.len);
    mj_free(&buf);
}

void obj_set_data(mock_obj_t *o, const char *p, size_t n)
{
    free(o->data);
    o->data = dup_bytes(p, n);
    o->data_len = n;
}

static int visible(const mock_obj_t *o, h2o_iovec_t key)
{
    return h2o_memis(o->key, strlen(o->key), key.base, key.len);
}

mock_obj_t *obj_find(mock_obj_kind_t kind, h2o_iovec_t key, h2o_iovec_t id)
{
    for (mock_obj_t *o = objects; o != NULL; o = o->next)
        if (o->kind == kind && visible(o, key) && h2o_memis(o->id, strlen(o->id), id.base, id.len))
            return o;
    return NULL;
}

mock_obj_t *obj_next(mock_obj_t *after, mock_obj_kind_t kind, h2o_iovec_t key, const char *parent)
{
    for (mock_obj_t *o = after != NULL ? after->next : objects; o != NULL; o = o->next)
        if (o->kind == kind && visible(o, key) && (parent == NULL || strcmp(o->parent, parent) == 0))
            return o;
    return NULL;
}

static void obj_free(mock_obj_t *o)
{
    free(o->key);
    free(o->a);
    free(o->b);
    free(o->c);
    free(o->data);
    free(o);
}

void obj_delete(mock_obj_t *victim)
{
    for (mock_obj_t **p = &objects; *p != NULL; p = &(*p)->next)
        if (*p == victim) {
            *p = victim->next;
            obj_free(victim);
            return;
        }
}

void obj_clear(void)
{
    while (objects != NULL) {
        mock_obj_t *o = objects;
        objects = o->next;
        obj_free(o);
    }
}

h2o_iovec_t path_segment(h2o_req_t *req, size_t index)
{
    h2o_iovec_t path = req->path_normalized;
    const char *p = path.base, *end = path.base + path.len;

    for (size_t i = 0; p < end; ++i) {
        const char *start = ++p; /* after the '/' */
        const char *slash = memchr(start, '/', (size_t)(end - start));
        const char *stop = slash != NULL ? slash : end;
        if (i == index)
            return h2o_iovec_init(start, (size_t)(stop - start));
        p = stop;
    }
    return h2o_iovec_init(NULL, 0);
}

void serve_json(mock_exchange_t *ex, mj_buf_t *body)
{
    ex->body = h2o_strdup(&ex->req->pool, body->base, body->len);
    mj_free(body);
    exchange_serve(ex, "application/json");
}

void serve_list(mock_exchange_t *ex, mj_buf_t *items, const char *first_id, const char *last_id)
{
    mj_buf_t out = {0};
    mj_printf(&out, "{\"object\":\"list\",\"data\":[%.*s],\"first_id\":", (int)items->len, items->base ? items->base : "");
    if (first_id != NULL)
        mj_printf(&out, "\"%s\",\"last_id\":\"%s\"", first_id, last_id);
    else
        mj_printf(&out, "null,\"last_id\":null");
    mj_printf(&out, ",\"has_more\":false}\n");
    mj_free(items);
    serve_json(ex, &out);
}

mock_obj_t *obj_at_path(mock_exchange_t *ex, mock_obj_kind_t kind, size_t index, const char *parent, const char *what)
{
    h2o_iovec_t id = path_segment(ex->req, index);
    mock_obj_t *o = obj_find(kind, ex->key, id);
    if (o == NULL || (parent != NULL && strcmp(o->parent, parent) != 0)) {
        reject_not_found(ex, what, id);
        return NULL;
    }
    return o;
}

void serve_obj(mock_exchange_t *ex, obj_render_fn render, const mock_obj_t *o)
{
    mj_buf_t out = {0};
    render(&out, o);
    serve_json(ex, &out);
}

void serve_objs(mock_exchange_t *ex, mock_obj_kind_t kind, const char *parent, obj_render_fn render, obj_keep_fn keep, void *ctx)
{
    mj_buf_t items = {0};
    const char *first = NULL, *last = NULL;
    for (mock_obj_t *o = obj_next(NULL, kind, ex->key, parent); o != NULL; o = obj_next(o, kind, ex->key, parent)) {
        if (keep != NULL && !keep(ex, o, ctx))
            continue;
        if (first != NULL)
            mj_append(&items, ",", 1);
        render(&items, o);
        first = first != NULL ? first : o->id;
        last = o->id;
    }
    serve_list(ex, &items, first, last);
}
