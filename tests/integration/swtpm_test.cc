// The swtpm backend against real swtpm processes: launching (ports, unix
// sockets, a port already taken, a missing binary), every control-channel
// command swtpm 0.7.1 has, supervision and clean stops; OpenDut manufacturing
// a new chip over old state.
#define BOOST_TEST_MODULE swtpm
#include <boost/test/unit_test.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <fstream>

#include "emulated.h"
#include "harness/open_dut.h"

namespace tpmlab::testing {
namespace {

const Bytes kStartupClear = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0};
const Bytes kGetRandom8 = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};

uint32_t ResponseCode(const Bytes& r) { return TpmHeaderCode(r); }

struct Process {
  explicit Process(bool unix_sockets = false, uint16_t port = 0) {
    root = MakeTempDir("swtpm");
    SwtpmConfig c;
    c.state_dir = root / "state";
    c.unix_sockets = unix_sockets;
    c.port = port;
    auto p = SwtpmProcess::Launch(c);
    BOOST_REQUIRE_MESSAGE(p.ok(), p.status().ToString());
    swtpm = std::move(*p);
  }
  ~Process() {
    swtpm.reset();
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }
  fs::path root;
  std::unique_ptr<SwtpmProcess> swtpm;
};

BOOST_AUTO_TEST_CASE(probe_reports_version_and_auto_shutdown_flag) {
  SwtpmCapabilities caps = Require(ProbeSwtpm("swtpm"));
  BOOST_TEST(!caps.version.empty());
  // 0.7.1 has no auto-shutdown, hence no flag to disable it; >= 0.8 has both.
  BOOST_TEST(caps.disable_auto_shutdown == (caps.version.rfind("0.7", 0) != 0));
}

BOOST_AUTO_TEST_CASE(missing_swtpm_names_the_package) {
  SwtpmConfig c;
  c.state_dir = MakeTempDir("missing");
  c.binary = "swtpm-that-is-not-installed";
  auto p = SwtpmProcess::Launch(c);
  BOOST_REQUIRE(!p.ok());
  BOOST_TEST((p.status().layer() == Layer::kEnvironment));
  BOOST_TEST(p.status().message().find("'swtpm'") != std::string::npos, p.status().message());
  fs::remove_all(c.state_dir);
}

BOOST_AUTO_TEST_CASE(a_taken_port_moves_to_another) {
  // Hold a listener on the port we ask for.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint16_t port = 0;
  for (port = 23000; port < 23200; port += 2) {
    in.sin_port = htons(port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof(in)) == 0) break;
  }
  BOOST_REQUIRE(::listen(fd, 1) == 0);
  Process p(false, port);
  BOOST_TEST(p.swtpm->data_endpoint().port != port);
  BOOST_TEST(p.swtpm->alive());
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(data_channel_runs_commands_over_tcp_and_unix) {
  for (bool unix_sockets : {false, true}) {
    Process p(unix_sockets);
    SwtpmTransport t(*p.swtpm);
    Bytes r = Require(t.Exchange(kStartupClear));
    BOOST_TEST(ResponseCode(r) == 0u);
    r = Require(t.Exchange(kGetRandom8));
    BOOST_TEST(ResponseCode(r) == 0u);
    BOOST_TEST(r.size() == 10u + 2u + 8u);
  }
}

BOOST_AUTO_TEST_CASE(every_control_command) {
  Process p;
  SwtpmControl ctrl = p.swtpm->control();
  SwtpmTransport t(*p.swtpm);

  const uint64_t caps = Require(ctrl.GetCapability());
  BOOST_TEST((caps & 0x1) != 0u);      // INIT
  BOOST_TEST((caps & 0x4000) != 0u);   // GET_INFO

  REQUIRE_OK(ctrl.Init(true));
  // After _TPM_Init and before Startup every command answers TPM_RC_INITIALIZE.
  BOOST_TEST(ResponseCode(Require(t.Exchange(kGetRandom8))) == 0x100u);
  BOOST_TEST(ResponseCode(Require(t.Exchange(kStartupClear))) == 0u);
  BOOST_TEST(Require(ctrl.GetTpmEstablished()) == false);

  REQUIRE_OK(ctrl.SetLocality(0));
  REQUIRE_OK(ctrl.CancelTpmCommand());
  BOOST_TEST(Require(ctrl.GetConfig()) == 0u);  // no state encryption keys

  const std::string spec = Require(ctrl.GetInfo(kInfoTpmSpecification));
  BOOST_TEST(spec.find("TPMSpecification") != std::string::npos, spec);
  const std::string attrs = Require(ctrl.GetInfo(kInfoTpmAttributes));
  BOOST_TEST(attrs.find("TPMAttributes") != std::string::npos, attrs);

  BufferSizes sizes = Require(ctrl.SetBufferSize(0));
  BOOST_TEST(sizes.size >= sizes.min);
  BOOST_TEST(sizes.max >= sizes.size);

  // Hashing after Startup is a D-RTM sequence: it sets tpmEstablished, and
  // resetting that needs locality 3 or 4.
  REQUIRE_OK(ctrl.HashStart());
  REQUIRE_OK(ctrl.HashData(AsBytes("d-rtm")));
  REQUIRE_OK(ctrl.HashEnd());
  BOOST_TEST(Require(ctrl.GetTpmEstablished()) == true);
  REQUIRE_OK(ctrl.ResetTpmEstablished(3));
  BOOST_TEST(Require(ctrl.GetTpmEstablished()) == false);

  REQUIRE_OK(ctrl.StoreVolatile());
  BOOST_TEST(fs::exists(p.root / "state" / "tpm2-00.volatilestate"));

  // Save the permanent state, stop, load it back, power on: the TPM answers.
  StateBlob permanent = Require(ctrl.GetStateBlob(StateBlobType::kPermanent));
  BOOST_TEST(permanent.data.size() > 1000u);
  StateBlob saved = Require(ctrl.GetStateBlob(StateBlobType::kVolatile));
  BOOST_TEST(!saved.data.empty());
  REQUIRE_OK(ctrl.Stop());
  // A stopped TPM does not run commands.
  Bytes stopped = Require(t.Exchange(kGetRandom8));
  BOOST_TEST(ResponseCode(stopped) != 0u);
  REQUIRE_OK(ctrl.SetStateBlob(StateBlobType::kPermanent, permanent.data));
  REQUIRE_OK(ctrl.Init(true));
  BOOST_TEST(ResponseCode(Require(t.Exchange(kStartupClear))) == 0u);

  // SetStateBlob on a running TPM is refused, and the error says why.
  Status refused = ctrl.SetStateBlob(StateBlobType::kPermanent, permanent.data);
  BOOST_TEST(!refused.ok());
  BOOST_TEST(refused.message().find("CMD_SET_STATEBLOB") != std::string::npos, refused.message());

  // CMD_SHUTDOWN ends the process.
  REQUIRE_OK(ctrl.Shutdown());
  BOOST_TEST(p.swtpm->EndedWithin(std::chrono::milliseconds(3000)));
}

BOOST_AUTO_TEST_CASE(supervision_notices_an_exit_and_keeps_the_log_tail) {
  Process p;
  BOOST_TEST(p.swtpm->CheckAlive().ok());
  ::kill(p.swtpm->pid(), SIGKILL);
  BOOST_TEST(p.swtpm->EndedWithin(std::chrono::milliseconds(3000)));
  Status dead = p.swtpm->CheckAlive();
  BOOST_TEST(!dead.ok());
  BOOST_TEST(dead.message().find("killed by signal") != std::string::npos, dead.message());
  BOOST_TEST(dead.message().find("log tail") != std::string::npos);
  // A relaunch comes back on the same ports.
  const uint16_t port = p.swtpm->data_endpoint().port;
  REQUIRE_OK(p.swtpm->Relaunch());
  BOOST_TEST(p.swtpm->data_endpoint().port == port);
  SwtpmTransport t(*p.swtpm);
  BOOST_TEST(ResponseCode(Require(t.Exchange(kStartupClear))) == 0u);
}

BOOST_AUTO_TEST_CASE(a_frozen_tpm_times_out_instead_of_hanging) {
  Process p;
  SwtpmTransport t(*p.swtpm);
  t.set_command_timeout(std::chrono::milliseconds(200));
  BOOST_TEST(ResponseCode(Require(t.Exchange(kStartupClear))) == 0u);
  p.swtpm->Freeze(true);
  const auto start = std::chrono::steady_clock::now();
  auto r = t.Exchange(kGetRandom8);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().timed_out());
  BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(5)));
  p.swtpm->Freeze(false);
}

// OpenDut, asked for a new chip, removes the old state in the folder first;
// state it cannot remove is an error naming the folder, not a launch that
// fails later for another reason.
BOOST_AUTO_TEST_CASE(a_new_chip_replaces_old_state_or_says_why_it_cannot) {
  const fs::path root = MakeTempDir("open-dut");
  DutRequest request;
  request.emulated.state_dir = root / "dut0";
  request.emulated.initial_state = ProvisionedTemplate();  // a chip manufactured once per program
  request.manufacture_new = true;
  fs::create_directories(request.emulated.state_dir);
  std::ofstream(request.emulated.state_dir / "left-over") << "an old chip's file\n";
  {
    std::unique_ptr<Dut> dut = Require(OpenDut(std::nullopt, request));
    BOOST_TEST(!fs::exists(request.emulated.state_dir / "left-over"));
    BOOST_TEST(dut->emulated());
    dut->Close();
  }
  // A file where a folder of the path should be: remove_all fails (ENOTDIR).
  std::ofstream(root / "a-file") << "x\n";
  request.emulated.state_dir = root / "a-file" / "dut0";
  auto refused = OpenDut(std::nullopt, request);
  BOOST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.status().layer() == Layer::kEmulator));
  const std::string m = refused.status().message();
  BOOST_TEST(m.find("cannot remove the old emulator state in " + request.emulated.state_dir.string()) !=
                 std::string::npos, m);
  fs::remove_all(root);
}

}  // namespace
}  // namespace tpmlab::testing
