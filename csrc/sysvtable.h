/*
 * The kernel's own table of message queues: one queue's row by id, and every
 * row (for mq.list). Reads msgctl(IPC_STAT) where the caller may, and
 * /proc/sysvipc/msg otherwise, which shows every queue to everyone. Depends
 * on nothing else in csrc/.
 */
#ifndef LMQ_SYSVTABLE_H
#define LMQ_SYSVTABLE_H

#include <stdio.h>
#include <sys/types.h>

typedef struct lmq_queue_row {
  key_t key;
  int id;
  unsigned mode;                  /* permission bits */
  unsigned long bytes, messages, capacity;   /* capacity: 0 when read from /proc */
  pid_t last_send_pid, last_receive_pid;
  uid_t uid, cuid;
  gid_t gid, cgid;
  long long last_send_time, last_receive_time, last_change_time;
} lmq_queue_row;

struct msqid_ds;

/* The row of queue `id` from its msgctl(IPC_STAT) result. */
void lmq_queue_row_from_ds(int id, const struct msqid_ds *ds, lmq_queue_row *row);

/*
 * The row of queue `id`: 0, or -1 with errno (EINVAL or EIDRM: no such queue
 * now; anything else: the table could not be read).
 */
int lmq_queue_row_of(int id, lmq_queue_row *row);

/* The table of every queue, /proc/sysvipc/msg, open for reading past its
 * header: NULL with errno when it cannot be read. fclose it. */
FILE *lmq_queue_table_open(void);

/* The next row of the table: 1, or 0 at its end. */
int lmq_queue_table_next(FILE *table, lmq_queue_row *row);

#endif
