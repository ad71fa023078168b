// The simulator framings tpmlab serve parses (harness/serve_protocol.h): raw
// and mssim data frames fed whole, byte by byte and back to back; bad tags,
// lengths and codes closed with the byte offset named; the swtpm control and
// mssim platform requests; --fault specs.
#define BOOST_TEST_MODULE serve_protocol
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

#include "harness/serve.h"
#include "harness/serve_protocol.h"

namespace tpmlab::serve {
namespace {

Bytes Hex(std::string text) {
  text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
  auto bytes = FromHex(text);
  BOOST_REQUIRE_MESSAGE(bytes.ok(), "bad hex in the test: " + text);
  return *bytes;
}

// TPM2_GetRandom(16): 12 bytes.
const std::string kGetRandom = "8001 0000000c 0000017b 0010";

BOOST_AUTO_TEST_CASE(raw_command_whole_and_byte_by_byte) {
  const Bytes frame = Hex(kGetRandom);
  DataParser whole;
  whole.Feed(frame);
  auto r = whole.Next();
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(r->has_value());
  BOOST_TEST(!(*r)->mssim_framing);
  BOOST_TEST(!(*r)->locality.has_value());
  BOOST_TEST((*r)->command == frame);
  BOOST_TEST(whole.pending() == 0u);

  DataParser split;
  for (size_t i = 0; i < frame.size(); ++i) {
    auto none = split.Next();
    BOOST_REQUIRE(none.ok());
    BOOST_TEST(!none->has_value(), "a request before byte " << i);
    split.Feed(ByteView(frame).subspan(i, 1));
  }
  auto got = split.Next();
  BOOST_REQUIRE(got.ok());
  BOOST_REQUIRE(got->has_value());
  BOOST_TEST((*got)->command == frame);
}

BOOST_AUTO_TEST_CASE(mssim_frames_back_to_back_then_session_end) {
  // TPM_SEND_COMMAND, locality 3, length 12, the command; twice; TPM_SESSION_END.
  const Bytes one = Hex("00000008 03 0000000c" + kGetRandom);
  Bytes stream = one;
  stream.insert(stream.end(), one.begin(), one.end());
  const Bytes end = Hex("00000014");
  stream.insert(stream.end(), end.begin(), end.end());
  DataParser p;
  p.Feed(stream);
  for (uint64_t offset : {uint64_t{0}, uint64_t{21}}) {
    auto r = p.Next();
    BOOST_REQUIRE(r.ok());
    BOOST_REQUIRE(r->has_value());
    BOOST_TEST((*r)->mssim_framing);
    BOOST_TEST(*(*r)->locality == 3);
    BOOST_TEST((*r)->offset == offset);
    BOOST_TEST((*r)->command == Hex(kGetRandom));
  }
  auto r = p.Next();
  BOOST_REQUIRE(r.ok());
  BOOST_REQUIRE(r->has_value());
  BOOST_TEST(((*r)->kind == DataRequest::Kind::kSessionEnd));
  BOOST_TEST((*r)->offset == 42u);
}

BOOST_AUTO_TEST_CASE(mssim_short_reads_wait_for_more) {
  DataParser p;
  p.Feed(Hex("000000"));
  BOOST_TEST(!p.Next()->has_value());
  p.Feed(Hex("08 00 000000"));
  BOOST_TEST(!p.Next()->has_value());
  p.Feed(Hex("0c 8001 0000000c 0000"));
  BOOST_TEST(!p.Next()->has_value());
  p.Feed(Hex("017b 0010"));
  auto r = p.Next();
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->has_value());
}

void ExpectBad(const Bytes& bytes, uint64_t offset, const std::string& words) {
  DataParser p;
  p.Feed(bytes);
  auto r = p.Next();
  BOOST_REQUIRE_MESSAGE(!r.ok(), "accepted " + ToHex(bytes));
  BOOST_TEST((r.status().layer() == Layer::kParse));
  BOOST_TEST(r.status().offset().value_or(999) == offset);
  BOOST_TEST(r.status().message().find("byte offset " + std::to_string(offset)) != std::string::npos,
             r.status().message());
  BOOST_TEST(r.status().message().find(words) != std::string::npos, r.status().message());
}

BOOST_AUTO_TEST_CASE(bad_frames_name_the_byte_offset) {
  ExpectBad(Hex("8003 0000000c 0000017b 0010"), 0, "tag 0x8003");
  ExpectBad(Hex("8001 00000009 0000017b 00"), 2, "command size 9");
  ExpectBad(Hex("8001 00100000 0000017b 0010"), 2, "command size 1048576");
  ExpectBad(Hex("00000063"), 0, "data port code 0x63");
  ExpectBad(Hex("00000008 00 00001001"), 5, "length 4097");
  ExpectBad(Hex("00000008 00 0000000c 8001 0000000e 0000017b 0010"), 11, "header says 14");
  // After a good request, the offset counts from the connection's start.
  DataParser p;
  p.Feed(Hex(kGetRandom + "8001 00000002 0000017b"));
  BOOST_REQUIRE(p.Next()->has_value());
  auto r = p.Next();
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(*r.status().offset() == 14u);
}

BOOST_AUTO_TEST_CASE(responses_are_framed_for_mssim_only) {
  const Bytes response = Hex("8001 0000000a 00000000");
  BOOST_TEST(FrameResponse(response, false) == response);
  BOOST_TEST(FrameResponse(response, true) == Hex("0000000a 8001 0000000a 00000000 00000000"));
}

BOOST_AUTO_TEST_CASE(swtpm_control_requests) {
  ControlParser p(Flavour::kSwtpm);
  // CMD_SET_LOCALITY 0 (what tcti-swtpm sends before each command), CMD_INIT
  // flags 1, CMD_HASH_DATA of 3 bytes, CMD_GET_CAPABILITY; fed in two halves.
  const Bytes stream = Hex("00000005 00  00000002 00000001  00000007 00000003 aabbcc  00000001");
  p.Feed(ByteView(stream).first(7));
  auto first = p.Next();
  BOOST_REQUIRE(first.ok());
  BOOST_REQUIRE(first->has_value());
  BOOST_TEST((*first)->code == 5u);
  BOOST_TEST((*first)->payload == Hex("00"));
  BOOST_TEST(!p.Next()->has_value());
  p.Feed(ByteView(stream).subspan(7));
  auto init = p.Next();
  BOOST_TEST((*init)->code == 2u);
  BOOST_TEST((*init)->payload == Hex("00000001"));
  auto hash = p.Next();
  BOOST_TEST((*hash)->code == 7u);
  BOOST_TEST((*hash)->payload == Hex("aabbcc"));
  auto caps = p.Next();
  BOOST_TEST((*caps)->code == 1u);
  BOOST_TEST((*caps)->offset == 24u);
  BOOST_TEST(p.pending() == 0u);
}

BOOST_AUTO_TEST_CASE(unknown_control_codes_are_closed_with_the_offset) {
  ControlParser swtpm(Flavour::kSwtpm);
  swtpm.Feed(Hex("00000005 01 0000000d 00"));  // CMD_SET_STATEBLOB is not served
  BOOST_REQUIRE(swtpm.Next()->has_value());
  auto bad = swtpm.Next();
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(*bad.status().offset() == 5u);
  BOOST_TEST(bad.status().message().find("CMD_SET_STATEBLOB") != std::string::npos, bad.status().message());

  ControlParser platform(Flavour::kMssim);
  platform.Feed(Hex("00000006 00002000"));  // TPM_SIGNAL_HASH_DATA longer than 4096
  auto big = platform.Next();
  BOOST_REQUIRE(!big.ok());
  BOOST_TEST(*big.status().offset() == 4u);
}

BOOST_AUTO_TEST_CASE(mssim_platform_signals) {
  ControlParser p(Flavour::kMssim);
  // What tcti-mssim sends when it connects, then when it finalizes.
  p.Feed(Hex("00000001 0000000b 00000014"));
  for (uint32_t code : {mssim::kPowerOn, mssim::kNvOn, mssim::kSessionEnd}) {
    auto r = p.Next();
    BOOST_REQUIRE(r.ok());
    BOOST_REQUIRE(r->has_value());
    BOOST_TEST((*r)->code == code);
    BOOST_TEST((*r)->payload.empty());
  }
  BOOST_TEST(ControlCodeName(Flavour::kMssim, mssim::kNvOn) == "TPM_SIGNAL_NV_ON");
  BOOST_TEST(ControlCodeName(Flavour::kSwtpm, 5) == "CMD_SET_LOCALITY");
}

BOOST_AUTO_TEST_CASE(fault_specs) {
  auto rc = ParseFaultSpec("rc=0x101,cc=0x17b,count=1");
  BOOST_REQUIRE(rc.ok());
  BOOST_TEST((rc->kind == FaultKind::kResponseCode));
  BOOST_TEST(rc->response_code == 0x101u);
  BOOST_TEST(*rc->command_code == 0x17bu);
  BOOST_TEST(rc->count == 1u);
  auto retry = ParseFaultSpec("rc=retry,skip=2,p=0.5");
  BOOST_REQUIRE(retry.ok());
  BOOST_TEST(retry->response_code == kTpmRcRetry);
  BOOST_TEST(retry->skip == 2u);
  BOOST_TEST(retry->probability == 0.5);
  auto latency = ParseFaultSpec("latency=25");
  BOOST_REQUIRE(latency.ok());
  BOOST_TEST(latency->latency.count() == 25);
  BOOST_TEST((ParseFaultSpec("corrupt")->kind == FaultKind::kCorrupt));
  for (const char* bad : {"", "slow", "latency", "latency=x", "rc=0", "corrupt=1", "rc=1,cc=", "rc=1,count=0",
                          "rc=1,p=2", "rc=1,when=3", "drop,cc=0x1ffffffff"}) {
    auto r = ParseFaultSpec(bad);
    BOOST_TEST(!r.ok(), "accepted '" << bad << "'");
    if (!r.ok()) {
      BOOST_TEST((r.status().kind() == ErrorKind::kBadInput));
      BOOST_TEST(r.status().message().find(std::string("--fault ") + bad) == 0, r.status().message());
    }
  }
}

}  // namespace
}  // namespace tpmlab::serve
