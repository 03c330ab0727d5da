/*
 * The C side of the interop example: a program that knows nothing of Lua. It finds the queue
 * as any System V program does, msgget(ftok(path, proj_id), 0), takes one message of type 1,
 * and sends its bytes back reversed as type 2.
 *
 * usage: peer PATH PROJ_ID
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/types.h>
#include <unistd.h>

#define PEER_MAX 8192

struct peer_msg {
  long mtype;
  char mtext[PEER_MAX];
};

int main(int argc, char **argv)
{
  static struct peer_msg m;
  key_t key;
  int id, proj;
  ssize_t n;

  if (argc != 3) {
    fprintf(stderr, "usage: %s PATH PROJ_ID\n", argv[0]);
    return 2;
  }
  proj = atoi(argv[2]);
  key = ftok(argv[1], proj);
  if (key == (key_t)-1) {
    fprintf(stderr, "C peer: ftok %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  printf("C peer:      ftok(path, %d) = 0x%08x\n", proj, (unsigned)key);
  id = msgget(key, 0);
  if (id == -1) {
    fprintf(stderr, "C peer: msgget 0x%08x: %s\n", (unsigned)key, strerror(errno));
    return 1;
  }
  alarm(10); /* never hang for ever if the Lua side went away */
  n = msgrcv(id, &m, sizeof m.mtext, 1, 0);
  if (n == -1) {
    fprintf(stderr, "C peer: msgrcv: %s\n", strerror(errno));
    return 1;
  }
  for (ssize_t i = 0, j = n - 1; i < j; i++, j--) {
    char c = m.mtext[i];
    m.mtext[i] = m.mtext[j];
    m.mtext[j] = c;
  }
  m.mtype = 2;
  if (msgsnd(id, &m, (size_t)n, 0) == -1) {
    fprintf(stderr, "C peer: msgsnd: %s\n", strerror(errno));
    return 1;
  }
  printf("C peer:      took %zd bytes of type 1, sent them back reversed as type 2\n", n);
  return 0;
}
