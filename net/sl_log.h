/* sl_log.h: the process's log sink: one line per event, written without
 * blocking a reactor.
 *
 *     sl_log_open(&(sl_log_opts){ .fd = 2, .format = SL_LOG_JSON });
 *     sl_log(SL_LOG_INFO, "order-svc: resuming %d compensations", n);
 *     ...
 *     sl_log_close();   // writes everything still buffered
 *
 * A line is "2026-12-05T10:40:00.123Z INFO msg" (text) or
 * {"ts":"2026-12-05T10:40:00.123Z","level":"info","msg":"..."} (json: one
 * object per line, built with jansson, so every string is escaped). The
 * access log (sl_http_server_opts.access_log) adds method, path, status,
 * duration_ms, trace_id and cause fields.
 *
 * NON-BLOCKING. A caller (any thread: a reactor, a worker) formats its line
 * and copies it into one bounded buffer under a mutex that is only ever
 * held for that copy; a writer thread writes the buffer to the fd. When
 * the buffer is full the line is dropped and counted (sl_log_dropped, and
 * /metrics' sluice_log_dropped_total), so a reader that stops reading
 * (stderr into a full pipe) costs lines, never a reactor's time.
 *
 * Before sl_log_open and after sl_log_close lines go to stderr at once
 * (text), as a plain fprintf would: a program that never opens the sink
 * keeps working, only without the writer thread.
 *
 * REPORTS. While the sink is open, the runtime's reports (core/sl_diag.h:
 * stalls, deadlocks, leaks at free, misuse) of reactors without a sink of
 * their own are log lines too (sl_diag_set_sink): level "error" for a
 * deadlock or a misuse, "warn" for the rest, the report as the message
 * (a backtrace's lines joined; longer than 4 KiB: truncated). */
#ifndef SL_LOG_H
#define SL_LOG_H
#include <stddef.h>
#include <stdint.h>

typedef enum sl_log_format { SL_LOG_TEXT, SL_LOG_JSON } sl_log_format;
typedef enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR } sl_log_level;

typedef struct sl_log_opts {
    int fd;                  /* where lines go; 0 means stderr (2). Not closed by the sink */
    sl_log_format format;    /* SL_LOG_TEXT (default) or SL_LOG_JSON */
    size_t buffer_bytes;     /* the bound of what waits for the writer (1 MiB; >= 4096) */
} sl_log_opts;

/* Starts the writer thread. NULL opts: the defaults. Returns 0, -EINVAL
 * (a bad format or buffer_bytes below 4096, or a negative fd), -EALREADY
 * (open already), -ENOMEM, or the -errno of pthread_create. */
int sl_log_open(const sl_log_opts *opts);

/* Writes everything buffered (waits for the writer: the fd must take it or
 * fail; a write error drops the rest, counted) and joins the thread. Then
 * lines go to stderr directly again. Without an open sink: nothing. */
void sl_log_close(void);

/* One event: printf-style message (a trailing newline is not needed; any
 * newline in it is written as a space in text, escaped in json). Longer
 * than 4 KiB: truncated. Never blocks on the fd while the sink is open. */
void sl_log(sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The access-log line of one request. path is path_len bytes (not
 * NUL-terminated); trace_id 32 hex digits or NULL; cause NULL for none.
 * text: "TS INFO GET /path 200 1.234ms trace=ID[ cause=C]". */
void sl_log_access(const char *method, const char *path, size_t path_len, int status, double duration_ms,
                   const char *trace_id, const char *cause);

/* Lines dropped since start because the buffer was full or the fd failed. */
uint64_t sl_log_dropped(void);

/* "text" or "json" to *out: 0, or -EINVAL for anything else. */
int sl_log_format_parse(const char *s, sl_log_format *out);

#endif
