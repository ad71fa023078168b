"""Two DUTs driven from two threads progress at the same time (the GIL is
released around TPM I/O)."""
import threading
import time

import tpmlab

CYCLES = 15


def _soak(windows, errors, name, barrier):
    try:
        with tpmlab.emulated(firmware="baseline", name=name) as dut:
            dut.boot()
            barrier.wait(timeout=60)  # both DUTs up: cycle together
            for _ in range(CYCLES):
                t0 = time.monotonic()
                step = dut.power_cycle("reset")
                windows.append((t0, time.monotonic()))
                assert step.status == "passed", step
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def _overlap(a, b):
    """Seconds during which a step of `a` and a step of `b` were both running."""
    total = 0.0
    for s1, e1 in a:
        for s2, e2 in b:
            total += max(0.0, min(e1, e2) - max(s1, s2))
    return total


def test_two_duts_in_two_threads_overlap():
    windows = ([], [])
    errors = []
    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=_soak, args=(windows[i], errors, f"thread{i}", barrier)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    busy = [sum(e - s for s, e in w) for w in windows]
    overlap = _overlap(*windows)
    ratio = overlap / min(busy)
    wall = max(w[-1][1] for w in windows) - min(w[0][0] for w in windows)
    print(f"step time {busy[0]:.3f} s + {busy[1]:.3f} s in {wall:.3f} s of wall time; "
          f"both running {overlap:.3f} s ({ratio:.0%} of the shorter)")
    # Held across a step, the GIL would let the other thread in only between steps.
    assert ratio > 0.5
