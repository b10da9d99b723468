// The watchdog: makes the count hook fire at the next VM instruction once a call is past its
// deadline or interrupted, however long each instruction takes.
//
// The hook runs every LP_HOOK_COUNT instructions, and some single instructions are linear in
// an operand of up to memory_mb: `s + 0` converts a 60 MB numeric string (16 ms), `a < b` and
// `a == b` compare two long strings, `tonumber(s)` or any library function that takes a
// number converts one. A thousand of those between two hooks ran 16.7 s under a 200 ms
// timeout. Checking the deadline in each would mean patching the VM; instead a thread looks
// at every state that runs Lua, and for one that is late it sends its thread a signal whose
// handler sets the hook of the running coroutine to count 1 -- what lua.c's SIGINT handler
// does (lua_sethook is meant to be called from a signal handler). The hook then raises the
// timeout at the next instruction boundary: a call overruns by at most one tick of this
// thread (LP_WATCH_TICK_NS) plus one instruction.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "lp_internal.h"

#define LP_WATCH_TICK_NS (20 * 1000000LL)      // how often the watchdog looks
#define LP_WATCH_REPOKE_NS (100 * 1000000LL)   // a late call that still runs is poked again
#define LP_WATCH_SIGNAL SIGURG                 // ignored by default, as Go's preemption uses it

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static lp_ctl **watched;
static size_t watched_count, watched_cap;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static int watch_started;

// The state that runs Lua on this thread (set by lp_watch_enter). Initial-exec TLS: a
// signal handler may read it.
static __thread lp_ctl *tls_running __attribute__((tls_model("initial-exec")));

static void on_poke(int sig) {
    (void)sig;
    int saved = errno;
    lp_ctl *c = tls_running;
    if (c && atomic_exchange(&c->poke, 0)) {
        lua_State *R = c->running;
        if (R) lua_sethook(R, lp_hook, LUA_MASKCOUNT, 1);
    }
    errno = saved;
}

static void poke_if_late(lp_ctl *c, int64_t now) {
    int64_t deadline = atomic_load_explicit(&c->watch_deadline, memory_order_acquire);
    if (deadline == 0) return;  // no Lua runs on it
    int interrupted = atomic_load_explicit(&c->interrupt, memory_order_relaxed);
    if (!interrupted && now <= deadline) return;
    if (now - c->poked_at < LP_WATCH_REPOKE_NS) return;
    c->poked_at = now;
    atomic_store(&c->poke, 1);
    // By thread id, not pthread_t: the call may have ended and its thread gone since the
    // load above, and then tgkill fails (ESRCH) where pthread_kill would read freed memory.
    // A thread that took the id since ignores the signal (or finds no poke for its state).
    syscall(SYS_tgkill, getpid(), atomic_load_explicit(&c->owner_tid, memory_order_relaxed), LP_WATCH_SIGNAL);
}

static void *watch_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&watch_lock);
    for (;;) {
        while (watched_count == 0) pthread_cond_wait(&watch_cond, &watch_lock);
        int64_t now = lp_now_ns();
        for (size_t i = 0; i < watched_count; i++) poke_if_late(watched[i], now);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += LP_WATCH_TICK_NS;
        if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
        pthread_cond_timedwait(&watch_cond, &watch_lock, &until);
    }
    return NULL;
}

static void watch_start(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_poke;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(LP_WATCH_SIGNAL, &sa, NULL) != 0) return;
    // The watchdog takes no signal itself (SIGINT and SIGTERM go to the host's threads).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 << 10);
    pthread_t t;
    watch_started = pthread_create(&t, &attr, watch_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void lp_watch_register(lp_ctl *c) {
    pthread_once(&watch_once, watch_start);
    atomic_init(&c->watch_deadline, 0);
    atomic_init(&c->owner_tid, 0);
    atomic_init(&c->poke, 0);
    pthread_mutex_lock(&watch_lock);
    if (watched_count == watched_cap) {
        size_t cap = watched_cap ? watched_cap * 2 : 64;
        lp_ctl **grown = realloc(watched, cap * sizeof *grown);
        if (!grown) { pthread_mutex_unlock(&watch_lock); return; }  // unwatched: the hook alone
        watched = grown;
        watched_cap = cap;
    }
    watched[watched_count++] = c;
    c->watched = 1;
    pthread_cond_signal(&watch_cond);
    pthread_mutex_unlock(&watch_lock);
}

void lp_watch_unregister(lp_ctl *c) {
    if (!c->watched) return;
    pthread_mutex_lock(&watch_lock);
    for (size_t i = 0; i < watched_count; i++) {
        if (watched[i] == c) {
            watched[i] = watched[--watched_count];
            break;
        }
    }
    c->watched = 0;
    pthread_mutex_unlock(&watch_lock);
}

// This thread's id, once it ran Lua. Threads start with most signals blocked (Dispatch's
// threads, and those they make, block all but a few): a thread that runs Lua takes the poke.
static __thread pid_t tls_tid __attribute__((tls_model("initial-exec")));

void lp_watch_enter(lp_ctl *c, lua_State *L, int64_t deadline_ns, lp_watch_saved *s) {
    if (!tls_tid) {
        tls_tid = (pid_t)syscall(SYS_gettid);
        sigset_t poke;
        sigemptyset(&poke);
        sigaddset(&poke, LP_WATCH_SIGNAL);
        pthread_sigmask(SIG_UNBLOCK, &poke, NULL);
    }
    s->running = c->running;
    s->deadline = atomic_load_explicit(&c->watch_deadline, memory_order_relaxed);
    s->tls = tls_running;
    atomic_store_explicit(&c->owner_tid, tls_tid, memory_order_relaxed);
    c->running = L;
    tls_running = c;
    atomic_store_explicit(&c->poke, 0, memory_order_relaxed);
    atomic_store_explicit(&c->watch_deadline, deadline_ns > 0 ? deadline_ns : INT64_MAX, memory_order_release);
}

void lp_watch_leave(lp_ctl *c, const lp_watch_saved *s) {
    atomic_store_explicit(&c->watch_deadline, s->deadline, memory_order_release);
    c->running = s->running;
    tls_running = s->tls;
}
