/*
 * ready: turns "a message matching a selector is in System V queue qid" into a
 * readable file descriptor, for event loops (issue 10). No Lua here.
 *
 * One helper thread per watched queue blocks in msgrcv(qid, buf, 0, msgtyp,
 * msgflg). A message with bytes does not fit in 0 bytes: the call fails with
 * E2BIG and leaves it queued, and the helper makes the eventfd readable. A
 * 0-byte message does fit, so the helper's call removes it: the engine keeps
 * it in a one-message stash for the owner's next receive (lmq_ready_take) or
 * puts it back (msgsnd IPC_NOWAIT) when the watch stops.
 *
 * Threads: every call on an engine is made by its one owner thread; only the
 * engine's own helper runs beside it. Different engines may have different
 * owner threads. After fork() the child never touches the parent's helper,
 * eventfd or stash: the engine notices the new process on its next call and
 * starts afresh there (its own eventfd and helper; the parent's stashed
 * message stays the parent's).
 *
 * While a helper waits (armed, not fired), it competes for 0-byte messages
 * with every other receiver of the queue, the owner's own blocking msgrcv
 * included: one that arrives then goes to this engine's stash. Stop the watch
 * before a blocking receive on the same queue, and when no wait on it is
 * coming soon, so that such a message is not held back from other receivers.
 * A helper that has fired is parked and takes nothing until re-armed.
 *
 * Link with -pthread. glibc loads libgcc_s.so.1 the first time a helper is
 * cancelled (pthread_cancel needs it, and aborts the process without it).
 */
#ifndef LMQ_READY_H
#define LMQ_READY_H

/* The names a helper thread gives itself (ps -L, top -H, /proc/PID/task/TID/comm), so
 * that a host, a debugger or a test tells them from its own threads: "mq-ready" while
 * it watches the queue (in msgrcv, or about to be), "mq-parked" while it waits to be
 * armed again and takes nothing. */
#define LMQ_READY_THREAD_NAME "mq-ready"
#define LMQ_READY_PARKED_NAME "mq-parked"

typedef struct lmq_ready lmq_ready;

/* An engine for queue qid: an eventfd (EFD_NONBLOCK|EFD_CLOEXEC), no thread yet.
 * NULL with errno on failure. */
lmq_ready *lmq_ready_new(int qid);

/* The fd to poll for POLLIN. In a forked child, the child's own eventfd, made
 * on the first call there; -1 with errno when it cannot be made. */
int lmq_ready_fd(lmq_ready *r);

/* Watch for a message matching (msgtyp, msgflg); msgflg is 0 or MSG_EXCEPT
 * (meaningful only for msgtyp > 0, as in msgrcv). Starts the helper, retargets
 * it (a new selector while it waits: cancel, join, start again), or re-arms it
 * after it fired (the fd is cleared and the helper waits again; a message still
 * there makes it fire again at once). Armed and waiting on the same selector
 * already: nothing, no system call. When the stash holds a message matching
 * the selector, or the queue is gone, the fd is left readable and no helper
 * waits. 0, or -1 with errno: EINVAL (bad msgflg), EAGAIN and the like when the
 * thread cannot start, EAGAIN/EACCES when a stashed message of another
 * selector cannot be put back, or the errno of the helper's msgrcv when it
 * failed for another reason than removal (e.g. EACCES). After -1 the caller
 * polls with IPC_NOWAIT as without the engine, and may arm again later. */
int lmq_ready_arm(lmq_ready *r, long msgtyp, int msgflg);

/* 1 once the helper (or a put-back) saw the queue removed (EIDRM/EINVAL), else 0.
 * One atomic load. */
int lmq_ready_gone(const lmq_ready *r);

/* If the stash holds a message matching (msgtyp, msgflg) by msgrcv's rules
 * (0: any; > 0: equal, or different with MSG_EXCEPT; < 0: type <= -msgtyp),
 * remove it, store its type in *mtype and return 1 (the message has 0 bytes).
 * Else 0. Bits of msgflg other than MSG_EXCEPT are ignored. The stash was the
 * first match of the helper's selector when taken, so a receive should try it
 * before the queue; with a negative msgtyp a lower type queued since then is
 * not preferred over it. */
int lmq_ready_take(lmq_ready *r, long msgtyp, int msgflg, long *mtype);

/* Whether the stash holds a message: one atomic load, for the receive hot path. */
int lmq_ready_pending(const lmq_ready *r);

/* Put a stashed message back in the queue (msgsnd IPC_NOWAIT; it goes to the
 * tail), e.g. before a receive whose selector it does not match. 0 when the stash is empty afterwards (put back, nothing stashed, or
 * the queue is gone and the message with it); -1 with errno when it is still
 * stashed (EAGAIN: the queue holds as many messages as its byte capacity;
 * EACCES: no write permission). */
int lmq_ready_put_back(lmq_ready *r);

/* Stop the helper (cancel or wake it, then join) and put back a stashed
 * message if possible (if not, it stays stashed: lmq_ready_take still gets
 * it). The fd stays open and is left not readable. */
void lmq_ready_stop(lmq_ready *r);

/* As lmq_ready_stop, but a helper that fired (parked, taking nothing) is kept for the
 * next arm, which then costs no thread start: for a handle between two waits. One still
 * waiting in msgrcv is stopped, since it would take 0-byte messages nobody waits for. */
void lmq_ready_park(lmq_ready *r);

/* As lmq_ready_stop, but leave the fd readable: for a wait that sleeps on it while its
 * handle closes, so that the wait wakes and ends instead of sleeping on an fd that nothing
 * will signal again. The fd stays open until lmq_ready_free. */
void lmq_ready_release(lmq_ready *r);

/* Stop, put back any stashed message, close the fd, free. 0, or -1 with errno
 * of the failed put-back when a stashed message had to be dropped. In a forked
 * child that never used the engine: only the memory is freed (no join, no
 * put-back, and the inherited fd number is not closed, as the child may have
 * reused it). NULL is accepted. */
int lmq_ready_free(lmq_ready *r);

#ifdef LMQ_READY_TEST
/* Test builds only: how many 0-byte messages were rescued from a cancelled msgrcv. */
unsigned long lmq_ready_test_rescues(void);
#endif

#endif
