#!/usr/bin/python3
"""A stand-in for the machine behind ipmi_sim, for tpmlab's BMC tests.

ipmi_sim starts it as its `startcmd` at chassis power on. It connects back to
the simulator's `serial ... codec VM` port as QEMU's ipmi-bmc-extern device
would (OpenIPMI's VM serial protocol: commands end with 0xA1; 0xA0, 0xA1 and
0xAA are escaped as 0xAA, byte|0x10), announces that it can power off and
reset, and appends what happens to it to an events file:
  on PID        started (chassis power on)
  reset         chassis power reset reached it (the machine rebooted in place)
  off           a power off or graceful shutdown request; it exits
  sigterm       ipmi_sim killed it
Usage: ipmi_vm.py HOST PORT EVENTS_FILE
"""
import os
import signal
import socket
import sys
import time

VM_MSG_CHAR, VM_CMD_CHAR, VM_ESCAPE_CHAR = 0xA0, 0xA1, 0xAA
VM_CMD_VERSION, VM_CMD_POWEROFF, VM_CMD_RESET = 0xFF, 0x03, 0x04
VM_CMD_CAPABILITIES, VM_CMD_GRACEFUL_SHUTDOWN = 0x08, 0x09
VM_CAPABILITIES_POWER, VM_CAPABILITIES_RESET = 0x01, 0x02
VM_CAPABILITIES_GRACEFUL_SHUTDOWN = 0x20


def event(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def frame(*data):
    out = bytearray()
    for b in data:
        if b in (VM_MSG_CHAR, VM_CMD_CHAR, VM_ESCAPE_CHAR):
            out += bytes([VM_ESCAPE_CHAR, b | 0x10])
        else:
            out.append(b)
    out.append(VM_CMD_CHAR)
    return bytes(out)


def main():
    host, port, events = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    signal.signal(signal.SIGTERM, lambda *_: (event(events, "sigterm"), os._exit(0)))
    event(events, "on %d" % os.getpid())
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
            break
        except OSError:
            if time.monotonic() > deadline:
                event(events, "no-connection")
                time.sleep(3600)  # powered, but not talking: as a machine without the VM link
            time.sleep(0.1)
    conn.settimeout(None)
    conn.sendall(frame(VM_CMD_VERSION, 1))
    conn.sendall(frame(VM_CMD_CAPABILITIES,
                       VM_CAPABILITIES_POWER | VM_CAPABILITIES_RESET | VM_CAPABILITIES_GRACEFUL_SHUTDOWN))
    buf, escape = bytearray(), False
    while True:
        data = conn.recv(256)
        if not data:
            event(events, "disconnected")
            return
        for b in data:
            if escape:
                buf.append(b & ~0x10 & 0xFF)
                escape = False
            elif b == VM_ESCAPE_CHAR:
                escape = True
            elif b == VM_MSG_CHAR:
                buf.clear()  # an IPMI message for the host: nobody here reads them
            elif b == VM_CMD_CHAR:
                cmd = buf[0] if buf else None
                buf.clear()
                if cmd == VM_CMD_RESET:
                    event(events, "reset")
                elif cmd in (VM_CMD_POWEROFF, VM_CMD_GRACEFUL_SHUTDOWN):
                    event(events, "off")
                    return
            else:
                buf.append(b)


if __name__ == "__main__":
    main()
