#!/usr/bin/env python3
"""TPM clear and re-enrollment: a clear makes the AK unknown to the verifier
(AK_UNKNOWN); enrolling again makes the next boot clean.

    python3 clear_and_reenroll.py
"""
import sys

import tpmlab


def main() -> int:
    with tpmlab.emulated(firmware="baseline") as dut:
        dut.boot()
        dut.enroll()
        cleared = dut.clear()
        print(f"clear: {cleared.status}")
        after_clear = dut.verify()
        print(f"after the clear: {after_clear.alarm_codes()}")
        for alarm in after_clear.alarms:
            print(f"  {alarm.code} [{alarm.severity}] {alarm.message}")
        assert "AK_UNKNOWN" in after_clear.alarm_codes(), after_clear

        dut.enroll()
        clean = dut.power_cycle("reset")
        print(f"after re-enrollment and a reset: {clean.alarm_codes() or 'no alarms'}")
        assert not clean.alarms, clean
    return 0


if __name__ == "__main__":
    sys.exit(main())
