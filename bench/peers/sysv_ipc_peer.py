"""Python's sysv_ipc (Debian python3-sysv-ipc) running the benchmark's scenarios.

    /usr/bin/python3 sysv_ipc_peer.py pair|stream|pingpong SIZE N WARM

Two-process scenarios fork a partner that shares the private queue (on CPU n
when BENCH_PARTNER_CPU=n). Prints
"queue <id> 0" and "result <what> <value>" lines for the driver.
"""
import math
import os
import signal
import sys
import time

import sysv_ipc

MAXTEXT = 8192


def pct(v, p):
    """Nearest-rank percentile p (0..1) of a sorted list."""
    k = max(1, min(len(v), math.ceil(p * len(v))))
    return v[k - 1]


def pair(q, msg, n, warm):
    send, receive = q.send, q.receive
    for _ in range(warm):
        send(msg)
        receive()
    now = time.monotonic_ns
    t0 = now()
    r = None
    for _ in range(n):
        send(msg)
        r = receive()
    dt = now() - t0
    assert r[0] == msg
    print("result ns_per_pair %.6g" % (dt / n))


def fork_partner(body):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            cpu = os.environ.get("BENCH_PARTNER_CPU")
            if cpu:
                os.sched_setaffinity(0, {int(cpu)})
            body()
        except sysv_ipc.ExistentialError:
            pass  # the parent removed the queue
        finally:
            os._exit(0)
    return pid


def stream(q, msg, n, warm):
    def sender():
        send = q.send
        for _ in range(n + warm):
            send(msg)

    pid = fork_partner(sender)
    receive = q.receive
    for _ in range(warm):
        receive()
    now = time.monotonic_ns
    t0 = now()
    r = None
    for _ in range(n):
        r = receive()
    dt = now() - t0
    assert r[0] == msg
    print("result msgs_per_s %.6g" % (n * 1e9 / dt))
    os.waitpid(pid, 0)


def pingpong(q, msg, n, warm):
    def ponger():
        send, receive = q.send, q.receive
        for _ in range(n + warm):
            receive(type=1)
            send(msg, type=2)

    pid = fork_partner(ponger)
    send, receive = q.send, q.receive
    for _ in range(warm):
        send(msg, type=1)
        receive(type=2)
    now = time.monotonic_ns
    rtt = []
    for _ in range(n):
        t = now()
        send(msg, type=1)
        receive(type=2)
        rtt.append(now() - t)
    rtt.sort()
    print("result rtt_median_ns %d" % pct(rtt, 0.5))
    print("result rtt_p99_ns %d" % pct(rtt, 0.99))
    os.waitpid(pid, 0)


def main():
    mode, size, n, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    run = {"pair": pair, "stream": stream, "pingpong": pingpong}[mode]
    q = sysv_ipc.MessageQueue(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, 0o600,
                              max_message_size=MAXTEXT)
    owner = os.getpid()

    def on_signal(*_):
        # Removes the queue here: an exception raised from a handler could land
        # inside the finally clause below and skip its remove().
        if os.getpid() == owner:
            try:
                q.remove()
            except sysv_ipc.Error:
                pass
        os._exit(1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        print("queue %d 0" % q.id, flush=True)
        run(q, b"x" * size, n, warm)
    finally:
        if os.getpid() == owner:
            q.remove()


if __name__ == "__main__":
    main()
