/*
 * mq.list(): every queue in the kernel's table, with its name where a key
 * file in $TMPDIR names it (by the rule of names.c: the file maps to the
 * queue's key and its owner made the queue). A key file is trusted for the
 * name it shows and nothing else.
 */

/***
@module mq
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lauxlib.h"

#include "control.h"
#include "errors.h"
#include "listing.h"
#include "names.h"
#include "sysvtable.h"

/* Appends one row's table to the list at stack index 1 and indexes it by key
 * in the table at index 2 (private queues have no name to find). */
static void add_row(lua_State *L, const lmq_queue_row *row) {
  lmq_push_queue_row(L, row, 0);
  if (row->key != 0) {
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, (lua_Integer)row->key);
  }
  lua_rawseti(L, 1, (lua_Integer)lua_rawlen(L, 1) + 1);
}

/* Under lua_pcall, so that an allocation error cannot leak the open table:
 * list, bykey, FILE* -> the rows added. */
static int read_rows(lua_State *L) {
  FILE *table = (FILE *)lua_touserdata(L, 3);
  lmq_queue_row row;
  lua_settop(L, 2);
  while (lmq_queue_table_next(table, &row)) add_row(L, &row);
  return 0;
}

/* Under lua_pcall: list, bykey, DIR* -> names set. The smallest name wins
 * when several key files map to one queue (ftok collisions). */
static int read_names(lua_State *L) {
  DIR *dir = (DIR *)lua_touserdata(L, 3);
  struct dirent *e;
  while ((e = readdir(dir)) != NULL) {
    struct stat st;
    lua_Integer cuid;
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
      continue;
    if (lua_rawgeti(L, 2, (lua_Integer)lmq_name_key(&st)) != LUA_TTABLE) {
      lua_pop(L, 1);
      continue;
    }
    lua_getfield(L, -1, "cuid");
    cuid = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (cuid == (lua_Integer)st.st_uid) {
      int keep = lua_getfield(L, -1, "name") == LUA_TSTRING && strcmp(lua_tostring(L, -1), e->d_name) < 0;
      lua_pop(L, 1);
      if (!keep) {
        lua_pushstring(L, e->d_name);
        lua_setfield(L, -2, "name");
      }
    }
    lua_pop(L, 1);
  }
  return 0;
}

/***
Every queue the kernel has, read from `/proc/sysvipc/msg`.
@function list
@treturn {table,...} one table per queue: `key`, `id`, `uid`, `gid`, `cuid`, `cgid`,
`mode`, `bytes`, `messages`, `last_send_pid`, `last_receive_pid`, `last_send_time`,
`last_receive_time`, `last_change_time`, and `name` where a key file in `$TMPDIR`
names the queue (it maps to the queue's key and its owner made the queue)
@return[2] nil, message, code when the table cannot be read
*/
static int listing_list(lua_State *L) {
  FILE *table;
  DIR *dir;
  int status;
  lua_settop(L, 0);
  lua_newtable(L);                                /* 1: the list */
  lua_newtable(L);                                /* 2: rows by key */
  table = lmq_queue_table_open();
  if (table == NULL) {
    int err = errno;
    return lmq_fail(L, "mq.list", "/proc/sysvipc/msg", lmq_code_of_errno(err), strerror(err));
  }
  lua_pushcfunction(L, read_rows);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushlightuserdata(L, table);
  status = lua_pcall(L, 3, 0, 0);
  fclose(table);
  if (status != LUA_OK) return lua_error(L);
  dir = opendir(lmq_name_dir());
  if (dir != NULL) {                              /* no $TMPDIR: no names, still a list */
    lua_pushcfunction(L, read_names);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushlightuserdata(L, dir);
    status = lua_pcall(L, 3, 0, 0);
    closedir(dir);
    if (status != LUA_OK) return lua_error(L);
  }
  lua_settop(L, 1);
  return 1;
}

void lmq_listing_register(lua_State *L) {
  lua_pushcfunction(L, listing_list);
  lua_setfield(L, -2, "list");
}
