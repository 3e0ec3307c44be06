"""benchproc.py: what the chain benchmarks share to start their services
(bench/overload-bench.py, bench/overload-books.py, bench/shed-instr.py)."""
import socket
import time


def free_ports(n):
    """n TCP ports on 127.0.0.1 free a moment ago (bound at once, then
    released together, so the n differ)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listening(p, out, secs=20):
    """Waits until process p has written "listening on ..." to the file
    out (True), or exited, or secs passed (False)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            with open(out) as f:
                if f.read().startswith("listening on "):
                    return True
        except OSError:
            pass
        if p.poll() is not None:
            return False
        time.sleep(0.05)
    return False
