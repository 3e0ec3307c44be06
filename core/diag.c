/* diag.c: describing tasks, finding global deadlocks, reporting leaks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include "internal.h"

const char *sl_task_status_name(sl_task_status s)
{
    static const char *names[] = { "ready", "running", "parked", "done" };
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "?";
}

const char *sl_wait_kind_name(sl_wait_kind k)
{
    static const char *names[] = { "none", "sleep", "send", "recv", "select", "mutex",
                                   "semaphore", "join", "group", "remote", "external",
                                   "offload" };
    return (unsigned)k < sizeof names / sizeof *names ? names[k] : "?";
}

/* What t waits on, as told: a select claimed or held for an offer to
 * another reactor's select is a cross-reactor wait inside (rsel.c), and
 * its wait object is its cases, as any select's. */
static sl_wait_kind told_kind(const sl_task *t)
{
    return sl__rsel_select_offered(t) ? SL_WAIT_SELECT : (sl_wait_kind)t->wait_kind_;
}

/* Appends to a description of `size` bytes that has `n` so far (what
 * snprintf would have written: it may exceed size), truncating as
 * snprintf does; returns the new length. */
static int put(char *buf, size_t size, int n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int put(char *buf, size_t size, int n, const char *fmt, ...)
{
    size_t at = (size_t)n < size ? (size_t)n : size;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(size ? buf + at : buf, size - at, fmt, ap);
    va_end(ap);
    return k > 0 ? n + k : n;
}

/* ANOTHER REACTOR'S CHANNEL. The diagnostics run on the waiting task's
 * reactor, and the channel's home may free it while the task waits: the
 * waiter learns it by an -EPIPE still on its way, and the header may be
 * released before (when nothing it counts keeps it). So whether a wait is
 * on another reactor's channel is decided from the waiter's own state
 * (its wait kind and tag, a select case's w_.tag), and what is said of
 * that channel (its name, its capacity) was copied into memory of this
 * reactor while the channel was surely alive, as the task parked: the
 * round trip's request, this reactor's record of the channel (rsend.c,
 * rrecv.c), the select's case (select.c). Such a channel is never read
 * here (issue 17: a use of freed memory under ASan, a race under TSan). */

/* A plain task parked on another reactor's channel (SL_WAIT_REMOTE, not a
 * select's offer): its name ("" if not known) and capacity. A task of the
 * home offering itself to another reactor's select (rsel.c) waits on a
 * channel of its own reactor, read unless freed since (its header is not
 * kept for the offer's answer). */
static const char *remote_chan(const sl_task *t, size_t *cap)
{
    const char *name;
    if (t->w_.tag == SL_OFFER_TAG || t->w_.tag == SL_OFFER_ABORT_TAG) {
        const sl_chan *ch = t->wait_obj_;
        *cap = 0;
        if (sl__rsel_offer_gone(t))   /* freed here with the offer out: the header may be gone */
            return "(freed)";
        *cap = ch->cap_;
        return ch->name_;
    }
    if (t->w_.tag == SL_RSEND_TAG)
        sl__rsend_chan_info(t->reactor_, t->wait_obj_, 0, &t->w_, &name, cap);
    else if (t->w_.tag == SL_RRECV_TAG)
        sl__rrecv_chan_info(t->reactor_, t->wait_obj_, 0, &t->w_, &name, cap);
    else
        sl__remote_waits_on(t, &name, cap);
    return name ? name : "";
}

/* A select's case whose channel was freed while the select was claimed
 * or held (rsel.c): the other cases on it are marked, the one offered is
 * the offer's (`offered`: sl__rsel_offer_gone). Not to be read. */
static bool case_gone(const sl_case *c, const sl_waiter *offered)
{
    return c->w_.tag == SL_CASE_GONE || &c->w_ == offered;
}

/* A parked select's case on another reactor's channel (c->w_.tag set,
 * not gone), of a task of reactor r: that channel's name and capacity
 * from r's own memory that lives while the case waits, never from the
 * channel: a case by offer (SL_CASE_RV) from its proxy (rsel.c, alive
 * while c->w_.until points at it), a buffered one from r's record of the
 * channel (rsend.c, rrecv.c: kept while the case's node is queued in it,
 * or off it and pinned for a held or claimed select). "(unknown)" if
 * neither is there (not expected: then nothing shared is read). */
static const char *case_far(const sl_reactor *r, const sl_case *c, size_t *cap)
{
    const char *name = NULL;
    bool known;
    if (c->w_.tag == SL_CASE_RV)
        known = sl__rsel_case_info(c, &name, cap);
    else if (c->op == SL_SEND)
        known = sl__rsend_chan_info(r, c->ch, c->gen_, NULL, &name, cap);
    else
        known = sl__rrecv_chan_info(r, c->ch, c->gen_, NULL, &name, cap);
    if (!known)
        return "(unknown)";
    return name ? name : "";
}

/* A select's case: the channel's name, read only if it is ours. */
static const char *case_chan(const sl_reactor *r, const sl_case *c, const sl_waiter *offered)
{
    size_t cap;
    if (case_gone(c, offered))
        return "(freed)";
    if (c->w_.tag)                    /* another reactor's (select.c) */
        return case_far(r, c, &cap);
    return c->ch ? c->ch->name_ : "?";
}

static const char *wait_obj_name(const sl_task *t)
{
    const void *o = t->wait_obj_;
    if (t->wait_kind_ == SL_WAIT_EXTERNAL || t->wait_kind_ == SL_WAIT_OFFLOAD)
        return t->w_.buf;   /* sl_task_park_as's description, the work's name, or NULL */
    if (!o)
        return NULL;
    switch (told_kind(t)) {
    case SL_WAIT_SEND:
    case SL_WAIT_RECV:   return ((const sl_chan *)o)->name_;   /* ours: another's is a remote wait */
    case SL_WAIT_REMOTE: {
        size_t cap;
        return remote_chan(t, &cap);
    }
    case SL_WAIT_MUTEX:  return ((const sl_mutex *)o)->name_;
    case SL_WAIT_SEM:    return ((const sl_sem *)o)->name_;
    case SL_WAIT_JOIN:   return ((const sl_task *)o)->name_;
    default:             return NULL;
    }
}

void sl_task_info_get(const sl_task *t, sl_task_info *info)
{
    bool parked = t->status_ == SL_TASK_PARKED;
    *info = (sl_task_info){
        .name = t->name_, .file = t->file_, .line = t->line_,
        .status = (sl_task_status)t->status_,
        .wait = parked ? told_kind(t) : SL_WAIT_NONE,
        .wait_obj = parked ? t->wait_obj_ : NULL,
        .wait_name = parked ? wait_obj_name(t) : NULL,
        .waiting_ns = parked ? sl_now_ns() - t->wait_since_ : 0,
        .deadline = t->deadline_, .cancelled = t->cancel_err_,
        .spawned_ns = t->spawned_ns_,
    };
}

/* ---- why is it not ready ---------------------------------------------------- */

const char *sl_why_name(sl_why w)
{
    static const char *names[] = { "none", "empty", "full", "full (room lent to other reactors)",
                                   "no receiver", "no sender", "closed, credit out",
                                   "waits for credit", "waits for the home reactor",
                                   "waits for a receiver at the home reactor",
                                   "waits for a sender at the home reactor" };
    return (unsigned)w < sizeof names / sizeof *names ? names[w] : "?";
}

/* The tasks holding the end opposite to `op`: how many, and one's name. */
static void peers_of(const sl_chan *ch, int op, sl_wait_case *c)
{
    int want = op == SL_SEND ? SL_CHAN_RECEIVER : SL_CHAN_SENDER;
    c->ends = ch->n_holds_ > 0;
    c->peers = op == SL_SEND ? ch->n_receivers_ : ch->n_senders_;
    for (const sl_hold *h = ch->holds_.head; h && !c->peer; h = h->clink.next)
        if ((h->ends & want) && h->task)
            c->peer = h->task->name_;
}

static void why_local(const sl_chan *ch, int op, uint64_t until, sl_wait_case *c)
{
    *c = (sl_wait_case){ .chan = ch->name_, .op = op, .len = ch->len_, .cap = ch->cap_,
                         .lent = ch->reserved_, .until = until };
    if (op == SL_SEND)
        c->why = !ch->cap_ ? SL_WHY_NO_RECEIVER : ch->len_ >= ch->cap_ ? SL_WHY_FULL : SL_WHY_LENT;
    else
        c->why = ch->closed_ || ch->senders_gone_ ? SL_WHY_CLOSED : !ch->cap_ ? SL_WHY_NO_SENDER : SL_WHY_EMPTY;
    peers_of(ch, op, c);
}

/* Why a parked select's case on another reactor's channel waits. By
 * credit or a lend (a buffered channel): credit, or the home's lend. By
 * offer (rsel.c): on a rendezvous channel, for the other operation at
 * the home, which offers itself; a receive on an expiring channel, for
 * the home's offer of its head element. */
static sl_why case_why_far(const sl_case *c, size_t cap)
{
    if (c->w_.tag != SL_CASE_RV)
        return c->op == SL_SEND ? SL_WHY_CREDIT : SL_WHY_REMOTE;
    if (cap)
        return SL_WHY_REMOTE;
    return c->op == SL_SEND ? SL_WHY_HOME_RECEIVER : SL_WHY_HOME_SENDER;
}

int sl_task_why(const sl_task *t, sl_wait_case *out, int max)
{
    if (t->status_ != SL_TASK_PARKED || !t->wait_obj_)
        return 0;
    const sl_chan *ch = t->wait_obj_;   /* read only for a wait on our own channel */
    sl_wait_case c;
    switch (told_kind(t)) {
    case SL_WAIT_SEND:
    case SL_WAIT_RECV:
        if (max > 0)
            why_local(ch, t->wait_kind_ == SL_WAIT_SEND ? SL_SEND : SL_RECV,
                      t->wait_kind_ == SL_WAIT_SEND ? t->w_.until : 0, &out[0]);
        return 1;
    case SL_WAIT_SELECT: {
        const sl_case *cs = t->wait_obj_;
        const sl_waiter *offered = sl__rsel_offer_gone(t);
        for (int i = 0; i < t->w_.idx && i < max; i++) {
            if (case_gone(&cs[i], offered))   /* claimed or held, its channel freed since: not read */
                out[i] = (sl_wait_case){ .chan = "(freed)", .op = cs[i].op, .why = SL_WHY_CLOSED };
            else if (!cs[i].w_.tag)   /* ours */
                why_local(cs[i].ch, cs[i].op, 0, &out[i]);
            else {   /* another reactor's: as it was when the select parked */
                size_t cap = 0;
                const char *name = case_far(t->reactor_, &cs[i], &cap);
                out[i] = (sl_wait_case){ .chan = name, .cap = cap, .op = cs[i].op,
                                         .why = case_why_far(&cs[i], cap) };
            }
        }
        return t->w_.idx;
    }
    case SL_WAIT_REMOTE:
        /* the channel is another reactor's: what it was when t parked */
        c = (sl_wait_case){ .op = 0 };
        c.chan = remote_chan(t, &c.cap);
        if (sl__rsend_parked(t)) {
            c.op = SL_SEND;
            c.why = SL_WHY_CREDIT;
            c.until = t->w_.until;
        } else if (sl__rrecv_parked(t)) {
            c.op = SL_RECV;
            c.why = SL_WHY_REMOTE;
        } else {
            c.why = SL_WHY_REMOTE;
        }
        if (max > 0)
            out[0] = c;
        return 1;
    default:
        return 0;
    }
}

/* " [why: 'a' empty 0/4, 1 sender ('p'); 'b' full 4/4]" */
static int why_text(const sl_task *t, char *buf, size_t size)
{
    sl_wait_case cs[8];
    int n = sl_task_why(t, cs, 8), len = 0;
    uint64_t now = n ? sl_now_ns() : 0;
#define WHY_PUT(...) (len = put(buf, size, len, __VA_ARGS__))
    for (int i = 0; i < n && i < 8; i++) {
        const sl_wait_case *c = &cs[i];
        WHY_PUT("%s'%s' %s", i ? "; " : " [why: ", c->chan, sl_why_name(c->why));
        if (c->why != SL_WHY_REMOTE && c->why != SL_WHY_CREDIT && c->why != SL_WHY_HOME_RECEIVER &&
            c->why != SL_WHY_HOME_SENDER)   /* another reactor's length is not ours to read */
            WHY_PUT(" %zu/%zu", c->len, c->cap);
        if (c->lent)
            WHY_PUT(", %zu lent", c->lent);
        if (c->peers)
            WHY_PUT(", %u %s%s%s%s", c->peers, c->op == SL_SEND ? "receiver" : "sender", c->peers > 1 ? "s" : "",
                    c->peer ? " incl. '" : "", c->peer ? c->peer : "");
        if (c->peers && c->peer)
            WHY_PUT("'");
        else if (c->ends && !c->peers)
            WHY_PUT(", no %s attached", c->op == SL_SEND ? "receiver" : "sender");
        if (c->until)
            WHY_PUT(", element expires in %.3f ms", (double)(int64_t)(c->until - now) / 1e6);
    }
    if (n > 8)
        WHY_PUT("; %d more", n - 8);
    if (n)
        WHY_PUT("]");
#undef WHY_PUT
    return len;
}

int sl_task_describe(const sl_task *t, char *buf, size_t size)
{
    sl_task_info i;
    sl_task_info_get(t, &i);
    int n = snprintf(buf, size, "task '%s' (spawned at %s:%d) %s", i.name, i.file, i.line,
                     sl_task_status_name(i.status));
    if (i.status == SL_TASK_PARKED) {
        n = put(buf, size, n, " on %s%s%s%s", sl_wait_kind_name(i.wait),
                      i.wait_name ? " '" : "", i.wait_name ? i.wait_name : "",
                      i.wait_name ? "'" : "");
        if (i.wait == SL_WAIT_SELECT && i.wait_obj) {
            /* which channels, which way: "parked on select" alone does not
             * say what the task waits for */
            const sl_case *c = i.wait_obj;
            const sl_waiter *offered = sl__rsel_offer_gone(t);
            for (int k = 0; k < t->w_.idx; k++)
                n = put(buf, size, n, "%s%s '%s'", k ? ", " : " (", c[k].op == SL_SEND ? "send" : "recv",
                              case_chan(t->reactor_, &c[k], offered));
            if (t->w_.idx > 0)
                n = put(buf, size, n, ")");
            /* held for another reactor's meet (rsel.c): its cases cannot
             * fire here until the verdict, and what reached its other
             * proxies meanwhile waits for it */
            int held = sl__rsel_held_waiting(t);
            if (held >= 0)
                n = put(buf, size, n, " held for a meet at reactor %d, %d message%s waiting for the verdict",
                              sl__rsel_held_home(t), held, held == 1 ? "" : "s");
            /* claimed here for another reactor's select, with proxies
             * elsewhere (rsel.c): likewise until the claim's answer */
            int claimed = sl__rsel_claim_waiting(t);
            if (claimed >= 0)
                n = put(buf, size, n, " claimed for a meet with reactor %d's select, %d message%s waiting for the answer",
                              sl__rsel_claim_from(t), claimed, claimed == 1 ? "" : "s");
        }
        n = put(buf, size, n, " for %.3f ms", (double)i.waiting_ns / 1e6);
        n += why_text(t, buf + ((size_t)n < size ? (size_t)n : size), (size_t)n < size ? size - (size_t)n : 0);
        if (i.wait == SL_WAIT_MUTEX) {
            const sl_mutex *m = i.wait_obj;
            n = put(buf, size, n, " held by '%s' (tag %016llx)", m->holder_ ? m->holder_->name_ : "?",
                          (unsigned long long)m->tag_);
        }
    }
    if (i.cancelled)
        n = put(buf, size, n, ", cancelled (%s)", strerror(-i.cancelled));
    return n;
}

void sl_reactor_stats_get(const sl_reactor *r, sl_reactor_stats *st)
{
    *st = r->st;
    st->stalls = atomic_load(&((sl_reactor *)r)->stalls);
    if (r->rt) {
        st->watchdog_wakeups = atomic_load(&r->rt->wd_wakeups);
        st->watchdog_parks = atomic_load(&r->rt->wd_parks);
    }
    st->tasks = r->ntasks;
    st->channels = r->nchans;
}

/* ---- global deadlock ------------------------------------------------------ */

static bool chan_is_shared(const sl_chan *ch)
{
    return ch->remote_seen_ || ch->remote_ops_;
}

/* Could anything but another parked task of r wake t? */
static bool has_way_out(const sl_task *t)
{
    if (t->wait_kind_ == SL_WAIT_SEND || t->wait_kind_ == SL_WAIT_RECV)
        return chan_is_shared(t->wait_obj_);
    if (t->wait_kind_ == SL_WAIT_SELECT) {
        const sl_case *c = t->wait_obj_;
        for (int i = 0; i < t->w_.idx; i++)
            if (c[i].w_.tag || chan_is_shared(c[i].ch))   /* another reactor's (not read), or freed */
                return true;
    }
    return false;
}

/* The most events of the reactor's own that can be on its base: wake_ev,
 * timer_ev, run_ev, resume_ev and wg_ev. */
#define OWN_EVENTS_MAX 5

/* Is nothing on r's base but the reactor's own events (a socket, a signal
 * or a user timer could feed a channel and wake someone)? A base with more
 * events than ours can ever be answers at once: a server's reactor has a
 * socket per connection, and this runs at the end of every callback of a
 * runtime with two reactors or more, so the evtimer_pending looks are
 * kept for the bases that could be quiet (they were 6 % of a hello request
 * on two reactors, callgrind). */
static bool only_own_events(sl_reactor *r)
{
    int added = event_base_get_num_events(r->base, EVENT_BASE_COUNT_ADDED);
    if (added > OWN_EVENTS_MAX)
        return false;
    int ours = 1 + (evtimer_pending(r->timer_ev, NULL) ? 1 : 0) +
               (evtimer_pending(r->run_ev, NULL) ? 1 : 0) +
               (r->resume_ev && evtimer_pending(r->resume_ev, NULL) ? 1 : 0) +
               (r->wg_ev && evtimer_pending(r->wg_ev, NULL) ? 1 : 0);
    return added <= ours;
}

/* Nothing on r can run again by itself: no ready task, every task parked on
 * something local without a deadline, no cross-reactor operation under way,
 * and no event on the base but our own. */
bool sl__stuck(sl_reactor *r)
{
    if (r->blocked != r->ntasks || r->remote_pending || r->rq_head || r->yq_head)
        return false;
    return only_own_events(r);
}

/* asleep_count's look at the tasks, once the base is known to hold only our
 * own events and nothing is ready. */
static int asleep_tasks(sl_reactor *r)
{
    if (r->blocked < r->ntasks)
        for (sl_task *t = r->tasks.head; t; t = t->link_.next)
            if (!(t->flags_ & SL_TF_BLOCKED) &&
                (t->status_ != SL_TASK_PARKED || t->wait_kind_ != SL_WAIT_REMOTE ||
                 t->heap_idx_ || !sl__remote_waits(t)))
                return -1;
    return (int)r->ntasks;
}

/* Is every task of r parked with no way out of its own: a local wait with
 * no deadline, or a cross-reactor operation with no deadline and no
 * withdrawal under way; with nothing ready and no event on the base but
 * ours? Returns how many tasks (0 for an idle reactor), or -1. The count
 * filters first, so a busy reactor pays two compares. */
static int asleep_count(sl_reactor *r)
{
    if (r->rq_head || r->yq_head || r->blocked + r->remote_pending < r->ntasks || !only_own_events(r))
        return -1;
    return asleep_tasks(r);
}

/* The stores below are sequentially consistent (a checker on another
 * thread must see them in order) and each costs a locked instruction; they
 * are made only when the value changes. Only r's thread writes these
 * fields once it runs, so it may read its own last value relaxed. */
static void publish_bool(_Atomic bool *p, bool v)
{
    if (atomic_load_explicit(p, memory_order_relaxed) != v)
        atomic_store_explicit(p, v, memory_order_seq_cst);
}

void sl__callback_begin(sl_reactor *r)
{
    if (r->rt && r->rt->n > 1) {
        publish_bool(&r->quiet, false);
        if (atomic_load_explicit(&r->asleep, memory_order_relaxed) != -1)
            atomic_store_explicit(&r->asleep, -1, memory_order_seq_cst);
    }
}

void sl__callback_end(sl_reactor *r)
{
    if (!r->rt || r->rt->n < 2)
        return;
    /* sl__stuck and asleep_count in one look at the base: stuck implies
     * asleep_count's precondition */
    bool stuck = false;
    int n = -1;
    if (!r->rq_head && !r->yq_head && r->blocked + r->remote_pending >= r->ntasks && only_own_events(r)) {
        stuck = r->blocked == r->ntasks && !r->remote_pending;
        n = asleep_tasks(r);
    }
    /* tasks the reactor's own check has reported already are not news */
    if (n > 0 && r->deadlock_reported)
        n = 0;
    /* Busy before and after: a checker that read -1 gave up at once, and
     * one that read another value sees -1 now (it compares twice), so the
     * step count and the turn need no new stamp until asleep changes. */
    if (n < 0 && atomic_load_explicit(&r->asleep, memory_order_relaxed) < 0) {
        publish_bool(&r->quiet, false);   /* stuck implies n >= 0 */
        return;
    }
    /* The turn is counted before the new state is stored: a checker's
     * second look reads the state and then the count (others_look), so
     * one that reads the state of this end has read it after this
     * count, and sees it moved if its first look came before the
     * callback (its -1 may have come and gone between the two looks). */
    atomic_store_explicit(&r->steps_pub, r->st.steps, memory_order_seq_cst);
    atomic_fetch_add_explicit(&r->turns, 1, memory_order_seq_cst);
    atomic_store_explicit(&r->asleep, n, memory_order_seq_cst);
    publish_bool(&r->quiet, stuck);
}

/* ---- the other reactors, at one moment --------------------------------------
 *
 * The checks that look across reactors (the per-reactor check's
 * others_stuck, the wait-for check's channels nobody declared, the
 * all-asleep check) read what every other reactor published: `asleep`
 * (-1 while anything of it may run), `quiet`, `wake_pending` (a message
 * waits for it, or its spin holds it) and `turns`. Read one after the
 * other, they are not a cut: reactor 0 read idle, then reactor 2 posts
 * to it and goes idle, then reactor 2 read idle, and nobody is seen
 * running while a message is in flight. So they are read twice (the
 * double collect), and trusted only if no reactor's `turns` moved in
 * between: the first look reads `turns` first, the second reads it last,
 * and sl__callback_end counts the turn before it stores the new state.
 * A reactor busy between the looks stored -1 (sl__callback_begin), so it
 * is seen busy, or stored its new state at the end of that callback,
 * after counting the turn, and is seen to have moved; a message that
 * waited at a moment between the two looks was taken by a drain inside a
 * callback (wake_run, after sl__callback_begin) or by a spin, whose end
 * counts a turn before it lets wake_pending go: seen either way. The
 * second look reads wake_pending first, the state next, for the same
 * reason. Reading turns first costs nothing: these checks run off the
 * hot path (a timer, or a reactor whose every task is parked). */

/* May o still act: run a task, or take a message? `quiet`: its published
 * quiet too (every task parked on something local, nothing remote under
 * way), else its published asleep (every task parked with no way out of
 * its own: a cross-reactor wait with no deadline counts as parked). */
static bool may_act(sl_reactor *o, bool quiet)
{
    if (atomic_load(&o->asleep) < 0)
        return true;   /* also a reactor whose thread has not published yet */
    return quiet && !atomic_load(&o->quiet);
}

/* One look at every reactor of r's runtime but r, `first` or second (see
 * above): false if one may act, else their turns in (or compared with)
 * turns[]. */
static bool others_look(sl_reactor *r, bool quiet, bool first, uint64_t *turns)
{
    sl_runtime *rt = r->rt;
    for (int i = 0; i < rt->n; i++) {
        sl_reactor *o = rt->r[i];
        if (o == r)
            continue;
        if (first) {
            turns[i] = atomic_load(&o->turns);
            if (may_act(o, quiet) || atomic_load(&o->wake_pending))
                return false;
        } else if (atomic_load(&o->wake_pending) || may_act(o, quiet) ||
                   atomic_load(&o->turns) != turns[i]) {
            return false;
        }
    }
    return true;
}

/* Could nothing but r act: every other reactor of r's runtime parked
 * (asleep, or `quiet` as well) with no message waiting, at one moment
 * between two looks, and no message waiting for r itself (r's own: the
 * caller runs on r's thread, outside any drain)? True for a reactor of no
 * runtime or of one alone: messages from threads of the program's own are
 * not foreseen (docs/core.md). */
static bool others_still(sl_reactor *r, bool quiet)
{
    sl_runtime *rt = r->rt;
    if (!rt || rt->n < 2)
        return true;
    uint64_t turns[rt->n];
    return others_look(r, quiet, true, turns) && others_look(r, quiet, false, turns) &&
           !atomic_load(&r->wake_pending);
}

bool sl__others_may_act(sl_reactor *r)
{
    return !others_still(r, false);
}

/* One line per task of r, each on a new indented line of f (a deadlock report). */
static void describe_tasks(FILE *f, const sl_reactor *r)
{
    char line[512];
    for (sl_task *t = r->tasks.head; t; t = t->link_.next) {
        sl_task_describe(t, line, sizeof line);
        fprintf(f, "\n  %s", line);
    }
}

/* ---- all asleep, across reactors ------------------------------------------- */

/* The report's part of one reactor, made on its own thread (a reactor
 * reads only its own tasks). */
typedef struct asleep_msg {
    sl_reactor *r;
    uint64_t steps;      /* st.steps when the checker saw it asleep */
    int total, nr;
    bool act;            /* the reactor that applies the policy */
} asleep_msg;

static void asleep_report(void *arg)
{
    asleep_msg *m = arg;
    sl_reactor *r = m->r;
    /* something ran since the look (a task stepped): the episode is over */
    if (r->st.steps != m->steps || asleep_count(r) <= 0 || r->deadlock_reported) {
        free(m);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        free(m);
        return;
    }
    fprintf(f, "sluice: deadlock on reactor %d: all %d tasks of all %d reactors are parked and nothing "
            "can wake them (cross-reactor waits included); this reactor's %zu:", r->id, m->total, m->nr,
            r->ntasks);
    describe_tasks(f, r);
    fclose(f);
    r->st.deadlocks++;
    sl__deadlock_keep(r, text);
    sl__report(r, "%s", text);
    free(text);
    sl_task **set = m->act ? malloc(r->ntasks * sizeof *set) : NULL;
    if (set) {
        size_t k = 0;
        for (sl_task *t = r->tasks.head; t; t = t->link_.next)
            set[k++] = t;
        sl__deadlock_act(r, set, k);
        free(set);
        sl__callback_begin(r);   /* the policy may have readied a task */
    }
    free(m);
}

/* Go's "all goroutines are asleep", over every reactor: every task of every
 * reactor is parked with no way out of its own (cross-reactor operations
 * included), no reactor is running a callback and no message waits. The
 * wait-for check and the per-reactor check treat a cross-reactor wait as a
 * way out, so a cycle through channels of two reactors is found only here.
 *
 * Each reactor publishes its own state at each callback's end; a checker
 * reads everyone's twice (state, turns, then the message flags) and trusts
 * it only if nothing moved in between. It reports only when it has seen the
 * same stamp (the sum of every reactor's step count) on two looks in a row,
 * a deadlock_check_ms apart: a real deadlock stays, a moment of calm does
 * not. The stamp also makes it one report per episode, whichever reactor
 * looks. Messages posted from threads outside the runtime are not foreseen
 * (the per-reactor check has the same blind spot). */
void sl__asleep_check(sl_reactor *r)
{
    sl_runtime *rt = r->rt;
    if (!rt || rt->n < 2 || atomic_load(&rt->state) != 1)
        return;
    int own = asleep_count(r);
    if (own < 0 || (own > 0 && r->deadlock_reported))
        return;
    int n = rt->n, nr[n];
    uint64_t turns[n], steps[n];
    int total = own;
    uint64_t stamp = 1 + r->st.steps;
    /* the double collect, in others_look's order: turns first, then the
     * state; then the state, then turns */
    for (int i = 0; i < n; i++) {
        sl_reactor *o = rt->r[i];
        if (o == r)
            continue;
        turns[i] = atomic_load(&o->turns);
        steps[i] = atomic_load(&o->steps_pub);
        nr[i] = atomic_load(&o->asleep);
        if (nr[i] < 0 || atomic_load(&o->wake_pending))
            return;
        total += nr[i];
        stamp += steps[i];
    }
    for (int i = 0; i < n; i++) {
        sl_reactor *o = rt->r[i];
        if (o != r && (atomic_load(&o->wake_pending) || atomic_load(&o->asleep) != nr[i] ||
                       atomic_load(&o->turns) != turns[i]))
            return;
    }
    /* a message for us, not yet drained (we run in a timer's callback):
     * what it brings may wake one of ours */
    if (!total || atomic_load(&r->wake_pending))
        return;
    bool again = r->asleep_seen == stamp;
    r->asleep_seen = stamp;
    uint64_t last = atomic_load(&rt->asleep_stamp);
    if (!again || last == stamp || !atomic_compare_exchange_strong(&rt->asleep_stamp, &last, stamp))
        return;
    bool acted = false;
    for (int i = 0; i < n; i++) {
        sl_reactor *o = rt->r[i];
        int k = o == r ? own : nr[i];
        if (!k)
            continue;
        asleep_msg *m = malloc(sizeof *m);
        if (!m)
            continue;
        *m = (asleep_msg){ .r = o, .steps = o == r ? r->st.steps : steps[i], .total = total, .nr = n,
                           .act = !acted };
        acted = true;
        if (o == r)
            asleep_report(m);
        else if (sl_reactor_post(o, asleep_report, m) < 0)
            free(m);
    }
}

/* Another reactor could still send a message that wakes one of ours unless
 * every other reactor is stuck too and has no message waiting, at one
 * moment (others_still). Read one by one, a reactor read idle could be
 * posted to by one read after it, idle by then; and a reactor whose
 * thread had not yet published (`quiet` starts true) counted as stuck
 * with tasks ready: its asleep (-1 until then) says it may act. */
static bool others_stuck(sl_reactor *r)
{
    return others_still(r, true);
}

int sl_reactor_check_deadlock(sl_reactor *r)
{
    if (!r->ntasks || r->blocked != r->ntasks || r->remote_pending || r->rq_head || r->yq_head)
        return 0;
    /* Our own tasks first: others_stuck reads every other reactor's
     * `quiet` and `wake_pending`, lines their owners write on every
     * callback, so in a cross-reactor ping-pong (a task parks on a channel
     * other reactors use, every leg) it was a cache miss or two per leg,
     * while a task with a way out, the usual case there, answers from our
     * own memory. Before the base's events too (sl__stuck's last look:
     * five calls into libevent, also at every leg of a ping-pong). */
    for (sl_task *t = r->tasks.head; t; t = t->link_.next)
        if (has_way_out(t))
            return 0;
    if (!sl__stuck(r) || !others_stuck(r))
        return 0;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return 0;
    fprintf(f, "sluice: deadlock on reactor %d: all %zu tasks are parked and nothing can wake them:",
            r->id, r->ntasks);
    describe_tasks(f, r);
    fclose(f);
    r->st.deadlocks++;
    r->deadlock_reported = true;
    sl__deadlock_keep(r, text);
    sl__report(r, "%s", text);
    free(text);
    int n = (int)r->ntasks;
    sl_task **set = malloc(r->ntasks * sizeof *set);
    if (set) {
        size_t k = 0;
        for (sl_task *t = r->tasks.head; t; t = t->link_.next)
            set[k++] = t;
        sl__deadlock_act(r, set, k);
        free(set);
    }
    return n;
}

/* Keeps the last reports (a ring of 8) for sl_reactor_deadlocks(). */
void sl__deadlock_keep(sl_reactor *r, const char *text)
{
    unsigned i = r->ndl++ % 8;
    free(r->dl[i].text);
    r->dl[i].text = strdup(text);
    r->dl[i].at = sl_now_ns();
}

int sl_reactor_deadlocks(const sl_reactor *r, int (*fn)(const char *text, uint64_t at_ns, void *arg), void *arg)
{
    unsigned n = r->ndl < 8 ? r->ndl : 8;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (r->ndl - n + k) % 8;
        if (r->dl[i].text) {
            int rc = fn(r->dl[i].text, r->dl[i].at, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void sl__deadlock_maybe(sl_reactor *r)
{
    r->check_deadlock = false;
    if (!r->deadlock_reported)
        sl_reactor_check_deadlock(r);
}

/* ---- leaks at shutdown ------------------------------------------------------ */

/* Reports every task still alive, as it is now. Before anything is torn
 * down: destroying one leaked task releases its mutexes and channel ends,
 * which wakes the tasks that waited on them (a four-task cycle read as one
 * task parked and three ready), so what each waited on is taken first. */
static void report_leaked_tasks(sl_reactor *r)
{
    char line[1024];
    r->tearing_down = true;   /* from here on, teardown's own effects are not misuse */
    for (sl_task *t = r->tasks.head; t; t = t->link_.next) {
        sl_task_describe(t, line, sizeof line);
        sl__report(r, "sluice: leak: %s, still alive at shutdown", line);
    }
}

void sl__report_leaks_before_teardown(sl_reactor *r)
{
    if (r->tearing_down)
        return;
    if (!r->rt) {
        report_leaked_tasks(r);
        return;
    }
    for (int i = 0; i < r->rt->n; i++)   /* every reactor's, before any is torn down */
        if (!r->rt->r[i]->tearing_down && r->rt->r[i]->base)
            report_leaked_tasks(r->rt->r[i]);
}

int sl__destroy_leaked_tasks(sl_reactor *r)
{
    int n = 0;
    sl__report_leaks_before_teardown(r);
    while (r->tasks.head) {
        sl__task_destroy(r->tasks.head, true);
        n++;
    }
    n += sl__free_zombies(r);
    r->st.leaks += (uint64_t)n;
    return n;
}

int sl__release_leaked_chans(sl_reactor *r)
{
    int n = 0;
    while (r->chans.head) {
        sl_chan *ch = r->chans.head;
        sl__report(r, "sluice: leak: channel '%s' (made at %s:%d, %zu of %zu elements buffered) never freed; freed now",
                   ch->name_, ch->file_, ch->line_, ch->len_, ch->cap_);
        sl__chan_teardown(ch);
        n++;
    }
    r->st.leaks += (uint64_t)n;
    return n;
}
