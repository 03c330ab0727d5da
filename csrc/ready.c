/*
 * ready: a helper thread per watched queue turns "a message matching a
 * selector is in the queue" into a readable eventfd. See ready.h for the
 * contract; this file explains how it is kept.
 *
 * States of the helper (r->state, written under r->mu, read atomically):
 *   IDLE     no helper thread.
 *   WAITING  the helper is in, or about to enter, msgrcv(qid, buf, 0, ...).
 *            Invariant: the stash is empty, so a 0-byte message the call
 *            removes always has a place to go.
 *   FIRED    the helper saw a match (E2BIG) or stashed a 0-byte message; the
 *            fd is readable; the helper sleeps on r->cv until re-armed or
 *            stopped. It is not in msgrcv, so it takes nothing meanwhile.
 *   GONE     msgrcv said the queue was removed; the fd is readable; the
 *            helper has returned.
 *   FAILED   msgrcv failed otherwise (r->err); the fd is readable; the helper
 *            has returned.
 *
 * A helper in msgrcv can only be interrupted by pthread_cancel (it blocks
 * every signal, and glibc's cancel signal cannot be blocked). Cancellation
 * is enabled only around that one call, so it never lands in bookkeeping,
 * and disabled around pthread_cond_wait, which therefore never acts on it.
 * glibc 2.36 runs msgrcv with asynchronous cancellation, so a cancel can act
 * just after the system call handed over a 0-byte message: buf.mtype is
 * zeroed before each call (the kernel writes it only when it hands a message
 * over) and a cleanup handler records it, for the owner to stash after the
 * join.
 */
#include "ready.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/types.h>
#include <unistd.h>

/* The helper needs little: msgrcv, a mutex, and the unwinder when cancelled. */
#define LMQ_READY_STACK ((size_t)64 * 1024)

enum { ST_IDLE, ST_WAITING, ST_FIRED, ST_GONE, ST_FAILED };

/* msgrcv/msgsnd's buffer; with a size of 0 only mtype is ever read or written. */
typedef struct ready_msg {
  long mtype;
  char mtext[1];
} ready_msg;

struct lmq_ready {
  pthread_mutex_t mu;
  pthread_cond_t cv;      /* the helper waits here while FIRED */
  pthread_t thread;
  unsigned long gen;      /* process generation owning the thread, fd and stash */
  int qid;
  int efd;                /* -1 until made (after fork: the child's own) */
  int has_thread;         /* owner only: started and not yet joined */
  int state;              /* ST_*: atomic loads, stores under mu */
  int stop;               /* under mu: the helper must return */
  int signalled;          /* under mu: efd holds a count */
  int err;                /* under mu: errno of a failed msgrcv (FAILED) */
  long sel_typ;           /* the selector: written by the owner under mu */
  int sel_flg;
  int stashed;            /* atomic loads, stores under mu */
  long stash_type;        /* under mu */
  int gone;               /* atomic */
  long rescued;           /* the helper's cleanup handler; read by the owner after join */
  ready_msg buf;          /* the helper's msgrcv buffer: helper only */
};

#ifdef LMQ_READY_TEST
static unsigned long test_rescues;
unsigned long lmq_ready_test_rescues(void) { return __atomic_load_n(&test_rescues, __ATOMIC_RELAXED); }
#define COUNT_RESCUE() __atomic_add_fetch(&test_rescues, 1, __ATOMIC_RELAXED)
#else
#define COUNT_RESCUE() ((void)0)
#endif

/* ---- Which process are we in? -------------------------------------------------------
 * getpid() is a system call (glibc no longer caches it), too dear for the fast path of
 * lmq_ready_arm. A page marked MADV_WIPEONFORK reads as zeros in a forked child: it
 * holds this process's generation, and a zero there means "new process, take a new
 * one". New generations count up from the highest one the process inherited, so a child
 * never takes the number of an engine it inherited. Without the page (a kernel before
 * 4.14), getpid() is the generation. pthread_atfork is not used: a handler registered by
 * a module can outlive its dlclose. */
static pthread_once_t gen_once = PTHREAD_ONCE_INIT;
static unsigned long *gen_page;
static unsigned long gen_last;

static void gen_setup(void) {
#ifdef MADV_WIPEONFORK
  long sz = sysconf(_SC_PAGESIZE);
  void *p;
  if (sz <= 0) sz = 4096;
  p = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  if (madvise(p, (size_t)sz, MADV_WIPEONFORK) != 0) {
    (void)munmap(p, (size_t)sz);
    return;
  }
  gen_page = (unsigned long *)p;
#endif
}

static unsigned long gen_now(void) {
  unsigned long g, fresh;
  (void)pthread_once(&gen_once, gen_setup);
  if (gen_page == NULL) return (unsigned long)getpid();
  g = __atomic_load_n(gen_page, __ATOMIC_ACQUIRE);
  if (g != 0) return g;
  fresh = __atomic_add_fetch(&gen_last, 1, __ATOMIC_RELAXED);
  if (__atomic_compare_exchange_n(gen_page, &g, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return fresh;
  return g;  /* another thread of this new process was first */
}

/* ---- Small pieces ------------------------------------------------------------------- */

static void lock(lmq_ready *r) { (void)pthread_mutex_lock(&r->mu); }
static void unlock(lmq_ready *r) { (void)pthread_mutex_unlock(&r->mu); }
/* Every access to the three fields read without the lock goes through these (the
 * valgrind suppressions for helgrind and drd, which do not model atomics, name them). */
static int load_state(const lmq_ready *r) { return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE); }
static void set_state(lmq_ready *r, int st) { __atomic_store_n(&r->state, st, __ATOMIC_RELEASE); }
static int is_stashed(const lmq_ready *r) { return __atomic_load_n(&r->stashed, __ATOMIC_ACQUIRE); }
static int is_gone(const lmq_ready *r) { return __atomic_load_n(&r->gone, __ATOMIC_ACQUIRE); }
static void set_gone(lmq_ready *r) { __atomic_store_n(&r->gone, 1, __ATOMIC_RELEASE); }

/* msgrcv's choice of a message, applied to one message of type `type` (always >= 1). */
static int selects(long msgtyp, int msgflg, long type) {
  if (msgtyp == 0) return 1;
  if (msgtyp < 0) return type <= (msgtyp == LONG_MIN ? LONG_MAX : -msgtyp);
  if (msgflg & MSG_EXCEPT) return type != msgtyp;
  return type == msgtyp;
}

/* Make the fd readable (under mu). A failed write could only be EBADF or a full
 * counter, neither possible while the engine holds the fd and keeps it at 0 or 1. */
static void signal_fd(lmq_ready *r) {
  uint64_t one = 1;
  if (r->signalled || r->efd < 0) return;
  if (write(r->efd, &one, sizeof one) == (ssize_t)sizeof one) r->signalled = 1;
}

/* Make the fd not readable (under mu). */
static void clear_fd(lmq_ready *r) {
  uint64_t v;
  if (!r->signalled) return;
  (void)read(r->efd, &v, sizeof v);  /* EAGAIN would mean it was already clear */
  r->signalled = 0;
}

static void stash_put(lmq_ready *r, long type) {
  r->stash_type = type;
  __atomic_store_n(&r->stashed, 1, __ATOMIC_RELEASE);
}

static void stash_clear(lmq_ready *r) {
  __atomic_store_n(&r->stashed, 0, __ATOMIC_RELEASE);
  r->stash_type = 0;
}

/* Put the stashed message back at the queue's tail (owner, under mu). 0 when the stash
 * is empty afterwards; -1 with errno while it still holds the message. */
static int put_back_locked(lmq_ready *r) {
  ready_msg m;
  int err;
  if (!is_stashed(r)) return 0;
  m.mtype = r->stash_type;
  m.mtext[0] = 0;
  if (msgsnd(r->qid, &m, 0, IPC_NOWAIT) == 0) {
    stash_clear(r);
    return 0;
  }
  err = errno;
  if (err == EIDRM || err == EINVAL) {
    /* The queue is gone, and every message it held with it. */
    stash_clear(r);
    set_gone(r);
    return 0;
  }
  errno = err;
  return -1;
}

static int make_fd(lmq_ready *r) {
  r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return r->efd < 0 ? -1 : 0;
}

/* Everything but qid to its initial state, sync objects made anew. 0 or an errno. */
static int reset(lmq_ready *r, int qid) {
  int rc;
  memset(r, 0, sizeof *r);
  r->qid = qid;
  r->efd = -1;
  r->gen = gen_now();
  rc = pthread_mutex_init(&r->mu, NULL);
  if (rc != 0) return rc;
  rc = pthread_cond_init(&r->cv, NULL);
  if (rc != 0) (void)pthread_mutex_destroy(&r->mu);
  return rc;
}

/* Owner: make sure the engine belongs to this process. In a forked child the parent's
 * copy is dropped without being read: its mutex may have been held at fork, its thread
 * does not exist here, its eventfd is the parent's (reading it would steal the parent's
 * wake-ups, and closing the number could close something the child has put there since)
 * and its stash holds the parent's message. 1, or 0 with errno. */
static int here(lmq_ready *r) {
  int rc;
  if (r->gen == gen_now()) return 1;
  rc = reset(r, r->qid);
  if (rc != 0) {
    r->gen = 0;  /* try again on the next call */
    errno = rc;
    return 0;
  }
  return 1;
}

/* ---- The helper thread -------------------------------------------------------------- */

static void helper_cancelled(void *arg) {
  lmq_ready *r = (lmq_ready *)arg;
  r->rescued = r->buf.mtype;  /* non-zero: msgrcv had removed a 0-byte message */
}

static ssize_t helper_msgrcv(lmq_ready *r, long typ, int flg, int *err) {
  ssize_t n;
  r->buf.mtype = 0;
  pthread_cleanup_push(helper_cancelled, r);
  (void)pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
  n = msgrcv(r->qid, &r->buf, 0, typ, flg);
  *err = errno;
  (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  pthread_cleanup_pop(0);
  return n;
}

static void *helper_main(void *arg) {
  lmq_ready *r = (lmq_ready *)arg;
  int parked = 0;                   /* named LMQ_READY_PARKED_NAME */
  (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
  (void)pthread_setname_np(pthread_self(), LMQ_READY_THREAD_NAME);  /* one prctl */
  lock(r);
  for (;;) {
    long typ;
    int flg, err = 0;
    ssize_t n;
    if (!parked && !r->stop && load_state(r) != ST_WAITING) {
      /* About to wait for a re-arm: the name says so (ps -L, the specs). Renamed outside
       * the lock, after the fd was signalled: nothing waits on it. */
      unlock(r);
      (void)pthread_setname_np(pthread_self(), LMQ_READY_PARKED_NAME);
      parked = 1;
      lock(r);
    }
    while (!r->stop && load_state(r) != ST_WAITING) (void)pthread_cond_wait(&r->cv, &r->mu);
    if (r->stop) break;
    typ = r->sel_typ;
    flg = r->sel_flg;
    unlock(r);
    if (parked) {
      (void)pthread_setname_np(pthread_self(), LMQ_READY_THREAD_NAME);
      parked = 0;
    }
    n = helper_msgrcv(r, typ, flg, &err);
    lock(r);
    if (n >= 0) {
      stash_put(r, r->buf.mtype);  /* a 0-byte message: it is ours now */
      set_state(r, ST_FIRED);
      signal_fd(r);
    } else if (err == E2BIG) {
      set_state(r, ST_FIRED);      /* a match is queued and stays there */
      signal_fd(r);
    } else if (err == EIDRM || err == EINVAL) {
      set_gone(r);
      set_state(r, ST_GONE);
      signal_fd(r);
      break;
    } else if (err != EINTR) {
      r->err = err;
      set_state(r, ST_FAILED);
      signal_fd(r);
      break;
    }
  }
  unlock(r);
  return NULL;
}

/* Start the helper in state WAITING (owner; no thread yet). 0 or an errno. */
static int start(lmq_ready *r) {
  pthread_attr_t attr;
  sigset_t all, old;
  size_t stack = LMQ_READY_STACK;
  long min = sysconf(_SC_THREAD_STACK_MIN);
  int rc;
  if (min > 0 && (size_t)min > stack) stack = (size_t)min;
  rc = pthread_attr_init(&attr);
  if (rc != 0) return rc;
  (void)pthread_attr_setstacksize(&attr, stack);  /* if refused, the default size */
  /* The thread inherits the creator's signal mask: block everything around the
   * creation (glibc leaves its cancel signal out), so the host's handlers always run
   * in the host's threads. */
  (void)sigfillset(&all);
  rc = pthread_sigmask(SIG_SETMASK, &all, &old);
  if (rc == 0) {
    r->stop = 0;
    set_state(r, ST_WAITING);
    rc = pthread_create(&r->thread, &attr, helper_main, r);
    /* A host with a large static TLS needs more than the small stack. */
    if (rc == EINVAL) rc = pthread_create(&r->thread, NULL, helper_main, r);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) set_state(r, ST_IDLE);
  }
  (void)pthread_attr_destroy(&attr);
  if (rc == 0) r->has_thread = 1;
  return rc;
}

/* Stop and join the helper, if any (owner, mu not held). Afterwards: no thread, the fd
 * clear, a message rescued from a cancelled msgrcv stashed, state IDLE, GONE or FAILED. */
static void halt(lmq_ready *r) {
  int st;
  if (!r->has_thread) return;
  lock(r);
  r->stop = 1;
  /* Only a WAITING helper can be in msgrcv; any other one is in pthread_cond_wait or
   * on its way out, where a cancel would never act (cancellation is disabled there). */
  if (load_state(r) == ST_WAITING) (void)pthread_cancel(r->thread);
  (void)pthread_cond_signal(&r->cv);
  unlock(r);
  (void)pthread_join(r->thread, NULL);
  r->has_thread = 0;
  lock(r);
  r->stop = 0;
  if (r->rescued != 0) {
    /* Cancelled in WAITING, so the stash was empty. */
    stash_put(r, r->rescued);
    r->rescued = 0;
    COUNT_RESCUE();
  }
  st = load_state(r);
  if (st != ST_GONE && st != ST_FAILED) set_state(r, ST_IDLE);
  clear_fd(r);
  unlock(r);
}

/* ---- The interface ------------------------------------------------------------------ */

/* lmq_ready_new(qid): an engine with its eventfd and no thread; NULL with errno. */
lmq_ready *lmq_ready_new(int qid) {
  lmq_ready *r = (lmq_ready *)malloc(sizeof *r);
  int rc;
  if (r == NULL) return NULL;
  rc = reset(r, qid);
  if (rc != 0) {
    free(r);
    errno = rc;
    return NULL;
  }
  if (make_fd(r) != 0) {
    rc = errno;
    (void)pthread_cond_destroy(&r->cv);
    (void)pthread_mutex_destroy(&r->mu);
    free(r);
    errno = rc;
    return NULL;
  }
  return r;
}

/* lmq_ready_fd(r): the fd to poll, made on demand in a forked child; -1 with errno. */
int lmq_ready_fd(lmq_ready *r) {
  if (!here(r)) return -1;
  if (r->efd < 0 && make_fd(r) != 0) return -1;
  return r->efd;
}

/* lmq_ready_arm(r, msgtyp, msgflg): make the fd readable when a match is there. */
int lmq_ready_arm(lmq_ready *r, long msgtyp, int msgflg) {
  int st, err;
  if ((msgflg & ~MSG_EXCEPT) != 0) {
    errno = EINVAL;
    return -1;
  }
  if (msgtyp <= 0) msgflg = 0;  /* msgrcv ignores MSG_EXCEPT there: one key per selector */
  if (!here(r)) return -1;
  if (r->efd < 0 && make_fd(r) != 0) return -1;

  /* Fast path: already waiting on this selector. If the helper fires meanwhile, the fd
   * is readable, which is all the caller needs. */
  if (r->has_thread && r->sel_typ == msgtyp && r->sel_flg == msgflg &&
      load_state(r) == ST_WAITING)
    return 0;

  lock(r);
  st = load_state(r);
  if (r->has_thread && (st == ST_GONE || st == ST_FAILED ||
                        (st == ST_WAITING && (r->sel_typ != msgtyp || r->sel_flg != msgflg)))) {
    /* An exited helper to join, or one in msgrcv on another selector to interrupt. */
    unlock(r);
    halt(r);
    lock(r);
    st = load_state(r);
  }
  if (is_gone(r)) {
    signal_fd(r);  /* level: the caller's receive reports the removal */
    unlock(r);
    return 0;
  }
  if (st == ST_FAILED) {
    err = r->err;
    set_state(r, ST_IDLE);  /* report once; the next arm tries again */
    clear_fd(r);
    unlock(r);
    errno = err;
    return -1;
  }
  if (is_stashed(r)) {
    if (selects(msgtyp, msgflg, r->stash_type)) {
      /* A match is here already: readable, and no helper waits (WAITING needs an
       * empty stash). A parked helper stays parked. */
      r->sel_typ = msgtyp;
      r->sel_flg = msgflg;
      signal_fd(r);
      unlock(r);
      return 0;
    }
    if (put_back_locked(r) != 0) {
      err = errno;
      clear_fd(r);
      unlock(r);
      errno = err;  /* poll for now; the next arm or put_back tries again */
      return -1;
    }
    if (is_gone(r)) {
      signal_fd(r);
      unlock(r);
      return 0;
    }
  }
  if (r->has_thread && st == ST_WAITING) {  /* same selector, raced with the fast path */
    unlock(r);
    return 0;
  }
  r->sel_typ = msgtyp;
  r->sel_flg = msgflg;
  clear_fd(r);
  if (r->has_thread) {  /* parked in FIRED: wake it to wait again */
    set_state(r, ST_WAITING);
    (void)pthread_cond_signal(&r->cv);
    unlock(r);
    return 0;
  }
  unlock(r);
  err = start(r);
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

/* lmq_ready_gone(r): 1 once the helper saw the queue removed. */
int lmq_ready_gone(const lmq_ready *r) {
  if (r->gen != gen_now()) return 0;  /* the parent's knowledge; a child finds out anew */
  return is_gone(r);
}

/* lmq_ready_take(r, msgtyp, msgflg, &mtype): hand over a matching stashed message. */
int lmq_ready_take(lmq_ready *r, long msgtyp, int msgflg, long *mtype) {
  int got = 0;
  if (!here(r)) return 0;
  if (!is_stashed(r)) return 0;
  lock(r);
  if (is_stashed(r) &&
      selects(msgtyp, msgflg & MSG_EXCEPT, r->stash_type)) {
    *mtype = r->stash_type;
    stash_clear(r);
    got = 1;
  }
  unlock(r);
  return got;
}

/* lmq_ready_pending(r): whether a message is stashed (one atomic load). */
int lmq_ready_pending(const lmq_ready *r) {
  if (r->gen != gen_now()) return 0;  /* a child never sees the parent's stash */
  return is_stashed(r);
}

/* lmq_ready_put_back(r): the stashed message back into the queue. */
int lmq_ready_put_back(lmq_ready *r) {
  int rc, err;
  if (!here(r)) return -1;
  if (!is_stashed(r)) return 0;
  lock(r);
  rc = put_back_locked(r);
  err = errno;
  unlock(r);
  errno = err;
  return rc;
}

/* lmq_ready_stop(r): join the helper, put back a stashed message, leave the fd clear. */
void lmq_ready_stop(lmq_ready *r) {
  if (!here(r)) return;
  halt(r);
  lock(r);
  (void)put_back_locked(r);  /* on failure it stays stashed for lmq_ready_take */
  clear_fd(r);
  unlock(r);
}

/* lmq_ready_park(r): stop taking messages but keep a helper that fired, parked, for the next
 * arm; a helper still in msgrcv is stopped (cancel and join). Put back, fd clear. */
void lmq_ready_park(lmq_ready *r) {
  if (!here(r)) return;
  if (r->has_thread && load_state(r) != ST_FIRED) halt(r);
  lock(r);
  (void)put_back_locked(r);  /* on failure it stays stashed for lmq_ready_take */
  clear_fd(r);
  unlock(r);
}

/* lmq_ready_release(r): join the helper, put back a stashed message, leave the fd readable. */
void lmq_ready_release(lmq_ready *r) {
  if (!here(r)) return;
  halt(r);
  lock(r);
  (void)put_back_locked(r);  /* on failure it stays stashed; lmq_ready_free tries again */
  if (r->efd < 0) (void)make_fd(r);
  signal_fd(r);
  unlock(r);
}

/* lmq_ready_free(r): stop, put back, close, free. -1 with errno if a message was dropped. */
int lmq_ready_free(lmq_ready *r) {
  int rc, err = 0;
  if (r == NULL) return 0;
  if (r->gen != gen_now()) {
    /* Inherited through fork and never used here: nothing of it is ours but memory. */
    free(r);
    return 0;
  }
  halt(r);
  lock(r);
  rc = put_back_locked(r);
  if (rc != 0) {
    err = errno;
    stash_clear(r);  /* nobody is left to hand it to */
  }
  unlock(r);
  if (r->efd >= 0) (void)close(r->efd);
  (void)pthread_cond_destroy(&r->cv);
  (void)pthread_mutex_destroy(&r->mu);
  free(r);
  if (rc != 0) {
    errno = err;
    return -1;
  }
  return 0;
}
