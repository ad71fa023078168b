#!/usr/bin/env bash
# `tpmlab bench check` on benches powered through a BMC: an ipmi_sim on a
# loopback port answers `chassis power status` ([ OK ] power), a closed port
# is named host:port ([MISS]), a Redfish service (tests/support/redfish_sim.py
# over HTTPS with a certificate made here) is reached with ca_file, refused
# without it, and verify_tls: false is warned about; a password in the bench
# file is refused at file:line:column. The DUT is a USB bridge that is not
# plugged in here (a BMC powers a real machine; emulated DUTs refuse BMC
# power), so each check exits 1 for the dut line, and the power line is what
# is tested.
#   bmc_cli_test.sh TPMLAB_BINARY SOURCE_DIR
set -uo pipefail
tpmlab=$(realpath "$1")
src=$2
tmp=$(mktemp -d /tmp/tpmlab-bmc-cli-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
expect_stdout() {  # pattern, description
  grep -qE -- "$1" "$tmp/stdout" || { fail "$2: stdout lacks /$1/"; sed 's/^/  | /' "$tmp/stdout"; }
}
free_port() {  # udp | tcp
  /usr/bin/python3 -c "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}
# Children die with this shell even when it is SIGKILLed.
dying() { if command -v setpriv >/dev/null; then setpriv --pdeathsig KILL "$@"; else "$@"; fi; }
password='Cli-s3cret.pw'
printf '%s\n' "$password" >"$tmp/bmc.pw"
chmod 600 "$tmp/bmc.pw"
bench_head="name: bmc-bench
dut: {transport: tis-spi-ftdi}"

# 1. A password in the bench file: refused where it is, without echoing it.
cat >"$tmp/pw-in-file.yaml" <<YAML
$bench_head
power:
  kind: ipmi
  host: 127.0.0.1
  user: admin
  password: $password
YAML
expect_exit 2 "bench check with a password in the file" "$tpmlab" bench check "$tmp/pw-in-file.yaml"
expect_stderr 'pw-in-file\.yaml:7:13: power\.password: .*password_file.*password_env' "names file:line:column and the keys to use"
grep -q -- "$password" "$tmp/stderr" "$tmp/stdout" && fail "the password was echoed"

# 2. BMC power on an emulated DUT: refused (the emulator would ignore it).
cat >"$tmp/emulated.yaml" <<YAML
name: e
dut: {transport: tis-spi-sim}
power: {kind: ipmi, host: 127.0.0.1, user: admin, password_file: bmc.pw}
YAML
expect_exit 2 "BMC power on an emulated DUT" "$tpmlab" bench check "$tmp/emulated.yaml"
expect_stderr 'emulated\.yaml:3:8: power kind ipmi switches a real machine' "says why"

# 3. IPMI: ipmi_sim answers; a closed port is named.
if [[ -x /usr/bin/ipmi_sim && -x /usr/bin/ipmitool ]]; then
  port=$(free_port udp)
  mkdir -p "$tmp/state"
  cat >"$tmp/lan.conf" <<CONF
name "tpmlab-test"
set_working_mc 0x20
startlan 1
  addr 127.0.0.1 $port
  priv_limit admin
  allowed_auths_callback none md2 md5 straight
  allowed_auths_user none md2 md5 straight
  allowed_auths_operator none md2 md5 straight
  allowed_auths_admin none md2 md5 straight
  guid a123456789abcdefa123456789abcdef
endlan
user 2 true "admin" "$password" admin 10 none md2 md5 straight
CONF
  printf 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n' >"$tmp/bmc.emu"
  dying ipmi_sim -c "$tmp/lan.conf" -f "$tmp/bmc.emu" -s "$tmp/state" -n >"$tmp/ipmi_sim.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    IPMI_PASSWORD=$password ipmitool -I lanplus -H 127.0.0.1 -p "$port" -U admin -E -C 3 -R 1 -N 1 chassis power status >/dev/null 2>&1 && break
    sleep 0.2
  done
  cat >"$tmp/ipmi.yaml" <<YAML
$bench_head
power: {kind: ipmi, host: 127.0.0.1, port: $port, user: admin, password_file: bmc.pw, off_ms: 2000}
YAML
  expect_exit 1 "bench check ipmi (the bridge is absent)" "$tpmlab" bench check "$tmp/ipmi.yaml"
  expect_stdout "^bench bmc-bench .*power ipmi" "the summary names the power kind"
  expect_stdout "^\[ OK \] power: IPMI BMC 127\.0\.0\.1:$port \(ipmitool at .*\): chassis power off" "ipmi_sim answers"

  export BMC_CLI_PW=$password
  expect_exit 1 "bench check ipmi, password from the environment" "$tpmlab" bench check /dev/stdin <<YAML
$bench_head
power: {kind: ipmi, host: 127.0.0.1, port: $port, user: admin, password_env: BMC_CLI_PW}
YAML
  expect_stdout "^\[ OK \] power: IPMI BMC" "password_env works"
  unset BMC_CLI_PW

  closed=$(free_port udp)
  cat >"$tmp/closed.yaml" <<YAML
$bench_head
power: {kind: ipmi, host: 127.0.0.1, port: $closed, user: admin, password_file: bmc.pw, timeout_s: 20}
YAML
  start=$(date +%s)
  expect_exit 1 "bench check ipmi, nobody at the port" "$tpmlab" bench check "$tmp/closed.yaml"
  (( $(date +%s) - start < 25 )) || fail "the closed port took more than the timeout"
  expect_stdout "^\[MISS\] power: IPMI BMC 127\.0\.0\.1:$closed .*no BMC answered" "names host:port and why"

  printf 'Wr0ng-Pa55\n' >"$tmp/wrong.pw"; chmod 600 "$tmp/wrong.pw"
  sed "s/bmc.pw/wrong.pw/" "$tmp/ipmi.yaml" >"$tmp/wrong.yaml"
  expect_exit 1 "bench check ipmi, wrong password" "$tpmlab" bench check "$tmp/wrong.yaml"
  expect_stdout "^\[MISS\] power: IPMI BMC 127\.0\.0\.1:$port .*refused the password" "a wrong password is named"
  grep -q -- "Wr0ng-Pa55" "$tmp/stdout" "$tmp/stderr" && fail "the wrong password was echoed"

  chmod 644 "$tmp/bmc.pw"
  expect_exit 1 "bench check ipmi, password file readable by others" "$tpmlab" bench check "$tmp/ipmi.yaml"
  expect_stdout "^\[MISS\] power: .*bmc\.pw has mode 0644.*chmod 600" "the file's mode is refused"
  chmod 600 "$tmp/bmc.pw"
else
  echo "note: ipmi_sim or ipmitool is absent (Debian packages openipmi, ipmitool): IPMI cases not run"
fi

# 4. Redfish over HTTPS.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$tmp/openssl.log" 2>&1 || { cat "$tmp/openssl.log"; exit 1; }
dying /usr/bin/python3 "$src/tests/support/redfish_sim.py" --cert "$tmp/cert.pem" --key "$tmp/key.pem" --user admin \
  --password-file "$tmp/bmc.pw" --port-file "$tmp/rf.port" >"$tmp/redfish.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do [[ -s $tmp/rf.port ]] && break; sleep 0.2; done
rf=$(cat "$tmp/rf.port")
rf_bench() {  # name, extra keys
  printf '%s\npower: {kind: redfish, url: "https://127.0.0.1:%s", user: admin, password_file: bmc.pw%s}\n' \
    "$bench_head" "$rf" "$2" >"$tmp/$1.yaml"
}
rf_bench rf-ca ", ca_file: cert.pem"
expect_exit 1 "bench check redfish with ca_file" "$tpmlab" bench check "$tmp/rf-ca.yaml"
expect_stdout "^\[ OK \] power: Redfish https://127\.0\.0\.1:$rf/redfish/v1/Systems/1: power off; reset types On, ForceOff" "the service is reached"
rf_bench rf-system-ca ""
expect_exit 1 "bench check redfish, the system's CAs" "$tpmlab" bench check "$tmp/rf-system-ca.yaml"
expect_stdout "^\[MISS\] power: Redfish GET https://127\.0\.0\.1:$rf/redfish/v1/: .*certificate.*ca_file" "an untrusted certificate is named"
rf_bench rf-insecure ", verify_tls: false"
expect_exit 1 "bench check redfish, verify_tls false" "$tpmlab" bench check "$tmp/rf-insecure.yaml"
expect_stdout "^\[ OK \] power: Redfish .*warning: TLS certificate not verified" "verify_tls: false is warned about"

if (( failures )); then echo "$failures failure(s)"; exit 1; fi
echo "all bmc CLI checks passed"
