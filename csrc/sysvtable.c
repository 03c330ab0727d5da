/*
 * The kernel's table of message queues. See sysvtable.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "sysvtable.h"

#define PROC_TABLE "/proc/sysvipc/msg"

void lmq_queue_row_from_ds(int id, const struct msqid_ds *ds, lmq_queue_row *row) {
  row->key = ds->msg_perm.__key;
  row->id = id;
  row->mode = (unsigned)ds->msg_perm.mode & 0777u;
  row->bytes = (unsigned long)ds->__msg_cbytes;
  row->messages = (unsigned long)ds->msg_qnum;
  row->capacity = (unsigned long)ds->msg_qbytes;
  row->last_send_pid = ds->msg_lspid;
  row->last_receive_pid = ds->msg_lrpid;
  row->uid = ds->msg_perm.uid;
  row->gid = ds->msg_perm.gid;
  row->cuid = ds->msg_perm.cuid;
  row->cgid = ds->msg_perm.cgid;
  row->last_send_time = (long long)ds->msg_stime;
  row->last_receive_time = (long long)ds->msg_rtime;
  row->last_change_time = (long long)ds->msg_ctime;
}

/* One line of the table: "key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid
 * stime rtime ctime", perms in octal. Returns 1 when all 14 fields parsed. */
#define ROW_FIELDS 14

static int parse_row(const char *line, lmq_queue_row *row) {
  long long f[ROW_FIELDS];
  const char *p = line;
  int i;
  for (i = 0; i < ROW_FIELDS; i++) {
    char *end;
    errno = 0;
    f[i] = strtoll(p, &end, i == 2 ? 8 : 10);
    if (end == p || errno != 0) return 0;
    p = end;
  }
  row->key = (key_t)(int)(unsigned)(f[0] & 0xffffffffLL);
  row->id = (int)f[1];
  row->mode = (unsigned)f[2] & 0777u;
  row->bytes = (unsigned long)f[3];
  row->messages = (unsigned long)f[4];
  row->capacity = 0;
  row->last_send_pid = (pid_t)f[5];
  row->last_receive_pid = (pid_t)f[6];
  row->uid = (uid_t)f[7];
  row->gid = (gid_t)f[8];
  row->cuid = (uid_t)f[9];
  row->cgid = (gid_t)f[10];
  row->last_send_time = f[11];
  row->last_receive_time = f[12];
  row->last_change_time = f[13];
  return 1;
}

FILE *lmq_queue_table_open(void) {
  char header[512];
  FILE *f = fopen(PROC_TABLE, "re");
  if (f != NULL && fgets(header, sizeof header, f) == NULL) {
    fclose(f);
    errno = EIO;
    return NULL;
  }
  return f;
}

int lmq_queue_table_next(FILE *table, lmq_queue_row *row) {
  char line[512];
  while (fgets(line, sizeof line, table) != NULL)
    if (parse_row(line, row)) return 1;
  return 0;
}

int lmq_queue_row_of(int id, lmq_queue_row *row) {
  struct msqid_ds ds;
  FILE *table;
  int found = 0;
  if (msgctl(id, IPC_STAT, &ds) == 0) {
    lmq_queue_row_from_ds(id, &ds, row);
    return 0;
  }
  if (errno != EACCES) return -1;
  /* No read permission: the table in /proc shows the row to everyone. */
  table = lmq_queue_table_open();
  if (table == NULL) return -1;
  while (!found && lmq_queue_table_next(table, row)) found = row->id == id;
  fclose(table);
  if (!found) {
    errno = EIDRM;
    return -1;
  }
  return 0;
}
