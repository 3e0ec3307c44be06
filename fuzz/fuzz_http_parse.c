/* fuzz_http_parse.c: libFuzzer harness for net/http_parse.c, both
 * directions. The input's first byte picks requests or responses, which
 * responses answer HEAD and whether EOF follows; the next four seed the
 * split. The message bytes are parsed whole and in random pieces (each
 * piece a fresh exact-size copy, so ASan sees any read outside it), and
 * the two runs must agree: the header's promise that the split never
 * changes the outcome. Every run also checks the event contract: HEAD,
 * BODY pieces inside the bytes given, DONE with body_read equal to what
 * was handed out and to Content-Length; no BODY when has_body is false. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"

#define MAXMSG 64

typedef struct rec {
    uint64_t head[MAXMSG], body[MAXMSG], trail[MAXMSG];
    uint64_t body_len[MAXMSG];
    int n, ndone, err, eof;
} rec;

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix_str(uint64_t h, sl_http_str s)
{
    h = mix(h, &s.len, sizeof s.len);
    return s.len ? mix(h, s.ptr, s.len) : h;
}

static uint64_t head_hash(const sl_http_msg *m)
{
    uint64_t h = 0xcbf29ce484222325ull;
    int ints[] = { (int)m->method, m->status, m->version_minor, (int)m->nheaders, m->has_body, m->chunked,
                   m->body_until_close, m->keep_alive, m->expect_continue, m->upgrade };
    h = mix(h, ints, sizeof ints);
    h = mix(h, &m->content_length, sizeof m->content_length);
    if (m->method_name)
        h = mix(h, m->method_name, strlen(m->method_name));
    h = mix_str(mix_str(h, m->target), m->reason);
    for (uint32_t i = 0; i < m->nheaders; i++)
        h = mix_str(mix_str(h, m->headers[i].name), m->headers[i].value);
    return h;
}

static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 17, *s ^= *s << 5;
    return *s;
}

static void run(sl_http_kind kind, unsigned head_mask, int eof, const uint8_t *in, size_t len, uint32_t seed,
                rec *r)
{
    sl_http_parser p;
    char *pend = NULL;
    size_t npend = 0, off = 0;
    int finals = 0;
    bool in_msg = false;
    memset(r, 0, sizeof *r);
    CHECK(sl_http_parser_init(&p, kind, NULL) == 0);
    if (head_mask & 1)
        sl_http_parser_expect_head_response(&p);
    while (off < len && !r->err) {
        size_t chunk = seed ? 1 + next_rand(&seed) % 32 : len - off;
        if (chunk > len - off)
            chunk = len - off;
        char *buf = malloc(npend + chunk);
        CHECK(buf);
        if (npend)
            memcpy(buf, pend, npend);
        memcpy(buf + npend, in + off, chunk);
        free(pend);
        pend = buf, npend += chunk, off += chunk;
        for (;;) {
            size_t used = 0;
            sl_http_str body;
            int rc = sl_http_parser_feed(&p, pend, npend, &used, &body);
            CHECK(used <= npend);
            if (rc < 0) {
                CHECK((rc <= SL_HTTP_E_SYNTAX && rc >= SL_HTTP_E_CLOSED) || rc == -12 /* ENOMEM */);
                CHECK(sl_http_error_status(rc) >= 400);
                r->err = rc;
                break;
            }
            if (rc == SL_HTTP_EV_HEAD) {
                CHECK(!in_msg);
                in_msg = true;
                if (r->n < MAXMSG)
                    r->head[r->n] = head_hash(&p.msg);
                r->n++;
            } else if (rc == SL_HTTP_EV_BODY) {
                CHECK(in_msg && p.msg.has_body);
                CHECK(body.len > 0 && body.ptr >= pend && body.ptr + body.len <= pend + used);
                if (r->n <= MAXMSG) {
                    r->body[r->n - 1] = mix(r->body[r->n - 1], body.ptr, body.len);
                    r->body_len[r->n - 1] += body.len;
                }
            } else if (rc == SL_HTTP_EV_DONE) {
                CHECK(in_msg);
                in_msg = false;
                if (r->n <= MAXMSG) {
                    CHECK(p.msg.body_read == r->body_len[r->n - 1]);
                    if (p.msg.has_body && !p.msg.chunked && p.msg.content_length >= 0)
                        CHECK(p.msg.body_read == (uint64_t)p.msg.content_length);
                    uint64_t t = 0;
                    for (uint32_t i = 0; i < p.msg.ntrailers; i++)
                        t = mix_str(mix_str(t, p.msg.trailers[i].name), p.msg.trailers[i].value);
                    r->trail[r->n - 1] = t;
                }
                r->ndone++;
                /* the mask has 3 bits: answers past the 31st are never to a HEAD
                 * (shifting by 32 or more is undefined) */
                if (kind == SL_HTTP_RESPONSE && p.msg.status / 100 != 1 && ++finals < 32 && (head_mask >> finals) & 1)
                    sl_http_parser_expect_head_response(&p);
            } else {
                CHECK(rc == SL_HTTP_EV_NEED_MORE && used == npend && !body.ptr);
            }
            memmove(pend, pend + used, npend - used);
            npend -= used;
            if (rc == SL_HTTP_EV_NEED_MORE)
                break;
        }
    }
    if (eof && !r->err) {
        int rc = sl_http_parser_finish(&p);
        if (rc == SL_HTTP_EV_DONE)
            r->ndone++;
        else if (rc < 0)
            r->err = rc;
        r->eof = rc;
    }
    /* after an error, how much of the failing message's body was handed
     * out depends on the split; nothing else may */
    if (r->err && r->n > 0 && r->n <= MAXMSG)
        r->body[r->n - 1] = r->body_len[r->n - 1] = 0;
    free(pend);
    sl_http_parser_fini(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static rec whole, split;
    if (size < 5)
        return 0;
    sl_http_kind kind = data[0] & 1 ? SL_HTTP_RESPONSE : SL_HTTP_REQUEST;
    unsigned head_mask = (data[0] >> 1) & 7;
    int eof = (data[0] >> 4) & 1;
    uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    run(kind, head_mask, eof, data + 5, size - 5, 0, &whole);
    run(kind, head_mask, eof, data + 5, size - 5, seed | 1, &split);
    if (memcmp(&whole, &split, sizeof whole)) {
        fprintf(stderr, "split changed the outcome: err %d/%d, messages %d/%d, done %d/%d\n", whole.err,
                split.err, whole.n, split.n, whole.ndone, split.ndone);
        abort();
    }
    return 0;
}
