"""The Python side of the interop example, with sysv_ipc (Debian: python3-sysv-ipc).

It finds the queue by ftok(path, proj_id) like the C peer, takes one message of type 2
and sends it on as type 3 with b"py:" in front.

usage: /usr/bin/python3 peer.py PATH PROJ_ID
"""
import signal
import sys

import sysv_ipc


def main():
    if len(sys.argv) != 3:
        print("usage: peer.py PATH PROJ_ID", file=sys.stderr)
        return 2
    path, proj = sys.argv[1], int(sys.argv[2])
    key = sysv_ipc.ftok(path, proj, silence_warning=True)
    print("Python peer: ftok(path, %d) = 0x%08x" % (proj, key & 0xFFFFFFFF), flush=True)
    queue = sysv_ipc.MessageQueue(key)
    signal.alarm(10)  # never hang for ever if the others went away
    data, mtype = queue.receive(type=2)
    queue.send(b"py:" + data, type=3)
    print("Python peer: took %d bytes of type %d, sent them on as type 3" % (len(data), mtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
