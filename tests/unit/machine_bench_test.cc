// Machine benches (dut transport machine): the machine: section and its
// errors at file:line:column, the example in hw/benches, what a machine
// refuses before a run, and how ssh's own words are read back.
#define BOOST_TEST_MODULE machine_bench
#include <boost/test/unit_test.hpp>

#include <string>

#include "drivers/agent_links.h"
#include "harness/bench.h"
#include "harness/bench_policy.h"

namespace tpmlab {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Bench Parse(const std::string& text) {
  auto b = ParseBench(text, "m.yaml");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  return *b;
}

std::string ErrorOf(const std::string& text) {
  auto b = ParseBench(text, "m.yaml");
  BOOST_REQUIRE_MESSAGE(!b.ok(), "parsed, expected an error:\n" + text);
  return b.status().message();
}

const std::string kSsh =
    "name: m\n"
    "dut: {transport: machine}\n"
    "machine:\n"
    "  agent:\n"
    "    ssh: {host: lab-board-7, user: root, port: 2222, options: [\"-F\", \"~/.ssh/config\"]}\n";

BOOST_AUTO_TEST_CASE(the_example_loads_as_a_machine) {
  auto b = LoadBench(std::string(TPMLAB_SOURCE_DIR) + "/hw/benches/machine-ssh.yaml");
  BOOST_REQUIRE_MESSAGE(b.ok(), b.status().ToString());
  BOOST_TEST(b->is_machine());
  BOOST_TEST(!b->is_board());
  BOOST_TEST(!b->emulated());
  BOOST_TEST(!b->harness_boots());
  BOOST_TEST((b->boot_log.source == BootLogSource::kAgent));
  BOOST_TEST((b->power.kind == PowerKind::kCommand));
  BOOST_TEST(!b->allow.clear);  // a machine's chip is its own
  BOOST_TEST(b->machine->firmware == "vendor-bios-1.4");
  BOOST_TEST(b->machine->LinkDescription() == "ssh root@lab-board-7:22");
}

BOOST_AUTO_TEST_CASE(ssh_serial_and_console_links) {
  const Bench ssh = Parse(kSsh);
  BOOST_TEST((ssh.machine->link == MachineLink::kSsh));
  BOOST_TEST(ssh.machine->ssh_command == "tpmlab-agent --stdio");
  BOOST_TEST(ssh.machine->boot_timeout_s == 300u);
  BOOST_TEST((ssh.power.kind == PowerKind::kNone));
  const Bench serial = Parse(
      "name: m\ndut: {transport: machine}\nmachine:\n  agent: {serial: {device: /dev/ttyUSB0, baud: 57600}}\n"
      "  suspend: true\n  boot_timeout_s: 90\n");
  BOOST_TEST(serial.machine->LinkDescription() == "serial /dev/ttyUSB0 at 57600");
  BOOST_TEST(serial.machine->suspend);
  const Bench console = Parse("name: m\ndut: {transport: machine}\nmachine:\n  agent: {console: \"tcp:[::1]:7001\"}\n");
  BOOST_TEST(console.machine->console_host == "::1");
  BOOST_TEST(console.machine->console_port == 7001);
}

BOOST_AUTO_TEST_CASE(mistakes_are_named_where_they_are) {
  BOOST_TEST(Contains(ErrorOf("name: m\ndut: {transport: machine}\n"), "machine: goes with dut transport machine"));
  BOOST_TEST(Contains(ErrorOf(kSsh + "  boot_timeout_s: 0\n"), "m.yaml:6:"));
  const std::string two = ErrorOf(
      "name: m\ndut: {transport: machine}\nmachine:\n  agent: {ssh: {host: a}, console: \"tcp:a:1\"}\n");
  BOOST_TEST(Contains(two, "m.yaml:4:10"), two);
  BOOST_TEST(Contains(two, "one of ssh, serial and console"), two);
  BOOST_TEST(Contains(ErrorOf("name: m\ndut: {transport: machine}\nmachine:\n  agent: {console: \"a:1\"}\n"),
                      "tcp:HOST:PORT"));
  BOOST_TEST(Contains(ErrorOf("name: m\ndut: {transport: machine}\nmachine:\n  agent: {ssh: {user: root}}\n"),
                      "needs a host"));
  BOOST_TEST(Contains(ErrorOf(kSsh + "power: {kind: board}\n"), "power kind board"));
  BOOST_TEST(Contains(ErrorOf("name: m\ndut: {transport: device}\nmachine: {agent: {ssh: {host: a}}}\n"),
                      "machine: goes with dut transport machine"));
  BOOST_TEST(Contains(ErrorOf(kSsh + "  surprise: 1\n"), "m.yaml:6:3"));
}

BOOST_AUTO_TEST_CASE(a_machine_refuses_what_it_cannot_do_before_the_run) {
  const Bench none = Parse(kSsh);
  BenchDemand reset;
  reset.power_switch = true;
  reset.power_cycle_kinds = {PowerCycleKind::kReset};
  BOOST_TEST(UnrunnableOn(reset, none) == "");
  BenchDemand loss = reset;
  loss.power_cycle_kinds = {PowerCycleKind::kPowerLoss};
  BOOST_TEST(Contains(UnrunnableOn(loss, none), "power: none"));
  BenchDemand resume = reset;
  resume.power_cycle_kinds = {PowerCycleKind::kResume};
  BOOST_TEST(Contains(UnrunnableOn(resume, none), "machine.suspend"));
  BenchDemand restart = reset;
  restart.power_cycle_kinds = {PowerCycleKind::kRestart};
  BOOST_TEST(Contains(UnrunnableOn(restart, none), "hibernation"));
  const Bench switched = Parse(kSsh + "  suspend: true\npower: {kind: command, on_command: 'true', off_command: 'true'}\n");
  BOOST_TEST(UnrunnableOn(loss, switched) == "");
  BOOST_TEST(UnrunnableOn(resume, switched) == "");
  BenchDemand hard = reset;
  hard.power_cycle_kinds = {PowerCycleKind::kHardLoss};
  BOOST_TEST(UnrunnableOn(hard, switched) == "");
  BenchDemand firmware;
  firmware.firmware_model = true;
  firmware.firmware_name = "vendor-2.0";
  BOOST_TEST(Contains(UnrunnableOn(firmware, none), "no way to install 'vendor-2.0'"));
  BenchDemand clear;
  clear.operation = Operation::kClear;
  const Status refused = RefusedSteps({{"s.yaml:3:5", "clear", clear}}, none);
  BOOST_TEST(Contains(refused.message(), "is a whole machine does not allow"), refused.message());
}

BOOST_AUTO_TEST_CASE(ssh_never_prompts_and_its_words_are_read_back) {
  SshTarget t;
  t.host = "lab-board-7";
  t.user = "root";
  t.port = 2222;
  t.options = {"-i", "/k"};
  const auto argv = SshArgv(t);
  BOOST_TEST(argv[0] == "ssh");
  BOOST_TEST(argv[1] == "-T");
  BOOST_TEST(argv[3] == "BatchMode=yes");  // before any bench option: ssh keeps the first value
  BOOST_TEST(argv[argv.size() - 2] == "root@lab-board-7");
  BOOST_TEST(argv.back() == "tpmlab-agent --stdio");
  BOOST_TEST((DiagnoseSsh("ssh: connect to host 127.0.0.1 port 9: Connection refused\n", 255).outcome ==
              SshOutcome::kUnreachable));
  const SshDiagnosis auth = DiagnoseSsh("Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\n"
                                        "root@127.0.0.1: Permission denied (publickey).\r\n", 255);
  BOOST_TEST((auth.outcome == SshOutcome::kAuthFailed));
  BOOST_TEST(auth.line == "root@127.0.0.1: Permission denied (publickey).");
  BOOST_TEST((DiagnoseSsh("bash: line 1: tpmlab-agent: command not found\n", 127).outcome == SshOutcome::kNoAgent));
  BOOST_TEST((DiagnoseSsh("", 127).outcome == SshOutcome::kNoAgent));
  BOOST_TEST((DiagnoseSsh("ssh: Could not resolve hostname nowhere: Name or service not known\n", 255).outcome ==
              SshOutcome::kUnresolved));
  BOOST_TEST((DiagnoseSsh("Host key verification failed.\n", 255).outcome == SshOutcome::kHostKey));
}

}  // namespace
}  // namespace tpmlab
