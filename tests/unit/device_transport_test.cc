// DeviceTransport without hardware: a SOCK_SEQPACKET socketpair keeps
// message boundaries like the TPM character device (one write per command,
// one read per response), its far end served by a thread that answers like
// a TPM, never answers, or hangs up. The last case opens /dev/tpmrm0 when the
// machine has one.
#define BOOST_TEST_MODULE device_transport
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "drivers/bytes.h"
#include "drivers/device_transport.h"
#include "needs.h"

namespace tpmlab {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kCcGetRandom = 0x17B;
constexpr uint32_t kCcStartup = 0x144;

Bytes Message(uint16_t tag, uint32_t code, ByteView params = {}) {
  ByteWriter w;
  w.U16(tag).U32(static_cast<uint32_t>(kTpmHeaderSize + params.size())).U32(code).Append(params);
  return w.Take();
}

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The far end of the pair: what a TPM behind the device would do.
enum class Peer { kAnswer, kSilent, kHangUp, kAnswerInPieces };

struct FakeDevice {
  int near = -1, far = -1;
  std::thread thread;
  std::atomic<int> commands{0};

  explicit FakeDevice(Peer peer, int type = SOCK_SEQPACKET) {
    int fds[2];
    BOOST_REQUIRE_EQUAL(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds), 0);
    near = fds[0];
    far = fds[1];
    thread = std::thread([this, peer] { Serve(peer); });
  }
  ~FakeDevice() {
    ::shutdown(far, SHUT_RDWR);
    if (thread.joinable()) thread.join();
    ::close(far);
  }

  void Serve(Peer peer) {
    uint8_t buf[kTpmMaxMessage];
    for (;;) {
      const ssize_t n = ::read(far, buf, sizeof buf);
      if (n <= 0) return;
      ++commands;
      if (peer == Peer::kHangUp) {
        ::shutdown(far, SHUT_RDWR);
        return;
      }
      if (peer == Peer::kSilent) continue;
      // Echo the command code back as a 4-byte parameter of a success response.
      const uint8_t code[4] = {buf[6], buf[7], buf[8], buf[9]};
      const Bytes response = Message(0x8001, 0, ByteView(code, 4));
      if (peer == Peer::kAnswerInPieces) {
        (void)!::write(far, response.data(), 3);
        std::this_thread::sleep_for(20ms);
        (void)!::write(far, response.data() + 3, response.size() - 3);
      } else {
        (void)!::write(far, response.data(), response.size());
      }
    }
  }
};

BOOST_AUTO_TEST_CASE(exchanges_whole_messages) {
  FakeDevice dev(Peer::kAnswer);
  auto t = DeviceTransport::FromFd(dev.near, "fake-tpmrm0");
  for (uint32_t code : {kCcStartup, kCcGetRandom}) {
    auto r = t->Exchange(Message(0x8001, code, Bytes{0, 8}));
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    BOOST_TEST(r->size() == kTpmHeaderSize + 4);
    const Bytes& b = *r;
    BOOST_TEST((uint32_t{b[10]} << 24 | uint32_t{b[11]} << 16 | uint32_t{b[12]} << 8 | b[13]) == code);
  }
  BOOST_TEST(dev.commands == 2);
  BOOST_TEST(t->info().description == "fake-tpmrm0");
  BOOST_TEST(t->info().name == "tpmrm");
}

BOOST_AUTO_TEST_CASE(a_response_in_pieces_is_read_whole) {
  FakeDevice dev(Peer::kAnswerInPieces, SOCK_STREAM);
  auto t = DeviceTransport::FromFd(dev.near, "stream");
  auto r = t->Exchange(Message(0x8001, kCcGetRandom));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->size() == kTpmHeaderSize + 4);
}

BOOST_AUTO_TEST_CASE(silence_times_out_within_budget_and_reopens) {
  FakeDevice dev(Peer::kSilent);
  FakeDevice second(Peer::kAnswer);
  int reopens = 0;
  auto t = DeviceTransport::FromFd(dev.near, "/dev/fake", [&]() -> Result<int> {
    ++reopens;
    // The second device takes over; dup so both FakeDevices keep their own fd.
    return ::dup(second.near);
  });
  dev.near = -1;  // owned by the transport now
  t->set_command_timeout(150ms);
  const auto start = std::chrono::steady_clock::now();
  auto r = t->Exchange(Message(0x8001, kCcGetRandom));
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().timed_out());
  BOOST_TEST(Contains(r.status().message(), "/dev/fake"), r.status().message());
  BOOST_TEST(Contains(r.status().message(), "150 ms"), r.status().message());
  BOOST_TEST((took >= 140ms));
  BOOST_TEST((took < 1000ms));
  // Exchange abandoned the response: the device was closed and reopened.
  BOOST_TEST(reopens == 1);
  auto again = t->Exchange(Message(0x8001, kCcStartup));
  BOOST_REQUIRE_MESSAGE(again.ok(), again.status().ToString());
}

BOOST_AUTO_TEST_CASE(transmit_then_receive) {
  FakeDevice dev(Peer::kAnswer);
  auto t = DeviceTransport::FromFd(dev.near, "slow");
  // Transmit and Receive apart, as the TCTI adapter calls them.
  BOOST_REQUIRE(t->Transmit(Message(0x8001, kCcGetRandom)).ok());
  auto r = t->Receive(2000ms);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
}

BOOST_AUTO_TEST_CASE(a_device_that_hangs_up_is_a_clear_error) {
  FakeDevice dev(Peer::kHangUp);
  auto t = DeviceTransport::FromFd(dev.near, "/dev/gone");
  t->set_command_timeout(2000ms);
  const auto start = std::chrono::steady_clock::now();
  auto r = t->Exchange(Message(0x8001, kCcGetRandom));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(!r.status().timed_out());
  BOOST_TEST((r.status().layer() == Layer::kTransport));
  BOOST_TEST(Contains(r.status().message(), "/dev/gone"), r.status().message());
  BOOST_TEST(Contains(r.status().message(), "closed"), r.status().message());
  BOOST_TEST((std::chrono::steady_clock::now() - start < 1000ms));
  // The next command fails on write, naming the device, and does not hang.
  auto next = t->Exchange(Message(0x8001, kCcGetRandom));
  BOOST_REQUIRE(!next.ok());
  BOOST_TEST(Contains(next.status().message(), "/dev/gone"), next.status().message());
}

BOOST_AUTO_TEST_CASE(without_reopen_an_abandoned_device_says_so) {
  FakeDevice dev(Peer::kSilent);
  auto t = DeviceTransport::FromFd(dev.near, "/dev/once");
  t->set_command_timeout(50ms);
  BOOST_REQUIRE(!t->Exchange(Message(0x8001, kCcGetRandom)).ok());
  dev.near = -1;
  auto r = t->Exchange(Message(0x8001, kCcGetRandom));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(Contains(r.status().message(), "abandoned"), r.status().message());
}

BOOST_AUTO_TEST_CASE(cancel_and_locality) {
  FakeDevice dev(Peer::kAnswer);
  auto t = DeviceTransport::FromFd(dev.near, "/dev/tpm0");
  BOOST_TEST(t->info().name == "tpm-device");
  const Status cancel = t->Cancel();
  BOOST_TEST(!cancel.ok());
  BOOST_TEST(Contains(cancel.message(), "no cancel"), cancel.message());
  BOOST_TEST(t->SetLocality(0).ok());
  const Status l3 = t->SetLocality(3);
  BOOST_TEST(!l3.ok());
  BOOST_TEST(Contains(l3.message(), "locality 0"), l3.message());
}

BOOST_AUTO_TEST_CASE(open_errors_name_the_path_and_the_fix) {
  auto missing = DeviceTransport::Open("/nonexistent/tpmrm9");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(Contains(missing.status().message(), "/nonexistent/tpmrm9"), missing.status().message());
  BOOST_TEST(Contains(missing.status().message(), "no TPM device"), missing.status().message());
  BOOST_TEST(Contains(DeviceTransport::OpenErrorHint(EACCES, "/dev/tpmrm0"), "run as root or join group tss"));
  BOOST_TEST(Contains(DeviceTransport::OpenErrorHint(EBUSY, "/dev/tpm0"), "another process has /dev/tpm0 open"));
}

// Integration: the host's own TPM, when there is one. TPM2_GetRandom(8) must
// come back TPM_RC_SUCCESS (or an initialisation error on a TPM nobody started).
BOOST_AUTO_TEST_CASE(host_tpmrm0_when_present, TPMLAB_NEEDS("device", "/dev/tpmrm0")) {
  auto t = DeviceTransport::Open("/dev/tpmrm0");
  if (!t.ok()) {
    BOOST_TEST_MESSAGE("skipped: " << t.status().ToString());
    return;
  }
  (*t)->set_command_timeout(5000ms);
  auto r = (*t)->Exchange(Message(0x8001, kCcGetRandom, Bytes{0, 8}));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(r->size() >= kTpmHeaderSize);
}

}  // namespace
}  // namespace tpmlab
