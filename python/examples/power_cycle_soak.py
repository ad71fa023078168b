#!/usr/bin/env python3
"""Power-cycle soak: N seeded power cycles of every kind on an emulated TPM.

Asserts after every cycle that no PCR drifted from the enrolled (golden)
values — an orderly cycle re-measures the same firmware, a resume keeps
PCRs 0-15 — and that the only alarm is CLOCK_NOT_SAFE, and only once a power
loss has happened.

    python3 power_cycle_soak.py --cycles 20 --seed 7
"""
import argparse
import random
import sys
import time

import tpmlab

POWER_LOSSES = {"power-loss", "hard-loss"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="keep run.json and the swtpm state here")
    args = ap.parse_args()
    draw = random.Random(args.seed)

    with tpmlab.emulated(firmware="baseline", seed=args.seed, out_dir=args.out) as dut:
        dut.boot()
        dut.enroll()
        had_power_loss = False
        started = time.monotonic()
        for n in range(1, args.cycles + 1):
            kind = draw.choice(tpmlab.POWER_CYCLE_KINDS)
            step = dut.power_cycle(kind)
            had_power_loss |= kind in POWER_LOSSES
            assert step.status == "passed", f"cycle {n} ({kind}): {step}"
            drifted = step.golden_drift.pcrs if step.golden_drift else {}
            assert not drifted, f"cycle {n} ({kind}): PCRs drifted from golden: {drifted}"
            allowed = {"CLOCK_NOT_SAFE"} if had_power_loss else set()
            unexpected = set(step.alarm_codes()) - allowed
            assert not unexpected, f"cycle {n} ({kind}): unexpected alarms {sorted(unexpected)}"
            c = step.snapshot.clock
            print(f"cycle {n:3} {kind:10} reset_count={c.reset_count} restart_count={c.restart_count} "
                  f"safe={c.safe} alarms={step.alarm_codes()}")
        elapsed = time.monotonic() - started
        result = dut.finish()
    print(f"{args.cycles} cycles in {elapsed:.2f} s ({args.cycles / elapsed:.1f} cycles/s); run {result.status}")
    return 0 if result.status == "passed" else 1


if __name__ == "__main__":
    sys.exit(main())
