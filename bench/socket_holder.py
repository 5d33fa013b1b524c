#!/usr/bin/env python3
"""Holds listening sockets the way systemd's .socket units do, for bench/upgrade.sh:
binds NAME=PORT pairs on 127.0.0.1, runs the command with them as LISTEN_FDS (named in
LISTEN_FDNAMES), and starts it again whenever it is killed by a signal, on the same
sockets. SIGTERM to the holder is passed on to the command; then the holder exits.

usage: socket_holder.py public=8080 api=9100 -- slot-machine start ...
"""
import os
import signal
import socket
import subprocess
import sys


def main():
    split = sys.argv.index("--")
    pairs = [a.split("=", 1) for a in sys.argv[1:split]]
    command = sys.argv[split + 1:]
    socks = []
    for _name, port in pairs:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(port)))
        s.listen(4096)
        socks.append(s)
    # The daemon expects them at 3, 4, ...: move them there (above them first).
    high = [os.dup(s.fileno()) for s in socks]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    env = dict(os.environ, LISTEN_FDS=str(len(socks)),
               LISTEN_FDNAMES=":".join(name for name, _ in pairs))
    # LISTEN_PID must be the daemon's pid: the shell knows it before it execs.
    argv = ["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"'] + command
    fds = tuple(range(3, 3 + len(socks)))
    stopping = False
    child = None

    def on_term(_sig, _frame):
        nonlocal stopping
        stopping = True
        if child:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        child = subprocess.Popen(argv, env=env, pass_fds=fds)
        print(f"holder: started pid {child.pid}", file=sys.stderr, flush=True)
        code = child.wait()
        if stopping or code >= 0:
            return code if code >= 0 else 1


if __name__ == "__main__":
    sys.exit(main())
