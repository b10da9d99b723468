// The sandbox (docs/reference.md): which libraries a plugin gets, `require` below the plugin's
// folder, `print` to the log, no finalizers, text-only `load`.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lp_internal.h"

// Reads the module file `real` (a regular file of at most LP_MAX_SOURCE_BYTES) and loads it
// with the deadline checked while it parses. Opening without blocking and checking the opened
// file (not the path) keeps a FIFO from holding the call and a sparse or growing file from
// being read whole. Pushes the chunk's function; raises on error. [-0, +1, e]
static void load_module(lua_State *L, const char *name, const char *real, const char *chunkname) {
    int fd = open(real, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) luaL_error(L, "module '%s': cannot open %s (%s)", name, real, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        luaL_error(L, "module '%s': %s is not a regular file", name, real);
    }
    if ((uint64_t)st.st_size > LP_MAX_SOURCE_BYTES) {
        close(fd);
        luaL_error(L, "module '%s': %s is larger than the %d MiB limit for plugin files", name, real,
                   (int)(LP_MAX_SOURCE_BYTES >> 20));
    }
    // A userdata holds the bytes: the memory limit counts it and an error cannot leak it.
    size_t cap = (size_t)st.st_size + 1;  // one more byte tells a file that grew since fstat
    char *buf = lua_newuserdatauv(L, cap, 0);
    size_t len = 0;
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            luaL_error(L, "module '%s': cannot read %s (%s)", name, real, strerror(e));
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (len == cap) luaL_error(L, "module '%s': %s changed while it was read", name, real);
    if (lp_load_text(L, buf, len, chunkname) != LUA_OK) lua_error(L);
    lua_remove(L, -2);  // the buffer
}

// require(name): loads NAME.lua or NAME/init.lua below the plugin's folder (upvalue 1, a
// realpath), in text mode, once; the cache is upvalue 2.
static int lp_require(lua_State *L) {
    lp_limit_check(L);  // a closure: lp_open_stdlib does not wrap it
    size_t n;
    const char *name = luaL_checklstring(L, 1, &n);
    const char *root = lua_tostring(L, lua_upvalueindex(1));
    lua_settop(L, 1);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) return 1;  // cached
    lua_pop(L, 1);
    int ok = n > 0 && n < 200 && name[0] != '.' && name[n - 1] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char ch = name[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
             || ch == '_' || ch == '-' || (ch == '.' && name[i + 1] != '.');
    }
    if (!ok)
        return luaL_error(L, "module '%s' not found: require takes a dotted name of a .lua file "
                             "below the plugin's folder (letters, digits, _ - .)", name);
    char rel[256];
    for (size_t i = 0; i <= n; i++) rel[i] = name[i] == '.' ? '/' : name[i];
    const char *tries[2] = { "%s/%s.lua", "%s/%s/init.lua" };
    char path[PATH_MAX + 1], real[PATH_MAX + 1];
    size_t rootlen = strlen(root);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, tries[k], root, rel);
        if (!realpath(path, real)) continue;
        if (strncmp(real, root, rootlen) != 0 || real[rootlen] != '/')
            return luaL_error(L, "module '%s' resolves outside the plugin's folder (%s)", name, real);
        lua_pushfstring(L, "@%s", path);
        load_module(L, name, real, lua_tostring(L, -1));
        lua_remove(L, -2);
        lua_pushvalue(L, 1);
        lua_call(L, 1, 1);
        if (lua_isnil(L, -1)) { lua_pop(L, 1); lua_pushboolean(L, 1); }
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -2);
        lua_rawset(L, lua_upvalueindex(2));
        return 1;
    }
    return luaL_error(L, "module '%s' not found: no %s/%s.lua nor %s/%s/init.lua (require loads "
                         ".lua files below the plugin's folder only)", name, root, rel, root, rel);
}

static int lp_refuse(lua_State *L) {
    return luaL_error(L, "%s is not available to plugins", lua_tostring(L, lua_upvalueindex(1)));
}

static void refuse(lua_State *L, int table, const char *field, const char *what) {
    lua_pushstring(L, what);
    lua_pushcclosure(L, lp_refuse, 1);
    lua_setfield(L, table, field);
}

// [opts] -> [host, ctx]
static int lp_sandbox_main(lua_State *L) {
    const lp_sandbox_options *o = lua_touserdata(L, 1);
    lua_settop(L, 0);
    luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(L, LUA_COLIBNAME, luaopen_coroutine, 1);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 1);
    if (o->allow_io) luaL_requiref(L, LUA_IOLIBNAME, luaopen_io, 1);
    lua_settop(L, 0);
    lua_pushglobaltable(L);
    int g = lua_gettop(L);
    lua_pushnil(L); lua_setfield(L, g, "dofile");
    lua_pushnil(L); lua_setfield(L, g, "loadfile");
    // string: no bytecode out; the shared string metatable cannot be reached or replaced.
    lua_getfield(L, g, "string");
    lua_pushnil(L); lua_setfield(L, -2, "dump");
    lp_open_patterns(L, -1);  // pattern matching that the deadline can stop
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    // os: time, clock and date only, unless granted; never exit (it would skip teardown).
    lua_getfield(L, g, "os");
    int os = lua_gettop(L);
    if (!o->allow_os) {
        lua_createtable(L, 0, 3);
        const char *keep[] = { "time", "clock", "date", "difftime" };
        for (int i = 0; i < 4; i++) {
            lua_getfield(L, os, keep[i]);
            lua_setfield(L, -2, keep[i]);
        }
        lua_setfield(L, g, "os");
    } else {
        refuse(L, os, "exit", "os.exit");
        lua_pushcfunction(L, lp_os_execute);  // stoppable, and SIGINT still reaches luapipe
        lua_setfield(L, os, "execute");
    }
    lua_pop(L, 1);
    if (o->allow_io && !o->allow_os) {  // running programs is the os grant's, not io's
        lua_getfield(L, g, "io");
        refuse(L, lua_gettop(L), "popen", "io.popen (it needs the os grant too)");
        lua_pop(L, 1);
    }
    // require: .lua files below the plugin's folder only.
    if (o->root) {
        char real[PATH_MAX + 1];
        if (!realpath(o->root, real)) return luaL_error(L, "plugin folder %s: cannot resolve", o->root);
        lua_pushstring(L, real);
        lua_newtable(L);
        lua_pushcclosure(L, lp_require, 2);
    } else {
        lua_pushliteral(L, "require");
        lua_pushcclosure(L, lp_refuse, 1);
    }
    lua_setfield(L, g, "require");
    // the luapipe module, then the Lua part of the rules.
    lp_open_luapipe(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, g, "luapipe");
    int m = lua_gettop(L);
    // Calls that wait, and coroutine.resume/wrap that pass a wait up (lp_wait.c).
    lp_open_waits(L, m);
    if (o->shared_waits) lp_open_shared_waits(L, m);  // ctx.shared outside the process
    // Deadline-aware replacements and entry checks for every library function (lp_stdlib.c).
    lp_open_stdlib(L);
    if (luaL_loadbufferx(L, lp_prelude, lp_prelude_len, "=luapipe.prelude", "t") != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, m);
    lua_newtable(L);
    lua_call(L, 2, 2);  // [g, m, host, ctx]
    return 2;
}

int lp_open_sandbox(lua_State *L, const lp_sandbox_options *opts) {
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, lp_sandbox_main);
    lua_pushlightuserdata(L, (void *)opts);
    return lua_pcall(L, 1, 2, 0);
}
