// os.execute, for plugins granted `os`, run by luapipe rather than loslib.c's system(3):
// system() ignores SIGINT in the whole process while its command runs (a SIGINT to luapipe
// then did nothing: the run went on for as long as the command), and it waits without end.
// Here the command runs in a process group of its own, with the signals and mask a shell
// expects, and the wait polls the call's deadline and the interrupt flag: past either, the
// group gets SIGKILL and the call fails as its timeout (or interrupted).
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lp_internal.h"

extern char **environ;

static int spawn_shell(const char *cmd, pid_t *pid) {
    posix_spawnattr_t attr;
    int err = posix_spawnattr_init(&attr);
    if (err) return err;
    sigset_t defaults, none;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGPIPE);  // luapipe ignores it; a shell pipeline needs it
    sigaddset(&defaults, SIGQUIT);
    sigemptyset(&none);             // worker threads block most signals; the command must not
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    char *argv[] = { "sh", "-c", (char *)cmd, NULL };
    err = posix_spawn(pid, "/bin/sh", NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    return err;
}

int lp_os_execute(lua_State *L) {
    const char *cmd = luaL_optstring(L, 1, NULL);
    if (cmd == NULL) {  // is a shell available?
        lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
        return 1;
    }
    lp_limit_check(L);
    pid_t pid;
    int err = spawn_shell(cmd, &pid);
    if (err) {
        errno = err;
        return luaL_fileresult(L, 0, cmd);
    }
    lp_ctl *c = lp_ctl_get(L);
    long pause_ns = 1000000;  // 1 ms, doubling to 20 ms: short commands return at once
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return luaL_fileresult(L, 0, cmd);
        int why = lp_limit_due(c);
        if (why != LP_LIMIT_NONE) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            return lp_limit_raise(L, why);
        }
        struct timespec ts = { 0, pause_ns };
        nanosleep(&ts, NULL);
        if (pause_ns < 20000000) pause_ns *= 2;
    }
    errno = 0;  // luaL_execresult reads a nonzero errno as the spawn's failure
    return luaL_execresult(L, status);
}
