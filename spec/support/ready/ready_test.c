/*
 * ready_test: the readiness engine (csrc/ready.c) against real System V queues.
 * Built with -DLMQ_READY_TEST (for the rescue counter) by spec/support/ready/run,
 * plain and under ThreadSanitizer, ASan+UBSan and valgrind.
 *
 *   ready_test [name...]     run the named tests (default: all)
 *
 * Every queue is IPC_PRIVATE, recorded, and removed at exit (atexit), also when a
 * check fails. Forked children leave with _exit so that they never remove them.
 * READY_STRESS_MS sets the stress test's duration (default 1500).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ready.h"

#define MAXQ 64
static int queues[MAXQ];
static int nqueues;
static pid_t main_pid;

static void remove_queues(void) {
  int i;
  if (getpid() != main_pid) return;  /* a child must never remove the parent's queues */
  for (i = 0; i < nqueues; i++)
    if (queues[i] >= 0) (void)msgctl(queues[i], IPC_RMID, NULL);
  nqueues = 0;
}

static int new_queue(void) {
  int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  if (id < 0) {
    perror("msgget");
    exit(2);
  }
  if (nqueues == MAXQ) {
    (void)msgctl(id, IPC_RMID, NULL);
    fprintf(stderr, "too many queues\n");
    exit(2);
  }
  queues[nqueues++] = id;
  return id;
}

static void drop_queue(int id) {
  int i;
  (void)msgctl(id, IPC_RMID, NULL);
  for (i = 0; i < nqueues; i++)
    if (queues[i] == id) queues[i] = -1;
}

static int failures;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
      failures++;                                                          \
      return 1;                                                            \
    }                                                                      \
  } while (0)

static int64_t now_us(void) {
  struct timespec ts;
  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* READY_TIME_SCALE (default 1) stretches the time limits for slow tools (valgrind,
 * sanitizers); the plain build is held to the limits as written. */
static int64_t time_scale(void) {
  const char *env = getenv("READY_TIME_SCALE");
  long v = env ? strtol(env, NULL, 10) : 1;
  return v >= 1 && v <= 1000 ? (int64_t)v : 1;
}

static void sleep_ms(int ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* 1 when fd becomes readable within ms milliseconds. */
static int readable(int fd, int ms) {
  struct pollfd p;
  int n;
  p.fd = fd;
  p.events = POLLIN;
  p.revents = 0;
  do n = poll(&p, 1, ms); while (n < 0 && errno == EINTR);
  return n == 1 && (p.revents & POLLIN);
}

typedef struct tmsg {
  long mtype;
  char mtext[64];
} tmsg;

static int send_msg(int q, long type, const char *text) {
  tmsg m;
  size_t len = text ? strlen(text) : 0;
  m.mtype = type;
  if (len) memcpy(m.mtext, text, len);
  return msgsnd(q, &m, len, IPC_NOWAIT);
}

/* msgrcv IPC_NOWAIT: length, or -1 (errno). */
static ssize_t recv_now(int q, long type, int flg, long *mtype) {
  tmsg m;
  ssize_t n = msgrcv(q, &m, sizeof m.mtext, type, flg | IPC_NOWAIT);
  if (n >= 0 && mtype) *mtype = m.mtype;
  return n;
}

static long qnum(int q) {
  struct msqid_ds ds;
  if (msgctl(q, IPC_STAT, &ds) != 0) return -1;
  return (long)ds.msg_qnum;
}

/* Give the helper time to reach its blocking msgrcv. */
static void settle(void) { sleep_ms(20); }

/* ---- tests ------------------------------------------------------------------------- */

static int t_nonempty(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  long t;
  int fd;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(fd >= 0);
  CHECK(!readable(fd, 0));
  CHECK(lmq_ready_arm(r, 0, 0) == 0);
  CHECK(!readable(fd, 30));
  CHECK(send_msg(q, 4, "hello") == 0);
  CHECK(readable(fd, 1000));
  CHECK(qnum(q) == 1);                 /* still queued */
  CHECK(!lmq_ready_pending(r));
  CHECK(recv_now(q, 0, 0, &t) == 5 && t == 4);
  CHECK(readable(fd, 0));              /* level until re-armed */
  CHECK(lmq_ready_arm(r, 0, 0) == 0);  /* re-arm: nothing there, so not readable */
  CHECK(!readable(fd, 30));
  CHECK(lmq_ready_free(r) == 0);
  return 0;
}

static int t_zero_byte(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  long t = 0;
  int fd;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 0, 0) == 0);
  settle();
  CHECK(send_msg(q, 7, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(qnum(q) == 0);                   /* the helper's msgrcv took it ... */
  CHECK(lmq_ready_pending(r));           /* ... into the stash */
  CHECK(lmq_ready_take(r, 3, 0, &t) == 0);
  CHECK(lmq_ready_take(r, -6, 0, &t) == 0);
  CHECK(lmq_ready_take(r, 7, MSG_EXCEPT, &t) == 0);
  CHECK(lmq_ready_take(r, -7, 0, &t) == 1 && t == 7);
  CHECK(lmq_ready_take(r, 0, 0, &t) == 0);  /* exactly once */
  CHECK(!lmq_ready_pending(r));

  /* Not taken: free puts it back. */
  CHECK(lmq_ready_arm(r, 0, 0) == 0);
  CHECK(!readable(fd, 20));
  CHECK(send_msg(q, 8, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) && qnum(q) == 0);
  CHECK(lmq_ready_free(r) == 0);
  CHECK(recv_now(q, 0, 0, &t) == 0 && t == 8);
  CHECK(qnum(q) == 0);

  /* Not taken: stop puts it back too, and leaves the fd clear. */
  r = lmq_ready_new(q);
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 9, 0) == 0);
  CHECK(send_msg(q, 9, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r));
  lmq_ready_stop(r);
  CHECK(!lmq_ready_pending(r));
  CHECK(!readable(fd, 0));
  CHECK(qnum(q) == 1);
  /* Arming again takes it again, and a matching stash keeps the fd readable. */
  CHECK(lmq_ready_arm(r, 9, 0) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) && qnum(q) == 0);
  CHECK(lmq_ready_arm(r, 9, 0) == 0);
  CHECK(readable(fd, 0));
  /* A selector the stash does not match: put back, then waited for. */
  CHECK(lmq_ready_arm(r, 10, 0) == 0);
  CHECK(!lmq_ready_pending(r) && qnum(q) == 1);
  CHECK(!readable(fd, 20));
  /* put_back for a receive of another selector. */
  CHECK(lmq_ready_arm(r, 9, 0) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r));
  CHECK(lmq_ready_put_back(r) == 0);
  CHECK(!lmq_ready_pending(r) && qnum(q) == 1);
  CHECK(lmq_ready_put_back(r) == 0);     /* nothing stashed: nothing to do */
  CHECK(lmq_ready_free(r) == 0);
  CHECK(recv_now(q, 0, 0, &t) == 0 && t == 9);
  return 0;
}

/* Put-back fails when the queue holds as many messages as its byte capacity. */
static int t_put_back_full(void) {
  int q = new_queue();
  struct msqid_ds ds;
  lmq_ready *r;
  long t = 0;
  int fd;
  CHECK(msgctl(q, IPC_STAT, &ds) == 0);
  ds.msg_qbytes = 2;  /* lowering needs no privilege */
  CHECK(msgctl(q, IPC_SET, &ds) == 0);
  r = lmq_ready_new(q);
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 0, 0) == 0);
  CHECK(send_msg(q, 1, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r));
  /* The helper is parked (FIRED): these stay queued. */
  CHECK(send_msg(q, 2, NULL) == 0);
  CHECK(send_msg(q, 3, NULL) == 0);
  CHECK(send_msg(q, 4, NULL) == -1 && errno == EAGAIN);
  CHECK(lmq_ready_put_back(r) == -1 && errno == EAGAIN);
  CHECK(lmq_ready_pending(r));
  CHECK(lmq_ready_arm(r, 5, 0) == -1 && errno == EAGAIN);  /* cannot wait for 5 yet */
  lmq_ready_stop(r);
  CHECK(lmq_ready_pending(r));           /* kept, still deliverable */
  CHECK(recv_now(q, 2, 0, &t) == 0);     /* room for one */
  CHECK(lmq_ready_put_back(r) == 0);
  CHECK(!lmq_ready_pending(r) && qnum(q) == 2);
  /* free with a full queue: the message is dropped, and free says so. */
  CHECK(recv_now(q, 1, 0, &t) == 0);
  CHECK(lmq_ready_arm(r, 3, 0) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) && qnum(q) == 0);
  CHECK(send_msg(q, 5, NULL) == 0 && send_msg(q, 6, NULL) == 0);
  errno = 0;
  CHECK(lmq_ready_free(r) == -1 && errno == EAGAIN);
  CHECK(qnum(q) == 2);
  return 0;
}

static int t_removed(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  int fd;
  int64_t t0;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  settle();
  CHECK(!lmq_ready_gone(r));
  t0 = now_us();
  drop_queue(q);
  CHECK(readable(fd, 1000));
  CHECK(now_us() - t0 < 100000 * time_scale());
  CHECK(lmq_ready_gone(r));
  CHECK(lmq_ready_arm(r, 1, 0) == 0);   /* stays readable after arming again */
  CHECK(readable(fd, 0));
  lmq_ready_stop(r);
  CHECK(!readable(fd, 0));
  CHECK(lmq_ready_arm(r, 2, 0) == 0);
  CHECK(readable(fd, 0));
  CHECK(lmq_ready_free(r) == 0);
  return 0;
}

static int t_retarget(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  int fd, i;
  int64_t t0, dt, worst = 0;
  long t;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  for (i = 0; i < 20; i++) {
    CHECK(lmq_ready_arm(r, 1 + (i & 1), 0) == 0);
    settle();
    t0 = now_us();
    CHECK(lmq_ready_arm(r, 2 - (i & 1), 0) == 0);  /* interrupt the blocked msgrcv */
    dt = now_us() - t0;
    if (dt > worst) worst = dt;
  }
  printf("  retarget of a blocked helper: worst %lld us of 20\n", (long long)worst);
  CHECK(worst < 10000 * time_scale());
  CHECK(lmq_ready_fd(r) == fd);          /* the same fd throughout */
  /* Now on type 1 (i = 19 ended with 2 - 1). Type 2 must not fire, 0-byte or not. */
  CHECK(send_msg(q, 2, "x") == 0);
  CHECK(send_msg(q, 2, NULL) == 0);
  CHECK(!readable(fd, 50));
  CHECK(qnum(q) == 2);
  CHECK(send_msg(q, 1, "y") == 0);
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 1, 0, &t) == 1);
  /* Retarget while parked (FIRED): no cancel needed, and the old selector's fire
   * is cleared; then type 2 is there already, so it fires again at once. */
  CHECK(lmq_ready_arm(r, 3, 0) == 0);
  CHECK(!readable(fd, 30));
  CHECK(lmq_ready_arm(r, 2, 0) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) || qnum(q) == 2);
  /* free while blocked returns promptly */
  CHECK(!lmq_ready_pending(r));         /* the sized type 2 came first: E2BIG */
  CHECK(lmq_ready_arm(r, 9, 0) == 0);
  settle();
  t0 = now_us();
  CHECK(lmq_ready_free(r) == 0);
  dt = now_us() - t0;
  printf("  free of a blocked helper: %lld us\n", (long long)dt);
  CHECK(dt < 10000 * time_scale());
  CHECK(qnum(q) == 2);
  return 0;
}

/* Level semantics and re-arming after someone else took the message. */
static int t_rearm(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  int fd, i;
  int64_t t0, dt;
  long t;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(send_msg(q, 1, "a") == 0 && send_msg(q, 1, "b") == 0);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 1, 0, &t) == 1);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);   /* one still queued: fires again */
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 1, 0, &t) == 1);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  CHECK(!readable(fd, 30));
  /* The fd fired, but another consumer took the message first. */
  CHECK(send_msg(q, 1, "c") == 0);
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 1, 0, &t) == 1);     /* "someone else" */
  CHECK(recv_now(q, 1, 0, &t) == -1 && errno == ENOMSG);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  CHECK(!readable(fd, 30));
  CHECK(send_msg(q, 1, "d") == 0);
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 1, 0, &t) == 1);
  /* Arming on the selector it already waits on costs no system call. */
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  settle();
  t0 = now_us();
  for (i = 0; i < 100000; i++) (void)lmq_ready_arm(r, 1, 0);
  dt = now_us() - t0;
  printf("  arm while already waiting: %.1f ns a call\n", (double)dt * 1000.0 / 100000);
  CHECK(!readable(fd, 0));
  CHECK(lmq_ready_free(r) == 0);
  return 0;
}

static int t_selectors(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  int fd;
  long t = 0;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 5, MSG_EXCEPT) == 0);
  CHECK(send_msg(q, 5, "x") == 0);
  CHECK(send_msg(q, 5, NULL) == 0);
  CHECK(!readable(fd, 50));
  CHECK(qnum(q) == 2);
  CHECK(send_msg(q, 6, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) && qnum(q) == 2);
  CHECK(lmq_ready_take(r, 6, MSG_EXCEPT, &t) == 0);
  CHECK(lmq_ready_take(r, 5, MSG_EXCEPT | IPC_NOWAIT, &t) == 1 && t == 6);
  CHECK(recv_now(q, 5, 0, &t) == 1);    /* the sized type 5, then the 0-byte one */
  CHECK(recv_now(q, 5, 0, &t) == 0);
  /* Negative: the lowest type <= -msgtyp. */
  CHECK(lmq_ready_arm(r, -3, 0) == 0);
  CHECK(send_msg(q, 4, "x") == 0);
  CHECK(!readable(fd, 50));
  CHECK(send_msg(q, 3, "y") == 0);
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, -3, 0, &t) == 1 && t == 3);
  /* MSG_EXCEPT means nothing with msgtyp <= 0, as in msgrcv: the same selector. */
  CHECK(lmq_ready_arm(r, -3, MSG_EXCEPT) == 0);
  CHECK(!readable(fd, 30));
  CHECK(lmq_ready_arm(r, 1, MSG_NOERROR) == -1 && errno == EINVAL);
  CHECK(lmq_ready_arm(r, LONG_MIN, 0) == 0);  /* -LONG_MIN: any type, as the kernel does */
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 0, 0, &t) == 1 && t == 4);
  CHECK(lmq_ready_free(r) == 0);
  return 0;
}

/* Helper threads block every signal: a process-directed signal reaches this thread. */
static volatile sig_atomic_t sig_tid;
static void on_usr1(int signo) {
  (void)signo;
  sig_tid = (sig_atomic_t)syscall(SYS_gettid);
}

/* How many threads of this process other than the caller block every signal that can
 * be blocked (all but SIGKILL and SIGSTOP, and glibc's internal 32 and 33), from
 * /proc/self/task. */
static int helpers_blocking_all(int *others) {
  char path[300], line[256];
  long self = (long)syscall(SYS_gettid);
  int n = 0;
  struct dirent *e;
  DIR *d = opendir("/proc/self/task");
  *others = 0;
  if (d == NULL) return -1;
  while ((e = readdir(d)) != NULL) {
    FILE *f;
    if (e->d_name[0] == '.' || strtol(e->d_name, NULL, 10) == self) continue;
    (*others)++;
    (void)snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    f = fopen(path, "r");
    if (f == NULL) continue;
    while (fgets(line, sizeof line, f) != NULL)
      if (strncmp(line, "SigBlk:\tfffffffe7ffbfeff", 24) == 0) n++;
    (void)fclose(f);
  }
  (void)closedir(d);
  return n;
}

static int t_signals(void) {
  int q = new_queue();
  lmq_ready *r[4];
  struct sigaction sa, old;
  int i, others;
  for (i = 0; i < 4; i++) {
    r[i] = lmq_ready_new(q);
    CHECK(r[i] != NULL);
    CHECK(lmq_ready_arm(r[i], i + 1, 0) == 0);
  }
  settle();
  /* valgrind keeps the threads' real masks to itself: READY_NO_PROC_SIGMASK=1 there. */
  if (getenv("READY_NO_PROC_SIGMASK") == NULL) {
    i = helpers_blocking_all(&others);
    if (!(i >= 4 && i == others)) {  /* ThreadSanitizer adds one of its own, which does too */
      for (i = 0; i < 4; i++) (void)lmq_ready_free(r[i]);
      CHECK(!"every helper blocks every signal");
    }
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  (void)sigemptyset(&sa.sa_mask);
  CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
  for (i = 0; i < 20; i++) {
    sig_tid = 0;
    CHECK(kill(getpid(), SIGUSR1) == 0);
    while (sig_tid == 0) sleep_ms(1);
    CHECK(sig_tid == (sig_atomic_t)syscall(SYS_gettid));
  }
  CHECK(sigaction(SIGUSR1, &old, NULL) == 0);
  for (i = 0; i < 4; i++) CHECK(lmq_ready_free(r[i]) == 0);
  return 0;
}

static int wait_child(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Permissions: a helper whose msgrcv is refused reports it (arm says EACCES), and a
 * stashed message that may not be written back stays stashed for the owner. Run in a
 * child as an unprivileged user when we are root (root bypasses the queue's mode). */
static int denied_child(int q_wo, int q_ro) {
  lmq_ready *r;
  long t = 0;
  int fd;
  if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 1;
  r = lmq_ready_new(q_wo);              /* write-only for us: msgrcv fails */
  if (r == NULL) return 2;
  fd = lmq_ready_fd(r);
  if (lmq_ready_arm(r, 0, 0) != 0) return 3;
  if (!readable(fd, 2000)) return 4;
  if (lmq_ready_arm(r, 0, 0) != -1 || errno != EACCES) return 5;
  if (lmq_ready_free(r) != 0) return 6;
  r = lmq_ready_new(q_ro);              /* read-only for us: no put-back */
  if (r == NULL) return 7;
  fd = lmq_ready_fd(r);
  if (lmq_ready_arm(r, 0, 0) != 0) return 8;
  if (!readable(fd, 5000)) return 9;    /* the parent sends a 0-byte message */
  if (!lmq_ready_pending(r)) return 10;
  if (lmq_ready_put_back(r) != -1 || errno != EACCES) return 11;
  lmq_ready_stop(r);
  if (!lmq_ready_pending(r)) return 12;  /* kept for us */
  if (lmq_ready_arm(r, 2, 0) != -1 || errno != EACCES) return 13;  /* 1 != 2: cannot return it */
  if (lmq_ready_take(r, 1, 0, &t) != 1 || t != 1) return 14;
  if (lmq_ready_arm(r, 0, 0) != 0) return 15;
  if (!readable(fd, 5000)) return 16;   /* a second one */
  errno = 0;
  if (lmq_ready_free(r) != -1 || errno != EACCES) return 17;  /* dropped, and said so */
  return 0;
}

static int t_denied(void) {
  int q_wo = new_queue(), q_ro = new_queue(), rc;
  struct msqid_ds ds;
  pid_t pid;
  CHECK(msgctl(q_wo, IPC_STAT, &ds) == 0);
  ds.msg_perm.mode = geteuid() == 0 ? 0222 : 0200;
  CHECK(msgctl(q_wo, IPC_SET, &ds) == 0);
  CHECK(msgctl(q_ro, IPC_STAT, &ds) == 0);
  ds.msg_perm.mode = geteuid() == 0 ? 0444 : 0400;
  CHECK(msgctl(q_ro, IPC_SET, &ds) == 0);
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) _exit(denied_child(q_wo, q_ro));
  sleep_ms(100);
  CHECK(send_msg(q_ro, 1, NULL) == 0);
  for (rc = 0; rc < 1000 && qnum(q_ro) != 0; rc++) sleep_ms(5);  /* the child's helper took it */
  sleep_ms(100);
  CHECK(send_msg(q_ro, 1, NULL) == 0);
  rc = wait_child(pid);
  if (rc != 0) fprintf(stderr, "  child exited %d\n", rc);
  CHECK(rc == 0);
  CHECK(qnum(q_ro) == 0 && qnum(q_wo) == 0);
  return 0;
}

/* ---- fork -------------------------------------------------------------------------- */


static int t_fork_arm(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  int fd, go[2], ok[2], rc;
  pid_t pid;
  char c;
  long t = 0;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(pipe(go) == 0);
  CHECK(pipe(ok) == 0);

  /* 1. Parent armed on type 1 and fired; the child arms the inherited engine on 2. */
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  CHECK(send_msg(q, 1, "p") == 0);
  CHECK(readable(fd, 1000));
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int cfd;
    close(go[1]);
    close(ok[0]);
    if (lmq_ready_pending(r) || lmq_ready_gone(r)) _exit(1);
    cfd = lmq_ready_fd(r);
    if (cfd < 0 || cfd == fd) _exit(2);          /* its own eventfd, a new number */
    if (readable(cfd, 0)) _exit(3);
    if (lmq_ready_arm(r, 2, 0) != 0) _exit(4);
    if (readable(cfd, 50)) _exit(5);             /* type 1 is queued, but not ours */
    if (write(ok[1], "k", 1) != 1) _exit(11);
    if (read(go[0], &c, 1) != 1) _exit(6);       /* the parent sent type 2 */
    if (!readable(cfd, 2000)) _exit(7);
    if (recv_now(q, 2, 0, NULL) != 1) _exit(8);
    if (lmq_ready_arm(r, 2, 0) != 0 || readable(cfd, 30)) _exit(9);
    if (lmq_ready_free(r) != 0) _exit(10);       /* joins the child's own helper */
    _exit(0);
  }
  close(go[0]);
  close(ok[1]);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);   /* still fired, message still there */
  CHECK(read(ok[0], &c, 1) == 1);        /* the child is armed on type 2 */
  close(ok[0]);
  CHECK(send_msg(q, 2, "c") == 0);
  CHECK(write(go[1], "g", 1) == 1);
  close(go[1]);
  rc = wait_child(pid);
  if (rc != 0) fprintf(stderr, "  child 1 exited %d\n", rc);
  CHECK(rc == 0);
  CHECK(readable(fd, 0));                /* the child did not steal the parent's wake-up */
  CHECK(recv_now(q, 1, 0, &t) == 1);
  CHECK(lmq_ready_arm(r, 1, 0) == 0);
  CHECK(!readable(fd, 30));
  CHECK(send_msg(q, 1, "p2") == 0);      /* the parent's helper still works */
  CHECK(readable(fd, 1000));
  CHECK(recv_now(q, 1, 0, &t) == 2);

  /* 3. The child arms the inherited engine, which holds the parent's stash: the child
   * sees no stash, takes nothing of the parent's, and its free puts back only its own. */
  CHECK(lmq_ready_arm(r, 4, 0) == 0);
  CHECK(send_msg(q, 4, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r));
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    long ct = 0;
    int cfd;
    if (lmq_ready_take(r, 0, 0, &ct) != 0) _exit(1);
    if (lmq_ready_arm(r, 6, 0) != 0) _exit(2);
    cfd = lmq_ready_fd(r);
    if (cfd < 0 || cfd == fd) _exit(3);
    if (send_msg(q, 6, NULL) != 0) _exit(4);
    if (!readable(cfd, 2000)) _exit(5);
    if (!lmq_ready_pending(r)) _exit(6);
    if (lmq_ready_free(r) != 0) _exit(7);        /* puts the child's type 6 back */
    _exit(0);
  }
  rc = wait_child(pid);
  if (rc != 0) fprintf(stderr, "  child 3 exited %d\n", rc);
  CHECK(rc == 0);
  CHECK(lmq_ready_pending(r));
  CHECK(recv_now(q, 0, 0, &t) == 0 && t == 6 && qnum(q) == 0);
  CHECK(lmq_ready_free(r) == 0);         /* puts the parent's type 4 back */
  CHECK(recv_now(q, 0, 0, &t) == 0 && t == 4 && qnum(q) == 0);
  return 0;
}

/* The parent holds a stashed 0-byte message at fork; the child frees the inherited
 * engine without using it: no join, no put-back, no read of the parent's eventfd.
 * (No thread is started in the child, so this one runs under ThreadSanitizer too.) */
static int t_fork_free(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q), *r2;
  int fd, rc;
  pid_t pid;
  long t = 0;
  uint64_t v;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 3, 0) == 0);
  CHECK(send_msg(q, 3, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) && qnum(q) == 0);
  r2 = lmq_ready_new(q);                 /* and one blocked in msgrcv at fork */
  CHECK(r2 != NULL);
  CHECK(lmq_ready_arm(r2, 5, 0) == 0);
  settle();
  pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    int64_t t0 = now_us();
    if (lmq_ready_pending(r) || lmq_ready_gone(r2)) _exit(1);
    if (lmq_ready_free(r) != 0) _exit(2);
    lmq_ready_stop(r2);                  /* no parent's thread to cancel or join here */
    if (lmq_ready_free(r2) != 0) _exit(4);
    if (now_us() - t0 > 100000 * time_scale()) _exit(5);
    _exit(qnum(q) == 0 ? 0 : 3);
  }
  rc = wait_child(pid);
  if (rc != 0) fprintf(stderr, "  child exited %d\n", rc);
  CHECK(rc == 0);
  CHECK(qnum(q) == 0);
  CHECK(send_msg(q, 5, "x") == 0);       /* the parent's blocked helper still works */
  CHECK(readable(lmq_ready_fd(r2), 1000));
  CHECK(lmq_ready_free(r2) == 0);
  CHECK(recv_now(q, 5, 0, &t) == 1);
  CHECK(read(fd, &v, sizeof v) == (ssize_t)sizeof v && v == 1);  /* untouched count */
  CHECK(lmq_ready_take(r, 3, 0, &t) == 1 && t == 3);
  CHECK(lmq_ready_take(r, 0, 0, &t) == 0);

  CHECK(lmq_ready_free(r) == 0);
  CHECK(qnum(q) == 0);
  return 0;
}

/* ---- stress: no message lost or duplicated --------------------------------------- */

/* READY_STRESS_MS, default 1500, in microseconds. */
static int64_t stress_us(void) {
  const char *env = getenv("READY_STRESS_MS");
  char *end = NULL;
  long ms = env ? strtol(env, &end, 10) : 1500;
  if (env && (end == env || *end != '\0' || ms <= 0)) ms = 1500;
  return (int64_t)ms * 1000;
}

#define NTYPES 3
#define MAXID 400000
static unsigned char seen[MAXID];
static long zero_sent[NTYPES + 1], zero_got[NTYPES + 1];
static int stress_q;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static int stress_stop;  /* under stop_mu (plain locking, so helgrind and drd follow it too) */
static int sent_ids[2];

static int stopping(void) {
  int s;
  (void)pthread_mutex_lock(&stop_mu);
  s = stress_stop;
  (void)pthread_mutex_unlock(&stop_mu);
  return s;
}

static void set_stopping(int v) {
  (void)pthread_mutex_lock(&stop_mu);
  stress_stop = v;
  (void)pthread_mutex_unlock(&stop_mu);
}

typedef struct sender_arg {
  int index;
  unsigned seed;
  long zero[NTYPES + 1];
  int ids;
} sender_arg;

/* Sends until told to stop; IPC_NOWAIT, so that it never blocks on a full queue. */
static void *sender(void *arg) {
  sender_arg *a = (sender_arg *)arg;
  tmsg m;
  int id = a->index;  /* ids: index, index + 2, ... */
  while (!stopping() && id < MAXID) {
    long type = 1 + (long)(rand_r(&a->seed) % NTYPES);
    int zero = rand_r(&a->seed) % 2;
    m.mtype = type;
    if (zero) {
      if (msgsnd(stress_q, &m, 0, IPC_NOWAIT) == 0) a->zero[type]++;
    } else {
      memcpy(m.mtext, &id, sizeof id);
      if (msgsnd(stress_q, &m, sizeof id, IPC_NOWAIT) == 0) {
        a->ids++;
        id += 2;
      }
    }
    if (rand_r(&a->seed) % 64 == 0) sched_yield();
  }
  return NULL;
}

static int count_msg(ssize_t n, const tmsg *m) {
  int id;
  if (n == 0) {
    if (m->mtype < 1 || m->mtype > NTYPES) return 1;
    zero_got[m->mtype]++;
    return 0;
  }
  if (n != (ssize_t)sizeof id) return 1;
  memcpy(&id, m->mtext, sizeof id);
  if (id < 0 || id >= MAXID || seen[id]) {
    fprintf(stderr, "  duplicate or bad id %d\n", id);
    return 1;
  }
  seen[id] = 1;
  return 0;
}

static int t_stress(void) {
  static const long sels[][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {-2, 0}, {2, MSG_EXCEPT}, {7, 0}};
  const int nsels = (int)(sizeof sels / sizeof sels[0]);
  int64_t dur = stress_us(), end;
  pthread_t th[2];
  sender_arg sa[2];
  lmq_ready *r;
  unsigned seed = 12345;
  long ops = 0, takes = 0, rcvs = 0, fires = 0, arms = 0, retargets = 0, stops = 0;
  unsigned long rescues0 = lmq_ready_test_rescues();
  int i, fd, bad = 0;
  tmsg m;
  ssize_t n;
  long t;

  stress_q = new_queue();
  memset(seen, 0, sizeof seen);
  memset(zero_got, 0, sizeof zero_got);
  memset(zero_sent, 0, sizeof zero_sent);
  set_stopping(0);
  r = lmq_ready_new(stress_q);
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  for (i = 0; i < 2; i++) {
    memset(&sa[i], 0, sizeof sa[i]);
    sa[i].index = i;
    sa[i].seed = 777u + (unsigned)i;
    CHECK(pthread_create(&th[i], NULL, sender, &sa[i]) == 0);
  }
  end = now_us() + dur;
  while (now_us() < end && !bad) {
    int op = rand_r(&seed) % 16;
    const long *s = sels[rand_r(&seed) % nsels];
    ops++;
    if (op < 5) {                               /* arm, often on a new selector */
      arms++;
      if (lmq_ready_arm(r, s[0], (int)s[1]) == 0 && readable(fd, rand_r(&seed) % 2)) fires++;
    } else if (op < 8) {                        /* retarget back and forth at once */
      retargets++;
      (void)lmq_ready_arm(r, 1, 0);
      (void)lmq_ready_arm(r, 2, 0);
      (void)lmq_ready_arm(r, 3, 0);
    } else if (op < 9) {
      stops++;
      lmq_ready_stop(r);
    } else if (op < 14) {                       /* a receive as the binding would do it */
      if (lmq_ready_pending(r)) {
        if (lmq_ready_take(r, s[0], (int)s[1], &t)) {
          takes++;
          m.mtype = t;
          bad |= count_msg(0, &m);
          continue;
        }
        (void)lmq_ready_put_back(r);
      }
      n = msgrcv(stress_q, &m, sizeof m.mtext, s[0], (int)s[1] | IPC_NOWAIT);
      if (n >= 0) {
        rcvs++;
        bad |= count_msg(n, &m);
      } else if (errno != ENOMSG) {
        bad = 1;
      }
    } else {
      (void)lmq_ready_put_back(r);
    }
  }
  set_stopping(1);
  for (i = 0; i < 2; i++) CHECK(pthread_join(th[i], NULL) == 0);
  CHECK(!bad);
  if (lmq_ready_pending(r) && lmq_ready_take(r, 0, 0, &t)) {
    m.mtype = t;
    CHECK(count_msg(0, &m) == 0);
  }
  CHECK(lmq_ready_free(r) == 0);
  while ((n = msgrcv(stress_q, &m, sizeof m.mtext, 0, IPC_NOWAIT)) >= 0) CHECK(count_msg(n, &m) == 0);
  CHECK(errno == ENOMSG);
  for (i = 0; i < 2; i++) {
    int k;
    for (k = 1; k <= NTYPES; k++) zero_sent[k] += sa[i].zero[k];
    sent_ids[i] = sa[i].ids;
  }
  {
    long zs = 0, zg = 0, ids = 0;
    int k;
    for (k = 1; k <= NTYPES; k++) {
      zs += zero_sent[k];
      zg += zero_got[k];
      if (zero_sent[k] != zero_got[k])
        fprintf(stderr, "  type %d: %ld 0-byte sent, %ld received\n", k, zero_sent[k], zero_got[k]);
      CHECK(zero_sent[k] == zero_got[k]);
    }
    CHECK(zs == zg);
    for (k = 0; k < MAXID; k++) ids += seen[k];
    CHECK(ids == (long)sent_ids[0] + sent_ids[1]);
    for (k = 0; k < 2; k++) {  /* every id sent was seen */
      int id;
      for (id = k; id < k + 2 * sent_ids[k]; id += 2) CHECK(seen[id]);
    }
    printf("  %ld ops (%ld arms, %ld fired, %ld retarget triples, %ld stops), %ld takes, %ld receives;\n"
           "  %ld 0-byte + %ld sized messages sent, all received once; %lu rescued from a cancel\n",
           ops, arms, fires, retargets, stops, takes, rcvs, zs, ids, lmq_ready_test_rescues() - rescues0);
  }
  return 0;
}

/* The cancel-after-consume race, provoked: a flood of 0-byte messages while the owner
 * retargets as fast as it can. Every message must be accounted for. */
static int t_cancel_race(void) {
  int64_t end = now_us() + stress_us();
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  long sent = 0, got = 0, cycles = 0, t;
  unsigned long rescues0 = lmq_ready_test_rescues();
  pid_t pid;
  int rc;
  CHECK(r != NULL);
  pid = fork();  /* a separate process, so the sender does not share this one's CPU slices */
  CHECK(pid >= 0);
  if (pid == 0) {
    tmsg m;
    long k = 0;
    (void)lmq_ready_free(r);  /* the parent's, inherited: only memory here */
    m.mtype = 1;
    while (now_us() < end) {
      if (msgsnd(q, &m, 0, 0) != 0) _exit(1);
      k++;
      if (k % 8 == 0) sched_yield();
    }
    /* report the count through the queue itself, as a sized message of type 99 */
    m.mtype = 99;
    memcpy(m.mtext, &k, sizeof k);
    _exit(msgsnd(q, &m, sizeof k, 0) == 0 ? 0 : 2);
  }
  while (now_us() < end) {
    cycles++;
    (void)lmq_ready_arm(r, 1, 0);
    (void)lmq_ready_arm(r, -1, 0);        /* a different selector matching the same type */
    while (lmq_ready_take(r, 0, 0, &t)) got++;
    if (cycles % 4 == 0) {
      tmsg m;
      while (msgrcv(q, &m, 0, 1, IPC_NOWAIT) == 0) got++;
    }
  }
  /* The sender may be blocked on a full queue: drain until it is done. */
  for (;;) {
    tmsg m;
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    CHECK(w >= 0);
    if (w == pid) {
      rc = WIFEXITED(status) ? WEXITSTATUS(status) : 100;
      break;
    }
    while (msgrcv(q, &m, 0, 1, IPC_NOWAIT) == 0) got++;
    sleep_ms(1);
  }
  if (rc != 0) fprintf(stderr, "  sender exited %d\n", rc);
  CHECK(rc == 0);
  while (lmq_ready_take(r, 0, 0, &t)) got++;
  CHECK(lmq_ready_free(r) == 0);
  for (;;) {
    tmsg m;
    ssize_t n = msgrcv(q, &m, sizeof m.mtext, 0, IPC_NOWAIT);
    if (n < 0) break;
    if (m.mtype == 99) memcpy(&sent, m.mtext, sizeof sent);
    else got++;
  }
  printf("  %ld retarget cycles, %ld 0-byte messages sent, %ld received, %lu rescued from a cancel\n",
         cycles, sent, got, lmq_ready_test_rescues() - rescues0);
  CHECK(sent > 0 && got == sent);
  return 0;
}

/* Threads of this process (Threads: in /proc/self/status); -1 if unknown. */
static int thread_count(void) {
  char line[256];
  int n = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "Threads:", 8) == 0) {
      n = (int)strtol(line + 8, NULL, 10);
      break;
    }
  fclose(f);
  return n;
}

/* release: the helper is joined, a stashed message put back, the fd left readable and
 * open until free (a wait whose handle closed wakes on it). */
static int t_release(void) {
  int q = new_queue();
  lmq_ready *r = lmq_ready_new(q);
  long t = 0;
  int fd, before = thread_count(), i;
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  /* A helper waiting in msgrcv. */
  CHECK(lmq_ready_arm(r, 0, 0) == 0);
  settle();
  lmq_ready_release(r);
  CHECK(readable(fd, 0));
  for (i = 0; i < 1000 && thread_count() != before; i++) sleep_ms(1);
  CHECK(thread_count() == before);
  CHECK(lmq_ready_free(r) == 0);
  /* A helper holding a 0-byte message. */
  r = lmq_ready_new(q);
  CHECK(r != NULL);
  fd = lmq_ready_fd(r);
  CHECK(lmq_ready_arm(r, 0, 0) == 0);
  CHECK(send_msg(q, 6, NULL) == 0);
  CHECK(readable(fd, 1000));
  CHECK(lmq_ready_pending(r) && qnum(q) == 0);
  lmq_ready_release(r);
  CHECK(!lmq_ready_pending(r) && qnum(q) == 1);
  CHECK(readable(fd, 0));
  CHECK(fcntl(fd, F_GETFD) >= 0);        /* still open */
  CHECK(lmq_ready_free(r) == 0);
  CHECK(recv_now(q, 0, 0, &t) == 0 && t == 6);
  return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

typedef struct test {
  const char *name;
  int (*fn)(void);
} test;

static const test tests[] = {
  {"nonempty", t_nonempty},   {"zero_byte", t_zero_byte}, {"put_back_full", t_put_back_full},
  {"removed", t_removed},     {"retarget", t_retarget},   {"rearm", t_rearm},
  {"selectors", t_selectors}, {"signals", t_signals},     {"denied", t_denied},       {"fork_arm", t_fork_arm},  {"fork_free", t_fork_free},
  {"stress", t_stress},       {"cancel_race", t_cancel_race}, {"release", t_release},
};

int main(int argc, char **argv) {
  size_t i;
  int a, ran = 0;
  main_pid = getpid();
  if (atexit(remove_queues) != 0) return 2;
  setvbuf(stdout, NULL, _IONBF, 0);
  for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    int want = argc < 2;
    for (a = 1; a < argc; a++)
      if (strcmp(argv[a], tests[i].name) == 0) want = 1;
    if (!want) continue;
    printf("%s\n", tests[i].name);
    ran++;
    if (tests[i].fn() != 0) printf("  FAILED\n");
    remove_queues();
  }
  printf("%d tests, %d failed\n", ran, failures);
  return failures ? 1 : (ran ? 0 : 2);
}
