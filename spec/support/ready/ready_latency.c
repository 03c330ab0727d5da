/*
 * ready_latency: how soon a receiver wakes for a message sent at a random moment,
 * and what it costs while idle. Built and run by `spec/support/ready/run latency`.
 *
 *   ready_latency [seconds]      (default 4)
 *
 * A child process sends a message every 2 to 8 ms (uniformly random), stamped with
 * CLOCK_MONOTONIC just before msgsnd. The parent receives them in rounds of 25,
 * switching between three receivers so that all see the same machine conditions:
 *   blocking   msgrcv without IPC_NOWAIT (the physical limit);
 *   ready      the engine: msgrcv IPC_NOWAIT, and when empty lmq_ready_arm then
 *              poll() on the eventfd (what the Lua binding will do);
 *   polling    msgrcv IPC_NOWAIT with the timed calls' default back-off (3 spins,
 *              then sleeps from 50 us doubling to 1 ms).
 * Latency is receive time minus send time. Then, with no sender, each waiting
 * receiver idles 2 s and getrusage(RUSAGE_SELF) (all threads, the helper's too)
 * gives its CPU time.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ready.h"

enum { BLOCKING, READY, POLLING, NMODES };
static const char *const mode_name[NMODES] = {"blocking msgrcv", "ready engine (poll+NOWAIT)",
                                              "polling back-off (1 ms cap)"};

#define MAXS 4096
static int64_t lat[NMODES][MAXS];
static int nlat[NMODES];
static int qid = -1;
static pid_t main_pid;

typedef struct lmsg {
  long mtype;
  int64_t sent;
} lmsg;

static void cleanup(void) {
  if (getpid() == main_pid && qid >= 0) (void)msgctl(qid, IPC_RMID, NULL);
}

static int64_t now_ns(void) {
  struct timespec ts;
  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, int n, int p) {
  int i = (int)((long)n * p / 100);
  if (i >= n) i = n - 1;
  return v[i];
}

static double us(int64_t ns) { return (double)ns / 1e3; }

static void sender(double seconds) {
  unsigned seed = (unsigned)getpid();
  int64_t end = now_ns() + (int64_t)(seconds * 1e9);
  lmsg m;
  while (now_ns() < end) {
    sleep_ns(2000000 + (int64_t)(rand_r(&seed) % 6000001));
    m.mtype = 1;
    m.sent = now_ns();
    if (msgsnd(qid, &m, sizeof m.sent, 0) != 0) _exit(1);
  }
  m.mtype = 2;  /* the end */
  m.sent = now_ns();
  _exit(msgsnd(qid, &m, sizeof m.sent, 0) == 0 ? 0 : 1);
}

/* One message by each receiver; -1 on failure. */
static int recv_blocking(lmsg *m) {
  while (msgrcv(qid, m, sizeof m->sent, 0, 0) < 0)
    if (errno != EINTR) return -1;
  return 0;
}

static int recv_ready(lmq_ready *r, lmsg *m) {
  struct pollfd p;
  for (;;) {
    if (msgrcv(qid, m, sizeof m->sent, 0, IPC_NOWAIT) >= 0) return 0;
    if (errno != ENOMSG) return -1;
    if (lmq_ready_arm(r, 0, 0) != 0) return -1;
    p.fd = lmq_ready_fd(r);
    p.events = POLLIN;
    if (poll(&p, 1, -1) < 0 && errno != EINTR) return -1;
  }
}

static int recv_polling(lmsg *m, int64_t give_up) {
  int spins = 0;
  int64_t step = 50000;
  for (;;) {
    if (msgrcv(qid, m, sizeof m->sent, 0, IPC_NOWAIT) >= 0) return 0;
    if (errno != ENOMSG) return -1;
    if (give_up && now_ns() >= give_up) return 1;
    if (++spins <= 3) continue;
    sleep_ns(step);
    step *= 2;
    if (step > 1000000) step = 1000000;
  }
}

static double cpu_us(void) {
  struct rusage ru;
  (void)getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? strtod(argv[1], NULL) : 4.0;
  lmq_ready *r;
  pid_t pid;
  int count = 0, status, i, fd;
  double c0, c1;
  struct pollfd p;

  main_pid = getpid();
  if (seconds <= 0 || seconds > 60) seconds = 4.0;
  qid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  if (qid < 0 || atexit(cleanup) != 0) {
    perror("msgget");
    return 2;
  }
  r = lmq_ready_new(qid);
  if (r == NULL) {
    perror("lmq_ready_new");
    return 2;
  }
  pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) sender(seconds);

  for (;;) {
    lmsg m;
    int mode = (count / 25) % NMODES, rc;
    int64_t got;
    if (mode != READY) lmq_ready_stop(r);  /* no helper competing with the others */
    if (mode == BLOCKING) rc = recv_blocking(&m);
    else if (mode == READY) rc = recv_ready(r, &m);
    else rc = recv_polling(&m, 0);
    got = now_ns();
    if (rc != 0) {
      perror("receive");
      return 1;
    }
    if (m.mtype == 2) break;
    if (nlat[mode] < MAXS) lat[mode][nlat[mode]++] = got - m.sent;
    count++;
  }
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "sender failed\n");
    return 1;
  }

  printf("wake-up latency, %d messages at random 2-8 ms gaps over %.1f s, rounds of 25:\n", count,
         seconds);
  printf("  %-30s %6s %9s %9s %9s\n", "receiver", "n", "p50 us", "p99 us", "max us");
  for (i = 0; i < NMODES; i++) {
    qsort(lat[i], (size_t)nlat[i], sizeof lat[i][0], cmp64);
    if (nlat[i] == 0) continue;
    printf("  %-30s %6d %9.1f %9.1f %9.1f\n", mode_name[i], nlat[i], us(pct(lat[i], nlat[i], 50)),
           us(pct(lat[i], nlat[i], 99)), us(lat[i][nlat[i] - 1]));
  }

  printf("CPU of the whole process (all threads) while waiting 2 s for nothing:\n");
  /* ready: armed, the helper blocked in msgrcv, this thread in poll(). */
  if (lmq_ready_arm(r, 0, 0) != 0) return 1;
  fd = lmq_ready_fd(r);
  sleep_ns(50000000);  /* steady state: the helper has started and blocked */
  c0 = cpu_us();
  p.fd = fd;
  p.events = POLLIN;
  if (poll(&p, 1, 2000) != 0) {
    fprintf(stderr, "the idle wait was woken\n");
    return 1;
  }
  c1 = cpu_us();
  printf("  %-30s %8.0f us = %.4f%% of a core\n", mode_name[READY], c1 - c0, (c1 - c0) / 2e6 * 100);
  lmq_ready_stop(r);
  {
    lmsg m;
    c0 = cpu_us();
    if (recv_polling(&m, now_ns() + 2000000000) != 1) return 1;
    c1 = cpu_us();
    printf("  %-30s %8.0f us = %.4f%% of a core\n", mode_name[POLLING], c1 - c0, (c1 - c0) / 2e6 * 100);
  }
  return lmq_ready_free(r) == 0 ? 0 : 1;
}
