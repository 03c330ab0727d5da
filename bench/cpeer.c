/*
 * cpeer: the benchmark's C peer, calling msgsnd/msgrcv directly (the
 * physical limit), plus the message stamper that scenario E's receivers share.
 *
 *   cpeer pair SIZE N WARM          one process, send then receive: ns per pair
 *   cpeer stream SIZE N WARM        a forked child sends, we receive: messages/s
 *   cpeer pingpong SIZE N WARM      blocking round trips with a forked child
 *   cpeer wake block|poll N MINGAP MAXGAP [SPINS MIN MAX]
 *                                   wake-up latency of a waiting receiver (gaps in s)
 *   cpeer idle block|poll SECONDS [SPINS MIN MAX]
 *                                   CPU seconds per wall second of an idle waiter
 *   cpeer stamp ID N MINGAP MAXGAP  send N stamped messages to queue ID at random gaps
 *   cpeer fanwake QUEUES N MINGAP MAXGAP
 *                                   scenario F's reference: a thread blocked in msgrcv on
 *                                   each of QUEUES queues, N stamped messages to random ones
 *   cpeer fanidle QUEUES SECONDS    CPU per wall second of those threads while idle
 *   cpeer stampmany N MINGAP MAXGAP DELAY ID...
 *                                   after DELAY s, N stamped messages (type 1) to random
 *                                   queues among the IDs at random gaps, then a type 2
 *                                   message ("stop") to each
 *
 * BENCH_PARTNER_CPU=n puts the forked partner on CPU n.
 * Results are lines "result <what> <value>" (and "sample <ns>" for each wake-up
 * latency, which the driver pools over rounds); "queue <id> 0" names the queue
 * we own so the driver can remove it should we die. Every queue is private
 * and removed at exit, on a signal too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXTEXT 8192

struct msg {
  long mtype;
  char mtext[MAXTEXT];
};

static struct msg sbuf, rbuf;
#define MAXQUEUES 1024
static int owned_ids[MAXQUEUES];
static int owned;
static pid_t owner_pid;
static volatile sig_atomic_t stopping;

static void remove_queue(void) {
  int i;
  if (getpid() != owner_pid) return;
  for (i = 0; i < owned; i++) msgctl(owned_ids[i], IPC_RMID, NULL);
  owned = 0;
}

/*
 * SIGTERM, SIGINT, SIGHUP set `stopping` and start an alarm that repeats every
 * second from then on. The handlers are installed without SA_RESTART, so a
 * blocked msgsnd/msgrcv or nanosleep fails with EINTR, even one entered after
 * the signal, and the program exits through exit(), whose atexit handler
 * removes the queue. SIGALRM alone (idle's timer) only interrupts.
 */
static void on_stop_signal(int sig) {
  (void)sig;
  stopping = 1;
  alarm(1);
}

static void on_alarm(int sig) {
  (void)sig;
  if (stopping) alarm(1);
}

static void die(const char *what) {
  if (stopping) exit(1); /* atexit removes the queue */
  perror(what);
  exit(1);
}

static void on_signals(void (*handler)(int), const int *sigs, int n) {
  struct sigaction sa;
  int i;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  for (i = 0; i < n; i++) sigaction(sigs[i], &sa, NULL);
}

/* Checked command-line numbers. */
static void usage(void);

static long arg_long(const char *s) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') usage();
  return v;
}

static double arg_double(const char *s) {
  char *end;
  double v;
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0') usage();
  return v;
}

static int new_queue(void) {
  int id;
  if (owned == MAXQUEUES) die("too many queues");
  id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  if (id < 0) die("msgget");
  if (owned == 0) {
    static const int stops[] = {SIGTERM, SIGINT, SIGHUP}, alarm_sig[] = {SIGALRM};
    owner_pid = getpid();
    atexit(remove_queue);
    on_signals(on_stop_signal, stops, 3);
    on_signals(on_alarm, alarm_sig, 1);
  }
  owned_ids[owned++] = id;
  printf("queue %d 0\n", id);
  fflush(stdout);
  return id;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_s(double s) {
  struct timespec ts;
  if (s <= 0) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    if (stopping) die("nanosleep");
  }
}

/* Blocking send and receive; a pending stop ends the program (one load per call). */
static void snd(int id, size_t size, long type) {
  if (stopping) die("stopped");
  sbuf.mtype = type;
  if (msgsnd(id, &sbuf, size, 0) != 0) die("msgsnd");
}

static ssize_t rcv(int id, long type) {
  ssize_t n;
  if (stopping) die("stopped");
  n = msgrcv(id, &rbuf, MAXTEXT, type, 0);
  if (n < 0) die("msgrcv");
  return n;
}

static void child_exit_on_error(const char *what) {
  /* The parent removing the queue, or a signal, ends a child blocked in it: not an error. */
  if (errno != EIDRM && errno != EINVAL && errno != EINTR) perror(what);
  _exit(0);
}

/* The partner of a two-process scenario; BENCH_PARTNER_CPU moves it to that CPU. */
static pid_t fork_child(void) {
  pid_t pid;
  const char *cpu = getenv("BENCH_PARTNER_CPU");
  fflush(stdout);
  pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0 && cpu != NULL && *cpu != '\0') {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)arg_long(cpu), &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity");
  }
  return pid;
}

static void reap(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n). */
static int64_t pct(const int64_t *v, size_t n, double p) {
  size_t k = (size_t)(p * (double)n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

static void report_latencies(int64_t *v, size_t n, const char *prefix) {
  qsort(v, n, sizeof *v, cmp_i64);
  printf("result %s_median_ns %lld\n", prefix, (long long)pct(v, n, 0.5));
  printf("result %s_p99_ns %lld\n", prefix, (long long)pct(v, n, 0.99));
}

static void run_pair(size_t size, long n, long warm) {
  int id = new_queue();
  int64_t t0 = 0;
  long i;
  memset(sbuf.mtext, 'x', size);
  for (i = -warm; i < n; i++) {
    if (i == 0) t0 = now_ns();
    snd(id, size, 1);
    rcv(id, 0);
  }
  printf("result ns_per_pair %.2f\n", (double)(now_ns() - t0) / (double)n);
}

static void run_stream(size_t size, long n, long warm) {
  int id = new_queue();
  int64_t t0 = 0;
  long i;
  pid_t pid = fork_child();
  if (pid == 0) {
    memset(sbuf.mtext, 'x', size);
    sbuf.mtype = 1;
    for (i = 0; i < n + warm && !stopping; i++)
      if (msgsnd(id, &sbuf, size, 0) != 0) child_exit_on_error("msgsnd");
    _exit(0);
  }
  for (i = -warm; i < n; i++) {
    if (i == 0) t0 = now_ns();
    rcv(id, 0);
  }
  printf("result msgs_per_s %.1f\n", (double)n * 1e9 / (double)(now_ns() - t0));
  reap(pid);
}

/* Ping is type 1, pong type 2, on one queue. */
static void run_pingpong(size_t size, long n, long warm) {
  int id = new_queue();
  int64_t *rtt = malloc(sizeof(int64_t) * (size_t)n);
  long i;
  pid_t pid;
  if (rtt == NULL) die("malloc");
  memset(sbuf.mtext, 'x', size);
  pid = fork_child();
  if (pid == 0) {
    for (i = 0; i < n + warm && !stopping; i++) {
      if (msgrcv(id, &rbuf, MAXTEXT, 1, 0) < 0) child_exit_on_error("msgrcv");
      sbuf.mtype = 2;
      if (msgsnd(id, &sbuf, size, 0) != 0) child_exit_on_error("msgsnd");
    }
    _exit(0);
  }
  for (i = -warm; i < n; i++) {
    int64_t t = now_ns();
    snd(id, size, 1);
    rcv(id, 2);
    if (i >= 0) rtt[i] = now_ns() - t;
  }
  reap(pid);
  report_latencies(rtt, (size_t)n, "rtt");
  free(rtt);
}

/* The back-off of mq's timed calls: SPINS immediate retries, then sleeps from MIN doubling to MAX. */
struct backoff {
  long spins;
  double min, max;
};

/* Poll with IPC_NOWAIT until a message comes or `timeout` s pass; -1 on timeout. */
static ssize_t poll_receive(int id, const struct backoff *b, double timeout) {
  int64_t deadline = now_ns() + (int64_t)(timeout * 1e9);
  long tries = 0;
  double step = b->min;
  for (;;) {
    ssize_t n = msgrcv(id, &rbuf, MAXTEXT, 0, IPC_NOWAIT);
    int64_t left;
    if (n >= 0) return n;
    if (errno != ENOMSG && errno != EAGAIN) die("msgrcv");
    if (stopping) die("poll");
    left = deadline - now_ns();
    if (left <= 0) return -1;
    if (tries < b->spins) {
      tries++;
      continue;
    }
    sleep_s(step < (double)left / 1e9 ? step : (double)left / 1e9);
    step *= 2;
    if (step > b->max) step = b->max;
  }
}

static uint64_t rng_state;

static double uniform(double lo, double hi) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Sends n messages to id, each stamped with CLOCK_MONOTONIC ns, after random gaps. */
static void stamp_loop(int id, long n, double mingap, double maxgap) {
  long i;
  rng_state = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
  memset(sbuf.mtext, 0, 64);
  sbuf.mtype = 1;
  for (i = 0; i < n; i++) {
    int64_t t;
    if (stopping) die("stamp");
    sleep_s(uniform(mingap, maxgap));
    t = now_ns();
    memcpy(sbuf.mtext, &t, sizeof t);
    if (msgsnd(id, &sbuf, 64, 0) != 0) child_exit_on_error("msgsnd");
  }
}

static int parse_backoff(int argc, char **argv, int at, struct backoff *b) {
  if (argc < at + 3) return -1;
  b->spins = arg_long(argv[at]);
  b->min = arg_double(argv[at + 1]);
  b->max = arg_double(argv[at + 2]);
  return 0;
}

/* The first WARM samples are dropped: the receiver may still be starting. */
#define WAKE_WARM 3

static void run_wake(int poll, const struct backoff *b, long n, double mingap, double maxgap) {
  int id = new_queue();
  int64_t *lat = malloc(sizeof(int64_t) * (size_t)n);
  long i;
  pid_t pid;
  if (lat == NULL) die("malloc");
  pid = fork_child();
  if (pid == 0) {
    stamp_loop(id, n + WAKE_WARM, mingap, maxgap);
    _exit(0);
  }
  for (i = -WAKE_WARM; i < n; i++) {
    int64_t sent, got;
    if (poll) {
      if (poll_receive(id, b, 60.0) < 0) die("poll_receive timed out");
    } else {
      rcv(id, 0);
    }
    got = now_ns();
    memcpy(&sent, rbuf.mtext, sizeof sent);
    if (i >= 0) lat[i] = got - sent;
  }
  reap(pid);
  for (i = 0; i < n; i++) printf("sample %lld\n", (long long)lat[i]);
  report_latencies(lat, (size_t)n, "wake");
  free(lat);
}

static void run_idle(int poll, const struct backoff *b, double seconds) {
  int id = new_queue();
  int64_t w0, c0;
  w0 = now_ns();
  c0 = cpu_ns();
  if (poll) {
    if (poll_receive(id, b, seconds) >= 0) die("unexpected message");
  } else {
    /* A blocking receive, ended by an alarm (no SA_RESTART, so msgrcv fails with EINTR). */
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = (time_t)seconds;
    it.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
    setitimer(ITIMER_REAL, &it, NULL);
    if (msgrcv(id, &rbuf, MAXTEXT, 0, 0) >= 0 || errno != EINTR) die("msgrcv");
  }
  printf("result cpu_per_wall %.6f\n",
         (double)(cpu_ns() - c0) / (double)(now_ns() - w0));
}

/* Sends n stamped messages (type 1) to random queues among ids, after `delay` s and
 * random gaps, then a type 2 message to each queue: "stop". */
static void stamp_many(const int *ids, int nids, long n, double mingap, double maxgap,
                       double delay) {
  long i;
  int k;
  rng_state = (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
  memset(sbuf.mtext, 0, 64);
  sleep_s(delay);
  for (i = 0; i < n; i++) {
    int64_t t;
    int q = (int)uniform(0, (double)nids);
    if (q >= nids) q = nids - 1;
    if (stopping) die("stamp");
    sleep_s(uniform(mingap, maxgap));
    t = now_ns();
    memcpy(sbuf.mtext, &t, sizeof t);
    sbuf.mtype = 1;
    if (msgsnd(ids[q], &sbuf, 64, 0) != 0) child_exit_on_error("msgsnd");
  }
  sbuf.mtype = 2;
  for (k = 0; k < nids; k++)
    if (msgsnd(ids[k], &sbuf, 64, 0) != 0) child_exit_on_error("msgsnd");
}

/* Scenario F's reference: one thread blocked in msgrcv per queue. */
struct fan {
  int id;
  pthread_mutex_t *mu;
  int64_t *lat;
  long *count, cap;
};

static void *fan_thread(void *arg) {
  struct fan *f = (struct fan *)arg;
  struct msg m;
  for (;;) {
    int64_t sent, got;
    if (msgrcv(f->id, &m, MAXTEXT, 0, 0) < 0) {
      if (errno == EINTR) continue;
      return NULL;                       /* removed: the idle run's end */
    }
    if (m.mtype == 2) return NULL;       /* stop */
    got = now_ns();
    memcpy(&sent, m.mtext, sizeof sent);
    pthread_mutex_lock(f->mu);
    if (*f->count < f->cap) f->lat[(*f->count)++] = got - sent;
    pthread_mutex_unlock(f->mu);
  }
}

static void run_fan(int nq, long n, double mingap, double maxgap, double idle_s) {
  struct fan *fans = calloc((size_t)nq, sizeof *fans);
  pthread_t *threads = calloc((size_t)nq, sizeof *threads);
  int *ids = calloc((size_t)nq, sizeof *ids);
  long total = n > 0 ? n + WAKE_WARM : 0, count = 0, i;
  int64_t *lat = malloc(sizeof(int64_t) * (size_t)(total > 0 ? total : 1));
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  int k;
  pid_t pid = -1;
  if (fans == NULL || threads == NULL || ids == NULL || lat == NULL) die("malloc");
  for (k = 0; k < nq; k++) {
    ids[k] = new_queue();
    fans[k].id = ids[k];
    fans[k].mu = &mu;
    fans[k].lat = lat;
    fans[k].count = &count;
    fans[k].cap = total;
    if (pthread_create(&threads[k], NULL, fan_thread, &fans[k]) != 0) die("pthread_create");
  }
  if (idle_s > 0) {
    int64_t w0, c0;
    sleep_s(0.2);                        /* every thread blocked */
    w0 = now_ns();
    c0 = cpu_ns();
    sleep_s(idle_s);
    printf("result cpu_per_wall %.6f\n", (double)(cpu_ns() - c0) / (double)(now_ns() - w0));
    remove_queue();                      /* EIDRM ends the threads */
  } else {
    pid = fork_child();
    if (pid == 0) {
      stamp_many(ids, nq, total, mingap, maxgap, 0.1);
      _exit(0);
    }
  }
  for (k = 0; k < nq; k++) pthread_join(threads[k], NULL);
  if (pid > 0) {
    reap(pid);
    if (count > WAKE_WARM) {
      /* The first WAKE_WARM wake-ups (in arrival order) are dropped, as in wake. */
      for (i = WAKE_WARM; i < count; i++) printf("sample %lld\n", (long long)lat[i]);
      report_latencies(lat + WAKE_WARM, (size_t)(count - WAKE_WARM), "wake");
    }
  }
  free(fans);
  free(threads);
  free(ids);
  free(lat);
}

static void usage(void) {
  fprintf(stderr, "usage: cpeer pair|stream|pingpong SIZE N WARM\n"
                  "       cpeer wake block|poll N MINGAP MAXGAP [SPINS MIN MAX]\n"
                  "       cpeer idle block|poll SECONDS [SPINS MIN MAX]\n"
                  "       cpeer stamp ID N MINGAP MAXGAP\n"
                  "       cpeer fanwake QUEUES N MINGAP MAXGAP\n"
                  "       cpeer fanidle QUEUES SECONDS\n"
                  "       cpeer stampmany N MINGAP MAXGAP DELAY ID...\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct backoff b = {3, 50e-6, 1e-3};
  const char *mode;
  if (argc < 2) usage();
  mode = argv[1];
  if (strcmp(mode, "pair") == 0 || strcmp(mode, "stream") == 0 || strcmp(mode, "pingpong") == 0) {
    long size, n, warm;
    if (argc != 5) usage();
    size = arg_long(argv[2]);
    n = arg_long(argv[3]);
    warm = arg_long(argv[4]);
    if (size < 0 || size > MAXTEXT || n < 1 || warm < 0) usage();
    if (mode[0] == 'p' && mode[1] == 'a') run_pair((size_t)size, n, warm);
    else if (mode[0] == 's') run_stream((size_t)size, n, warm);
    else run_pingpong((size_t)size, n, warm);
  } else if (strcmp(mode, "wake") == 0 || strcmp(mode, "idle") == 0) {
    int poll;
    if (argc < 4) usage();
    poll = strcmp(argv[2], "poll") == 0;
    if (!poll && strcmp(argv[2], "block") != 0) usage();
    if (mode[0] == 'w') {
      long n;
      if (argc < 6 || (poll && parse_backoff(argc, argv, 6, &b) != 0)) usage();
      n = arg_long(argv[3]);
      if (n < 1) usage();
      run_wake(poll, &b, n, arg_double(argv[4]), arg_double(argv[5]));
    } else {
      if (poll && parse_backoff(argc, argv, 4, &b) != 0) usage();
      run_idle(poll, &b, arg_double(argv[3]));
    }
  } else if (strcmp(mode, "stamp") == 0) {
    if (argc != 6) usage();
    stamp_loop((int)arg_long(argv[2]), arg_long(argv[3]), arg_double(argv[4]), arg_double(argv[5]));
  } else if (strcmp(mode, "fanwake") == 0 || strcmp(mode, "fanidle") == 0) {
    long nq;
    if (argc < 4) usage();
    nq = arg_long(argv[2]);
    if (nq < 1 || nq > MAXQUEUES) usage();
    if (mode[3] == 'w') {
      long n;
      if (argc != 6) usage();
      n = arg_long(argv[3]);
      if (n < 1) usage();
      run_fan((int)nq, n, arg_double(argv[4]), arg_double(argv[5]), 0);
    } else {
      if (argc != 4) usage();
      run_fan((int)nq, 0, 0, 0, arg_double(argv[3]));
    }
  } else if (strcmp(mode, "stampmany") == 0) {
    int ids[MAXQUEUES], k, nids = argc - 6;
    if (argc < 7 || nids > MAXQUEUES) usage();
    for (k = 0; k < nids; k++) ids[k] = (int)arg_long(argv[6 + k]);
    stamp_many(ids, nids, arg_long(argv[2]), arg_double(argv[3]), arg_double(argv[4]),
               arg_double(argv[5]));
  } else {
    usage();
  }
  return 0;
}
