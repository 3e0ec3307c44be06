/* http.c: an HTTP service. SIGTERM or SIGINT: drain, then exit 0.
 *   cc http.c $(pkg-config --cflags --libs sluice) -o http && ./http 127.0.0.1:8080 */
#include <stdio.h>
#include <string.h>
#include <sluice/sluice.h>

static int hello(sl_task *t, void *arg) {       /* a handler is a task; arg is the request */
    (void)t;
    return sl_http_reply(arg, 200, "application/json", "{\"message\":\"Hello\"}", 19);
}

int main(int argc, char **argv) {
    sl_runtime *rt;
    sl_http_server *srv = NULL;
    const char *listen = argc > 1 ? argv[1] : "127.0.0.1:8080";     /* port 0: any free one */
    if (sl_runtime_new(&rt, NULL) < 0)                               /* a reactor per core */
        return 1;
    if (sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = listen }) < 0 ||
        sl_http_route(srv, "GET", "/hello", hello, 0, NULL) < 0 ||
        sl_http_server_start(srv) < 0 ||                            /* binds */
        sl_http_server_handle_signals(srv) < 0) {                   /* SIGTERM: drain, stop */
        fprintf(stderr, "http: cannot serve on %s\n", listen);
        sl_http_server_free(srv);       /* NULL if it was not made; the runtime after it */
        sl_runtime_free(rt);
        return 1;
    }
    printf("listening on %.*s:%d\n", (int)(strrchr(listen, ':') - listen), listen, sl_http_server_port(srv));
    fflush(stdout);
    sl_runtime_run(rt);                 /* until a signal stops it */
    sl_http_server_free(srv);
    return sl_runtime_free(rt) == 0 ? 0 : 1;
}
