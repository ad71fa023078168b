#!/usr/bin/env python3
"""Platform firmware update: boot the baseline firmware, update to the
firmware-blob model, reboot, and print what changed in the event log and why.

    python3 firmware_update_compare.py [--to firmware-blob]
"""
import argparse
import sys

import tpmlab


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--to", default="firmware-blob", help="firmware model to update to (name or path)")
    args = ap.parse_args()

    with tpmlab.emulated(firmware="baseline") as dut:
        before = dut.boot().snapshot
        dut.enroll()
        dut.firmware_update(platform=args.to)
        step = dut.power_cycle("reset")
        after = step.snapshot
        drift = tpmlab.diff(before, after)

        print(f"PCRs changed: {drift.pcrs}")
        print("changed events:")
        for e in drift.events:
            print(f"  {e.change:8} PCR{e.pcr:<2} {e.type:32} {e.before_summary or '-'} -> {e.after_summary or '-'}")
        print("causes:")
        for c in drift.causes:
            print(f"  {c.code} (PCR {c.pcr}) {c.detail}")
        print(f"alarms: {step.alarm_codes()}")
        assert drift.events, "the update changed no logged event"
        assert "PCR_POLICY_MISMATCH" in step.alarm_codes()
    return 0


if __name__ == "__main__":
    sys.exit(main())
