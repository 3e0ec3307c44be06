/* fuzz_load_opts.c: libFuzzer harness for sluice-load's options and the
 * request they build (services/load/opts.c, tmpl.c). The input is argv,
 * one argument per line. Whatever options load_opts_parse() accepts must
 * build a request that our own server's parser accepts whole: request
 * line, Host, --header lines, body template expansions. (An unknown
 * --method is the one refusal allowed: 501 is the server's call.) */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_parse.h"
#include "opts.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

/* Parses the built request; aborts unless it is one complete message. */
static void server_accepts(const char *req, size_t len, size_t body_len)
{
    sl_http_parser p;
    size_t off = 0, used, got = 0;
    sl_http_str body;
    int rc, head = 0;
    CHECK(sl_http_parser_init(&p, SL_HTTP_REQUEST, NULL) == 0);
    do {
        rc = sl_http_parser_feed(&p, req + off, len - off, &used, &body);
        off += used;
        head += rc == SL_HTTP_EV_HEAD;
        if (rc == SL_HTTP_EV_BODY)
            got += body.len;
    } while (rc > 0 && rc != SL_HTTP_EV_DONE);
    if (rc < 0 && rc != SL_HTTP_E_METHOD) {
        fprintf(stderr, "the server refuses what sluice-load sends: %s\n%.*s\n", sl_http_error_str(rc),
                (int)len, req);
        abort();
    }
    if (rc == SL_HTTP_EV_DONE)
        CHECK(head == 1 && off == len && got == body_len);
    sl_http_parser_fini(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[34] = { "sluice-load" }, err[256];
    int argc = 1;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *s = text; argc < 33;) {
        char *nl = strchr(s, '\n');
        if (nl)
            *nl = '\0';
        /* --body-file reads files, --help prints: not what is fuzzed here */
        if (!strncmp(s, "--body-", 7) || !strncmp(s, "--h", 3) || !strcmp(s, "-h")) {
            free(text);
            return 0;
        }
        argv[argc++] = s;
        if (!nl)
            break;
        s = nl + 1;
    }
    argv[argc] = NULL;
    load_opts o;
    if (load_opts_parse(&o, argc, argv, err, sizeof err) == 0) {
        size_t plen;
        char *prefix = load_request_prefix(&o, &plen);
        CHECK(prefix && strlen(prefix) == plen);
        /* as conn.c's build(): per-request headers, then the body */
        size_t cap = plen + 128 + (o.has_body ? o.body.max_len : 0);
        char *req = malloc(cap), *bodybuf = malloc(o.has_body && o.body.max_len ? o.body.max_len : 1);
        CHECK(req && bodybuf);
        size_t n = (size_t)sprintf(req, "%sgrpc-timeout: 2000m\r\n", prefix), blen = 0;
        if (o.has_body) {
            uint64_t rng = 0x9e3779b97f4a7c15ull;
            const char *b = o.body.src;
            blen = o.body.src_len;
            if (!o.body.constant)
                blen = tmpl_expand(&o.body, 7, &rng, bodybuf), b = bodybuf;
            CHECK(blen <= o.body.max_len || o.body.constant);
            n += (size_t)sprintf(req + n, "Content-Length: %zu\r\n\r\n", blen);
            memcpy(req + n, b, blen);
            n += blen;
        } else {
            n += (size_t)sprintf(req + n, "\r\n");
        }
        CHECK(n <= cap);
        if (plen < SL_HTTP_DEFAULT_MAX_HEAD - 128 && blen <= SL_HTTP_DEFAULT_MAX_BODY)
            server_accepts(req, n, blen);
        free(req);
        free(bodybuf);
        free(prefix);
        load_opts_free(&o);
    }
    free(text);
    return 0;
}
