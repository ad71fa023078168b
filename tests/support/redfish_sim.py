#!/usr/bin/python3
"""A small Redfish service for tpmlab's BMC tests: one ComputerSystem whose
power the Reset action switches. Loopback only, HTTPS with the certificate
the test made, HTTP basic authentication.

  redfish_sim.py --cert C --key K --user U --password-file F --port-file P
                 [--reset-types On,ForceOff,ForceRestart,...] [--events FILE]
                 [--transition-ms N] [--system-id 1]

The port it listens on (it picks a free one) is written to --port-file once
it accepts connections. Each accepted reset is appended to --events as
"ResetType PowerStateAfter". Resources:
  /redfish/v1/                      service root (no authentication, as Redfish allows)
  /redfish/v1/Systems               the collection (one member)
  /redfish/v1/Systems/ID            PowerState, Actions.#ComputerSystem.Reset
  /redfish/v1/Systems/ID/Actions/ComputerSystem.Reset   POST {"ResetType": ...}
"""
import argparse
import base64
import http.server
import json
import os
import ssl
import threading
import time

ALL_TYPES = ["On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "ForceOn",
             "PushPowerButton", "PowerCycle", "Nmi"]


class System:
    def __init__(self, transition_ms):
        self.lock = threading.Lock()
        self.state = "Off"
        self.until = 0.0
        self.target = "Off"
        self.resets = 0
        self.transition = transition_ms / 1000.0

    def power_state(self):
        with self.lock:
            if self.until and time.monotonic() >= self.until:
                self.state, self.until = self.target, 0.0
            return self.state

    def go(self, target, passing):
        with self.lock:
            if self.transition > 0:
                self.state, self.target, self.until = passing, target, time.monotonic() + self.transition
            else:
                self.state, self.until = target, 0.0

    def reset(self, kind):
        state = self.power_state()
        if kind in ("On", "ForceOn"):
            self.go("On", "PoweringOn")
        elif kind in ("ForceOff", "GracefulShutdown"):
            self.go("Off", "PoweringOff")
        elif kind == "PushPowerButton":
            self.go("Off" if state == "On" else "On", "PoweringOff" if state == "On" else "PoweringOn")
        elif kind in ("ForceRestart", "GracefulRestart", "PowerCycle"):
            with self.lock:
                self.resets += 1
            self.go("On", "PoweringOn")
        return self.power_state()


def make_handler(args, system, password):
    expected = "Basic " + base64.b64encode(("%s:%s" % (args.user, password)).encode()).decode()
    sid = "/redfish/v1/Systems/" + args.system_id
    reset_path = sid + "/Actions/ComputerSystem.Reset"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):
            if args.log:
                with open(args.log, "a") as f:
                    f.write("%s %s\n" % (self.command, fmt % a))

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("OData-Version", "4.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, code, message):
            self.reply(code, {"error": {"code": "Base.1.8.GeneralError", "message": message,
                                        "@Message.ExtendedInfo": [{"Message": message}]}})

        def authorised(self):
            if self.headers.get("Authorization") == expected:
                return True
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="redfish"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_GET(self):
            path = self.path.rstrip("/")
            if path in ("/redfish/v1", "/redfish"):
                self.reply(200, {"@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
                                 "Id": "RootService", "RedfishVersion": "1.8.0",
                                 "Systems": {"@odata.id": "/redfish/v1/Systems"}})
                return
            if not self.authorised():
                return
            if path == "/redfish/v1/Systems":
                self.reply(200, {"@odata.id": "/redfish/v1/Systems", "Members@odata.count": 1,
                                 "Members": [{"@odata.id": sid}]})
            elif path == sid:
                self.reply(200, {"@odata.id": sid, "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
                                 "Id": args.system_id, "PowerState": system.power_state(),
                                 "Oem": {"Tpmlab": {"Resets": system.resets}},
                                 "Actions": {"#ComputerSystem.Reset": {
                                     "target": reset_path,
                                     "ResetType@Redfish.AllowableValues": args.reset_types}}})
            else:
                self.error(404, "no resource " + path)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if not self.authorised():
                return
            if self.path != reset_path:
                self.error(404, "no action " + self.path)
                return
            try:
                kind = json.loads(body)["ResetType"]
            except (ValueError, KeyError, TypeError):
                self.error(400, "the body needs ResetType")
                return
            if kind not in args.reset_types:
                self.error(400, "ResetType %s is not one of %s" % (kind, ", ".join(args.reset_types)))
                return
            after = system.reset(kind)
            if args.events:
                with open(args.events, "a") as f:
                    f.write("%s %s\n" % (kind, after))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--reset-types", default="On,ForceOff,GracefulShutdown,ForceRestart,PowerCycle")
    p.add_argument("--events")
    p.add_argument("--log")
    p.add_argument("--transition-ms", type=int, default=0)
    p.add_argument("--system-id", default="1")
    args = p.parse_args()
    args.reset_types = [t for t in args.reset_types.split(",") if t]
    for t in args.reset_types:
        if t not in ALL_TYPES:
            p.error("unknown reset type " + t)
    with open(args.password_file) as f:
        password = f.read().rstrip("\n")
    system = System(args.transition_ms)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, system, password))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
