// Power through a BMC against real services on loopback: OpenIPMI's ipmi_sim
// driven by ipmitool (IpmiPower), whose chassis is tests/support/ipmi_vm.py
// connected back as QEMU's ipmi-bmc-extern would be, and
// tests/support/redfish_sim.py over HTTPS with a certificate made here
// (RedfishPower). Every service is a ChildProcess that dies with the test.
#define BOOST_TEST_MODULE bmc_power_test
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "drivers/bmc_power.h"
#include "drivers/process.h"
#include "needs.h"

namespace fs = std::filesystem;
using namespace tpmlab;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace {

const fs::path kSupport = fs::path(TPMLAB_SOURCE_DIR) / "tests/support";
const char* const kPassword = "Tpm-lab.s3cret";

#define EXPECT_OK(expr)                                               \
  do {                                                                \
    ::tpmlab::Status expect_ok_ = ::tpmlab::internal::AsStatus(expr); \
    BOOST_REQUIRE_MESSAGE(expect_ok_.ok(), expect_ok_.ToString());    \
  } while (0)

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A port nobody holds right now (the kernel's pick), for UDP or TCP.
uint16_t FreePort(int type) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const fs::path& file, const std::string& text, fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
  std::ofstream(file) << text;
  fs::permissions(file, mode);
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "tpmlab-bmc-XXXXXX").string();
    path = ::mkdtemp(t.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

ChildProcess SpawnDying(const std::vector<std::string>& argv, const fs::path& log) {
  ChildProcess::Options o;
  o.die_with_parent = true;
  o.whole_group = true;  // the chassis ipmi_sim starts goes too
  auto child = ChildProcess::Spawn(argv, log, o);
  BOOST_REQUIRE_MESSAGE(child.ok(), child.status().ToString());
  return std::move(*child);
}

// ipmi_sim on 127.0.0.1 with one admin user; power on starts ipmi_vm.py.
struct IpmiSim {
  TempDir dir;
  uint16_t port = FreePort(SOCK_DGRAM);
  uint16_t vm_port = FreePort(SOCK_STREAM);
  fs::path events = dir.path / "events";
  fs::path password_file = dir.path / "bmc.pw";
  ChildProcess sim;

  IpmiSim() {
    fs::create_directories(dir.path / "state");
    Write(password_file, std::string(kPassword) + "\n");
    Write(dir.path / "chassis.sh",
          "#!/bin/sh\nexec /usr/bin/python3 " + (kSupport / "ipmi_vm.py").string() + " 127.0.0.1 " +
              std::to_string(vm_port) + " " + events.string() + "\n",
          fs::perms::owner_all);
    std::ostringstream lan;
    lan << "name \"tpmlab-test\"\nset_working_mc 0x20\nstartlan 1\n  addr 127.0.0.1 " << port
        << "\n  priv_limit admin\n";
    for (const char* who : {"callback", "user", "operator", "admin"}) {
      lan << "  allowed_auths_" << who << " none md2 md5 straight\n";
    }
    lan << "  guid a123456789abcdefa123456789abcdef\nendlan\n"
        << "serial 15 127.0.0.1 " << vm_port << " codec VM\n"
        << "user 2 true \"admin\" \"" << kPassword << "\" admin 10 none md2 md5 straight\n"
        << "startcmd \"" << (dir.path / "chassis.sh").string() << "\"\nstartnow false\npoweroff_wait 2\nkill_wait 5\n";
    Write(dir.path / "lan.conf", lan.str());
    Write(dir.path / "bmc.emu",
          "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n");
    sim = SpawnDying({"ipmi_sim", "-c", (dir.path / "lan.conf").string(), "-f", (dir.path / "bmc.emu").string(), "-s",
                      (dir.path / "state").string(), "-n"},
                     dir.path / "ipmi_sim.log");
    // Up when it answers.
    auto power = Power();
    const auto deadline = SteadyClock::now() + std::chrono::seconds(30);
    while (!power->IsOn().ok()) {
      BOOST_REQUIRE_MESSAGE(sim.running(), "ipmi_sim ended: " + ReadAll(dir.path / "ipmi_sim.log"));
      BOOST_REQUIRE_MESSAGE(SteadyClock::now() < deadline, "ipmi_sim did not answer within 30 s");
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  ~IpmiSim() { sim.Kill(SIGTERM, milliseconds(5000)); }

  IpmiPowerConfig Config() const {
    IpmiPowerConfig c;
    c.host = "127.0.0.1";
    c.port = port;
    c.user = "admin";
    c.password.file = password_file;
    c.off_time = milliseconds(500);
    c.timeout = milliseconds(30000);
    return c;
  }
  std::unique_ptr<IpmiPower> Power(IpmiPowerConfig c) const {
    auto p = IpmiPower::Create(std::move(c));
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    return std::move(*p);
  }
  std::unique_ptr<IpmiPower> Power() const { return Power(Config()); }
  std::string Events() const { return ReadAll(events); }
  // The chassis writes its events a moment after ipmi_sim started it (Python
  // starting up): the events once `word` appears `n` times, or after 20 s.
  std::string EventsOnce(const std::string& word, size_t n) const;
};

size_t Count(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

std::string IpmiSim::EventsOnce(const std::string& word, size_t n) const {
  const auto deadline = SteadyClock::now() + std::chrono::seconds(20);
  std::string text = Events();
  while (Count(text, word) < n && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(50));
    text = Events();
  }
  return text;
}

bool IsOn(IpmiPower& p) {
  auto on = p.IsOn();
  BOOST_REQUIRE_MESSAGE(on.ok(), on.status().ToString());
  return *on;
}


}  // namespace

#define IPMI_SIM_NEEDED                                 \
  TPMLAB_NEEDS("ipmi_sim", "/usr/bin/ipmi_sim") *        \
      boost::unit_test::precondition(::tpmlab::test::PathPresent{"/usr/bin/ipmitool"})

BOOST_AUTO_TEST_SUITE(ipmi)

BOOST_AUTO_TEST_CASE(on_status_reset_cycle_off, IPMI_SIM_NEEDED) {
  IpmiSim bmc;
  auto power = bmc.Power();
  BOOST_TEST(!IsOn(*power));
  EXPECT_OK(power->On());
  BOOST_TEST(IsOn(*power));
  const std::string started = bmc.EventsOnce("on ", 1);
  BOOST_TEST(Count(started, "on ") == 1u, started);

  // A soft cycle is the BMC's reset: the machine restarts in place.
  auto reset = power->Cycle(PowerCut::kSoft);
  // The chassis connects back to ipmi_sim just after it starts: until then a reset is refused.
  for (int i = 0; i < 40 && !reset.ok(); ++i) {
    std::this_thread::sleep_for(milliseconds(250));
    reset = power->Cycle(PowerCut::kSoft);
  }
  EXPECT_OK(reset);
  const std::string reset_seen = bmc.EventsOnce("reset", 1);
  BOOST_TEST(Count(reset_seen, "reset") == 1u, reset_seen);
  BOOST_TEST(IsOn(*power));

  // A hard cycle: off (the chassis gone), off_time, on (a new chassis).
  const auto start = SteadyClock::now();
  EXPECT_OK(power->Cycle(PowerCut::kHard));
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  BOOST_TEST_MESSAGE("ipmi_sim hard cycle (off, 500 ms, on, each confirmed by chassis power status): " << seconds << " s");
  BOOST_TEST(IsOn(*power));
  const std::string events = bmc.EventsOnce("on ", 2);
  BOOST_TEST(Count(events, "on ") == 2u, events);
  BOOST_TEST((Contains(events, "off\n") || Contains(events, "sigterm\n")), events);

  EXPECT_OK(power->Off(PowerCut::kHard));
  BOOST_TEST(!IsOn(*power));
}

BOOST_AUTO_TEST_CASE(password_from_a_named_environment_variable, IPMI_SIM_NEEDED) {
  IpmiSim bmc;
  ::setenv("TPMLAB_TEST_BMC_PW", kPassword, 1);
  IpmiPowerConfig c = bmc.Config();
  c.password = BmcSecret{{}, "TPMLAB_TEST_BMC_PW"};
  auto power = bmc.Power(c);
  BOOST_TEST(!IsOn(*power));
  ::unsetenv("TPMLAB_TEST_BMC_PW");
  // Unset: refused before anything is sent, naming the variable.
  auto unset = IpmiPower::Create(c);
  BOOST_REQUIRE(!unset.ok());
  BOOST_TEST(Contains(unset.status().message(), "TPMLAB_TEST_BMC_PW is not set"), unset.status().message());
}

BOOST_AUTO_TEST_CASE(a_wrong_password_is_named_without_the_password, IPMI_SIM_NEEDED) {
  IpmiSim bmc;
  const fs::path wrong = bmc.dir.path / "wrong.pw";
  Write(wrong, "not-the-Passw0rd\n");
  IpmiPowerConfig c = bmc.Config();
  c.password.file = wrong;
  c.retries = 1;
  auto power = bmc.Power(c);
  auto on = power->IsOn();
  BOOST_REQUIRE(!on.ok());
  const std::string m = on.status().message();
  BOOST_TEST_MESSAGE(m);
  BOOST_TEST(Contains(m, "127.0.0.1:" + std::to_string(bmc.port)), m);
  BOOST_TEST(Contains(m, "refused the password"), m);
  BOOST_TEST(!Contains(m, "not-the-Passw0rd"), m);
  BOOST_TEST(!Contains(m, kPassword), m);
}

BOOST_AUTO_TEST_CASE(a_password_file_others_can_read_is_refused) {
  TempDir dir;
  const fs::path file = dir.path / "bmc.pw";
  Write(file, "secret\n", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  IpmiPowerConfig c;
  c.host = "127.0.0.1";
  c.user = "admin";
  c.password.file = file;
  auto power = IpmiPower::Create(c);
  BOOST_REQUIRE(!power.ok());
  BOOST_TEST(Contains(power.status().message(), "mode 0640"), power.status().message());
  BOOST_TEST(Contains(power.status().message(), "chmod 600"), power.status().message());
  BOOST_TEST((power.status().kind() == ErrorKind::kBadInput));
}

BOOST_AUTO_TEST_CASE(a_bmc_that_does_not_answer_fails_in_time, IPMI_SIM_NEEDED) {
  TempDir dir;
  Write(dir.path / "bmc.pw", "secret\n");
  IpmiPowerConfig c;
  c.host = "127.0.0.1";
  c.port = FreePort(SOCK_DGRAM);  // nobody listens there
  c.user = "admin";
  c.password.file = dir.path / "bmc.pw";
  c.retries = 1;
  c.retry_seconds = 1;
  c.timeout = milliseconds(20000);
  auto power = IpmiPower::Create(c);
  BOOST_REQUIRE_MESSAGE(power.ok(), power.status().ToString());
  const auto start = SteadyClock::now();
  auto on = (*power)->On();
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  BOOST_REQUIRE(!on.ok());
  BOOST_TEST_MESSAGE(on.message() << " (after " << seconds << " s)");
  BOOST_TEST(seconds < 20.0);
  BOOST_TEST(Contains(on.message(), "127.0.0.1:" + std::to_string(c.port)), on.message());
  BOOST_TEST(Contains(on.message(), "no BMC answered"), on.message());
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

// redfish_sim.py over HTTPS with a self-signed certificate for 127.0.0.1.
struct RedfishSim {
  TempDir dir;
  fs::path cert = dir.path / "cert.pem", key = dir.path / "key.pem";
  fs::path password_file = dir.path / "rf.pw";
  fs::path events = dir.path / "events";
  uint16_t port = 0;
  ChildProcess sim;

  explicit RedfishSim(const std::string& reset_types = "On,ForceOff,GracefulShutdown,ForceRestart,PowerCycle",
                      int transition_ms = 0) {
    Write(password_file, std::string(kPassword) + "\n");
    auto made = RunProgram({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.string(), "-out",
                            cert.string(), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1"},
                           dir.path / "openssl.log", milliseconds(60000));
    BOOST_REQUIRE_MESSAGE(made.ok() && *made == 0, "openssl req: " + ReadAll(dir.path / "openssl.log"));
    const fs::path port_file = dir.path / "port";
    sim = SpawnDying({"/usr/bin/python3", (kSupport / "redfish_sim.py").string(), "--cert", cert.string(), "--key",
                      key.string(), "--user", "admin", "--password-file", password_file.string(), "--port-file",
                      port_file.string(), "--events", events.string(), "--reset-types", reset_types,
                      "--transition-ms", std::to_string(transition_ms)},
                     dir.path / "redfish_sim.log");
    const auto deadline = SteadyClock::now() + std::chrono::seconds(30);
    while (!fs::exists(port_file)) {
      BOOST_REQUIRE_MESSAGE(sim.running(), "redfish_sim.py ended: " + ReadAll(dir.path / "redfish_sim.log"));
      BOOST_REQUIRE_MESSAGE(SteadyClock::now() < deadline, "redfish_sim.py did not start within 30 s");
      std::this_thread::sleep_for(milliseconds(50));
    }
    port = static_cast<uint16_t>(std::stoi(ReadAll(port_file)));
  }
  ~RedfishSim() { sim.Kill(SIGTERM, milliseconds(5000)); }

  RedfishPowerConfig Config() const {
    RedfishPowerConfig c;
    c.url = "https://127.0.0.1:" + std::to_string(port);
    c.user = "admin";
    c.password.file = password_file;
    c.ca_file = cert;
    c.off_time = milliseconds(300);
    c.settle = milliseconds(20000);
    return c;
  }
  std::unique_ptr<RedfishPower> Power(RedfishPowerConfig c) const {
    auto p = RedfishPower::Create(std::move(c));
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    return std::move(*p);
  }
  std::unique_ptr<RedfishPower> Power() const { return Power(Config()); }
  std::string Events() const { return ReadAll(events); }
};

bool IsOn(RedfishPower& p) {
  auto on = p.IsOn();
  BOOST_REQUIRE_MESSAGE(on.ok(), on.status().ToString());
  return *on;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redfish)

BOOST_AUTO_TEST_CASE(certificates_are_verified_unless_the_bench_says_not) {
  RedfishSim service;
  RedfishPowerConfig c = service.Config();
  c.ca_file.clear();  // the system's CAs: they never signed the test's certificate
  auto untrusted = service.Power(c)->IsOn();
  BOOST_REQUIRE(!untrusted.ok());
  const std::string m = untrusted.status().message();
  BOOST_TEST_MESSAGE(m);
  BOOST_TEST(Contains(m, "https://127.0.0.1:" + std::to_string(service.port)), m);
  BOOST_TEST(Contains(m, "certificate"), m);
  BOOST_TEST(Contains(m, "ca_file"), m);

  BOOST_TEST(!IsOn(*service.Power()));  // with ca_file: the test's certificate is trusted

  c.verify_tls = false;
  BOOST_TEST(!IsOn(*service.Power(c)));
}

BOOST_AUTO_TEST_CASE(each_reset_type_moves_power_state) {
  RedfishSim service;
  auto power = service.Power();
  EXPECT_OK(power->Discover());
  BOOST_TEST(power->system() == "/redfish/v1/Systems/1");
  BOOST_TEST(power->reset_types().size() == 5u);

  EXPECT_OK(power->On());
  BOOST_TEST(IsOn(*power));
  EXPECT_OK(power->Cycle(PowerCut::kSoft));  // ForceRestart: on again
  BOOST_TEST(IsOn(*power));
  EXPECT_OK(power->Off(PowerCut::kSoft));
  BOOST_TEST(!IsOn(*power));
  EXPECT_OK(power->Cycle(PowerCut::kHard));  // ForceOff (already off), wait, On
  BOOST_TEST(IsOn(*power));
  EXPECT_OK(power->Reset("GracefulShutdown"));
  BOOST_TEST(!IsOn(*power));
  EXPECT_OK(power->Reset("PowerCycle"));
  BOOST_TEST(IsOn(*power));
  BOOST_TEST(service.Events() ==
             "On On\nForceRestart On\nForceOff Off\nForceOff Off\nOn On\nGracefulShutdown Off\nPowerCycle On\n");
}

BOOST_AUTO_TEST_CASE(transitions_are_waited_for) {
  RedfishSim service("On,ForceOff,PowerCycle", 800);
  RedfishPowerConfig c = service.Config();
  c.system = "/redfish/v1/Systems/1";  // named by the bench: no discovery through the collection
  auto power = service.Power(c);
  const auto start = SteadyClock::now();
  EXPECT_OK(power->On());  // PoweringOn for 0.8 s
  BOOST_TEST(std::chrono::duration<double>(SteadyClock::now() - start).count() >= 0.7);
  BOOST_TEST(IsOn(*power));
  EXPECT_OK(power->Cycle(PowerCut::kSoft));  // no ForceRestart offered: PowerCycle
  BOOST_TEST(Contains(service.Events(), "PowerCycle"), service.Events());
  BOOST_TEST(IsOn(*power));
}

BOOST_AUTO_TEST_CASE(a_reset_type_not_offered_is_refused_naming_those_offered) {
  RedfishSim service("On,ForceOff");
  auto power = service.Power();
  auto cycle = power->Cycle(PowerCut::kSoft);
  BOOST_REQUIRE(!cycle.ok());
  BOOST_TEST_MESSAGE(cycle.message());
  BOOST_TEST(Contains(cycle.message(), "ForceRestart, PowerCycle"), cycle.message());
  BOOST_TEST(Contains(cycle.message(), "offers On, ForceOff"), cycle.message());
  auto nmi = power->Reset("Nmi");
  BOOST_REQUIRE(!nmi.ok());
  BOOST_TEST(Contains(nmi.message(), "does not offer ResetType Nmi (it offers On, ForceOff)"), nmi.message());
  BOOST_TEST(service.Events().empty());  // nothing was posted
}

BOOST_AUTO_TEST_CASE(bad_credentials_are_named_without_the_password) {
  RedfishSim service;
  ::setenv("TPMLAB_TEST_RF_PW", "wrong-Passw0rd", 1);
  RedfishPowerConfig c = service.Config();
  c.password = BmcSecret{{}, "TPMLAB_TEST_RF_PW"};
  auto on = service.Power(c)->IsOn();
  ::unsetenv("TPMLAB_TEST_RF_PW");
  BOOST_REQUIRE(!on.ok());
  const std::string m = on.status().message();
  BOOST_TEST_MESSAGE(m);
  BOOST_TEST(Contains(m, "refused user admin"), m);
  BOOST_TEST(Contains(m, "HTTP 401"), m);
  BOOST_TEST(Contains(m, "password_env TPMLAB_TEST_RF_PW"), m);
  BOOST_TEST(!Contains(m, "wrong-Passw0rd"), m);
}

BOOST_AUTO_TEST_CASE(a_service_that_is_not_there) {
  RedfishPowerConfig c;
  c.url = "https://127.0.0.1:" + std::to_string(FreePort(SOCK_STREAM));
  c.user = "admin";
  TempDir dir;
  Write(dir.path / "pw", "x\n");
  c.password.file = dir.path / "pw";
  auto power = RedfishPower::Create(c);
  BOOST_REQUIRE(power.ok());
  auto on = (*power)->IsOn();
  BOOST_REQUIRE(!on.ok());
  BOOST_TEST(Contains(on.status().message(), c.url), on.status().message());
}

BOOST_AUTO_TEST_SUITE_END()
