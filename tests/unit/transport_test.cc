// The Transport base class (sequencing, framing, timeouts) through
// FakeTransport, the TraceTransport decorator, and the big-endian
// ByteReader/ByteWriter every layer marshals with.
#define BOOST_TEST_MODULE transport
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <thread>

#include "drivers/bytes.h"
#include "drivers/fake_transport.h"
#include "drivers/trace.h"
#include "drivers/transport.h"
#include "layer_printing.h"

namespace tpmlab {

namespace {

using namespace std::chrono_literals;

constexpr uint32_t kCcReadClock = 0x181;
constexpr uint32_t kCcGetRandom = 0x17B;
constexpr uint32_t kRcInitialize = 0x100;

// A TPM command or response: tag 8001 (no sessions), size, code, parameters.
Bytes Message(uint32_t code, ByteView params = {}) {
  ByteWriter w;
  w.U16(0x8001).U32(static_cast<uint32_t>(kTpmHeaderSize + params.size())).U32(code).Append(params);
  return w.Take();
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(transport_sequencing)

BOOST_AUTO_TEST_CASE(exchange_returns_the_reply_and_sends_the_command_unchanged) {
  FakeTransport fake;
  const Bytes response = Message(0, Bytes{1, 2, 3});
  fake.Enqueue(response);
  auto r = fake.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  BOOST_TEST(ToHex(*r) == ToHex(response));
  BOOST_REQUIRE(fake.commands().size() == 1u);
  BOOST_TEST(ToHex(fake.commands()[0]) == "80010000000a00000181");
}

BOOST_AUTO_TEST_CASE(receive_without_transmit_is_a_bad_sequence) {
  FakeTransport fake;
  fake.Enqueue(Message(0));
  auto r = fake.Receive(100ms);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().layer() == Layer::kHarness);
  BOOST_TEST(Contains(r.status().message(), "sequence"), r.status().message());
}

BOOST_AUTO_TEST_CASE(transmit_twice_without_receive_is_a_bad_sequence) {
  FakeTransport fake;
  fake.Enqueue(Message(0, Bytes{0xAA}));
  fake.Enqueue(Message(0, Bytes{0xBB}));
  BOOST_REQUIRE(fake.Transmit(Message(kCcReadClock)).ok());
  Status second = fake.Transmit(Message(kCcGetRandom));
  BOOST_TEST(!second.ok());
  BOOST_TEST(second.layer() == Layer::kHarness);
  BOOST_TEST(Contains(second.message(), "sequence"), second.message());
  // The second command never reached the backend, and the first answer is still there.
  BOOST_TEST(fake.commands().size() == 1u);
  auto r = fake.Receive(100ms);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(ToHex(*r) == ToHex(Message(0, Bytes{0xAA})));
}

BOOST_AUTO_TEST_CASE(command_whose_header_size_does_not_match_is_rejected) {
  FakeTransport fake;
  Bytes lying = Message(kCcReadClock);
  lying[5] = 0x0c;  // says 12 bytes, has 10
  Status s = fake.Transmit(lying);
  BOOST_TEST(!s.ok());
  BOOST_TEST(s.layer() == Layer::kHarness);
  BOOST_TEST(Contains(s.message(), "size"), s.message());

  Bytes longer = Message(kCcReadClock, Bytes{0, 0});
  longer[5] = 0x0a;  // says 10 bytes, has 12
  BOOST_TEST(!fake.Transmit(longer).ok());

  const Bytes too_short = {0x80, 0x01, 0x00, 0x00, 0x00, 0x05};
  BOOST_TEST(!fake.Transmit(too_short).ok());
  BOOST_TEST(!fake.Transmit(Bytes{}).ok());

  BOOST_TEST(fake.commands().empty());
  // A rejected command leaves no response owed.
  fake.Enqueue(Message(0));
  BOOST_TEST(fake.Exchange(Message(kCcReadClock)).ok());
}

BOOST_AUTO_TEST_CASE(exchange_timeout_cancels_and_lets_the_next_command_through) {
  FakeTransport fake;
  fake.Enqueue(Status::Timeout("no answer from the fake TPM"));
  fake.Enqueue(Message(0, Bytes{0x42}));

  auto first = fake.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE(!first.ok());
  BOOST_TEST(first.status().timed_out());
  BOOST_TEST(first.status().layer() == Layer::kTransport);
  BOOST_TEST(fake.cancels() == 1);

  auto second = fake.Exchange(Message(kCcGetRandom));
  BOOST_REQUIRE_MESSAGE(second.ok(), second.status().ToString());
  BOOST_TEST(ToHex(*second) == ToHex(Message(0, Bytes{0x42})));
  BOOST_TEST(fake.commands().size() == 2u);
}

BOOST_AUTO_TEST_CASE(exchange_transport_error_keeps_its_reason_and_lets_the_next_command_through) {
  FakeTransport fake;
  fake.Enqueue(Status::Error(Layer::kTransport, "cable unplugged"));
  fake.Enqueue(Message(0));
  auto first = fake.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE(!first.ok());
  BOOST_TEST(first.status().layer() == Layer::kTransport);
  BOOST_TEST(!first.status().timed_out());
  BOOST_TEST(first.status().message() == "cable unplugged");
  BOOST_TEST(fake.Exchange(Message(kCcReadClock)).ok());
}

BOOST_AUTO_TEST_CASE(timed_out_receive_keeps_the_response_owed_until_abandoned) {
  FakeTransport fake;
  fake.Enqueue(Status::Timeout("slow"));
  BOOST_REQUIRE(fake.Transmit(Message(kCcReadClock)).ok());
  auto r = fake.Receive(10ms);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().timed_out());
  // Still owed: a new command would interleave with the late answer.
  Status again = fake.Transmit(Message(kCcReadClock));
  BOOST_TEST(again.layer() == Layer::kHarness);
  BOOST_TEST(fake.cancels() == 0);

  fake.AbandonResponse();
  BOOST_TEST(fake.cancels() == 1);
  fake.Enqueue(Message(0));
  BOOST_TEST(fake.Exchange(Message(kCcReadClock)).ok());
}

// tpm2-tss unmarshals response parameters from its whole buffer, not from
// the bytes received, so a response cut short or padded by a faulty link
// decodes as stale bytes without any error. The header's size field is the
// only defence, as it is for commands.
BOOST_AUTO_TEST_CASE(response_whose_header_size_does_not_match_is_an_error) {
  Bytes cut = Message(0, Bytes(25, 0x01));
  cut.resize(22);  // header says 35
  Bytes padded = Message(0);
  padded.push_back(0x00);  // header says 10
  for (const Bytes& bad : {cut, padded}) {
    FakeTransport fake;
    fake.Enqueue(bad);
    auto r = fake.Exchange(Message(kCcReadClock));
    BOOST_TEST(!r.ok());
    BOOST_TEST(r.status().layer() == Layer::kTransport);
    // Either way the exchange is over.
    fake.Enqueue(Message(0));
    BOOST_TEST(fake.Exchange(Message(kCcReadClock)).ok());
  }
}

BOOST_AUTO_TEST_CASE(abandon_with_nothing_owed_does_not_cancel) {
  FakeTransport fake;
  fake.AbandonResponse();
  BOOST_TEST(fake.cancels() == 0);
}

BOOST_AUTO_TEST_CASE(unscripted_command_fails_and_responder_takes_over) {
  FakeTransport fake;
  auto none = fake.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(none.status().layer() == Layer::kTransport);

  fake.Enqueue(Message(0, Bytes{1}));
  fake.set_responder([](ByteView command) -> FakeTransport::Reply {
    return Message(0, Bytes{static_cast<uint8_t>(TpmHeaderCode(command))});
  });
  auto scripted = fake.Exchange(Message(kCcGetRandom));
  auto computed = fake.Exchange(Message(kCcGetRandom));
  BOOST_REQUIRE(scripted.ok());
  BOOST_REQUIRE(computed.ok());
  BOOST_TEST(scripted->back() == 1);
  BOOST_TEST(computed->back() == 0x7B);
}

BOOST_AUTO_TEST_CASE(set_locality_reaches_the_backend) {
  FakeTransport fake;
  BOOST_TEST(fake.SetLocality(3).ok());
  BOOST_TEST(fake.locality() == 3);
}

BOOST_AUTO_TEST_CASE(header_accessors_are_big_endian_and_zero_when_short) {
  const Bytes m = Message(0x01020304, Bytes{9, 9});
  BOOST_TEST(TpmHeaderSize(m) == 12u);
  BOOST_TEST(TpmHeaderCode(m) == 0x01020304u);
  const Bytes short_one(9, 0xFF);
  BOOST_TEST(TpmHeaderSize(short_one) == 0u);
  BOOST_TEST(TpmHeaderCode(short_one) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(trace_transport)

BOOST_AUTO_TEST_CASE(records_codes_bytes_and_duration) {
  FakeTransport fake;
  const Bytes ok_response = Message(0, Bytes{1, 2});
  const Bytes error_response = Message(kRcInitialize);
  fake.Enqueue(ok_response);
  fake.Enqueue(error_response);
  TraceTransport trace(fake);

  BOOST_REQUIRE(trace.Exchange(Message(kCcReadClock)).ok());
  BOOST_REQUIRE(trace.Exchange(Message(kCcGetRandom, Bytes{0, 8})).ok());

  const auto& records = trace.records();
  BOOST_REQUIRE(records.size() == 2u);
  BOOST_TEST(records[0].sequence == 0u);
  BOOST_TEST(records[0].command_code == kCcReadClock);
  BOOST_TEST(records[0].response_code == 0u);
  BOOST_TEST(ToHex(records[0].command) == ToHex(Message(kCcReadClock)));
  BOOST_TEST(ToHex(records[0].response) == ToHex(ok_response));
  BOOST_TEST(!records[0].failed);
  BOOST_TEST(records[0].duration.count() > 0);

  BOOST_TEST(records[1].sequence == 1u);
  BOOST_TEST(records[1].command_code == kCcGetRandom);
  BOOST_TEST(records[1].response_code == kRcInitialize);
  BOOST_TEST(ToHex(records[1].command) == ToHex(Message(kCcGetRandom, Bytes{0, 8})));
  BOOST_TEST(!records[1].failed);
  BOOST_TEST((records[1].started >= records[0].started));
}

BOOST_AUTO_TEST_CASE(duration_spans_transmit_to_receive) {
  FakeTransport fake;
  fake.set_responder([](ByteView) -> FakeTransport::Reply {
    std::this_thread::sleep_for(5ms);
    return Message(0);
  });
  TraceTransport trace(fake);
  BOOST_REQUIRE(trace.Exchange(Message(kCcReadClock)).ok());
  BOOST_REQUIRE(trace.records().size() == 1u);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(trace.records()[0].duration)
                 .count() >= 5);
}

BOOST_AUTO_TEST_CASE(transport_error_is_recorded_as_failed) {
  FakeTransport fake;
  fake.Enqueue(Status::Error(Layer::kTransport, "cable unplugged"));
  TraceTransport trace(fake);
  auto r = trace.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.status().layer() == Layer::kTransport);
  BOOST_TEST(r.status().message() == "cable unplugged");
  BOOST_REQUIRE(trace.records().size() == 1u);
  const TraceRecord& rec = trace.records()[0];
  BOOST_TEST(rec.failed);
  BOOST_TEST(rec.command_code == kCcReadClock);
  BOOST_TEST(rec.response_code == 0u);
  BOOST_TEST(rec.response.empty());
}

BOOST_AUTO_TEST_CASE(rejected_transmit_is_recorded_as_failed) {
  FakeTransport fake;
  fake.Enqueue(Message(0));
  TraceTransport trace(fake);
  // The inner transport owes a response, so it refuses the traced command.
  BOOST_REQUIRE(fake.Transmit(Message(kCcGetRandom)).ok());
  auto r = trace.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE(!r.ok());
  BOOST_REQUIRE(trace.records().size() == 1u);
  BOOST_TEST(trace.records()[0].failed);
  BOOST_TEST(trace.records()[0].command_code == kCcReadClock);
}

BOOST_AUTO_TEST_CASE(take_records_hands_over_and_empties) {
  FakeTransport fake;
  fake.set_responder([](ByteView) -> FakeTransport::Reply { return Message(0); });
  TraceTransport trace(fake);
  BOOST_REQUIRE(trace.Exchange(Message(kCcReadClock)).ok());
  BOOST_REQUIRE(trace.Exchange(Message(kCcReadClock)).ok());
  auto taken = trace.TakeRecords();
  BOOST_TEST(taken.size() == 2u);
  BOOST_TEST(trace.records().empty());
  BOOST_TEST(trace.TakeRecords().empty());
  // Sequence numbers keep counting across hand-overs.
  BOOST_REQUIRE(trace.Exchange(Message(kCcReadClock)).ok());
  BOOST_REQUIRE(trace.records().size() == 1u);
  BOOST_TEST(trace.records()[0].sequence == 2u);
}

BOOST_AUTO_TEST_CASE(without_bytes_it_keeps_codes_only) {
  FakeTransport fake;
  fake.Enqueue(Message(kRcInitialize));
  TraceTransport trace(fake, /*keep_bytes=*/false);
  BOOST_REQUIRE(trace.Exchange(Message(kCcReadClock)).ok());
  BOOST_REQUIRE(trace.records().size() == 1u);
  BOOST_TEST(trace.records()[0].command.empty());
  BOOST_TEST(trace.records()[0].response.empty());
  BOOST_TEST(trace.records()[0].command_code == kCcReadClock);
  BOOST_TEST(trace.records()[0].response_code == kRcInitialize);
}

BOOST_AUTO_TEST_CASE(forwards_locality_cancel_info_and_timeout) {
  FakeTransport fake;
  fake.set_command_timeout(1234ms);
  TraceTransport trace(fake);
  BOOST_TEST(trace.command_timeout().count() == 1234);
  BOOST_TEST(trace.SetLocality(3).ok());
  BOOST_TEST(fake.locality() == 3);
  BOOST_TEST(trace.Cancel().ok());
  BOOST_TEST(fake.cancels() == 1);
  BOOST_TEST(trace.info().name == "trace(fake)");
  BOOST_TEST(trace.info().description == fake.info().description);
}

// A command that times out through the trace must be cancelled on the inner
// transport too, or the inner one still owes a response and refuses every
// later command (a hung TPM would leave the Dut unusable); the timed-out
// command is in the trace, failed.
BOOST_AUTO_TEST_CASE(timeout_through_the_trace_lets_the_next_command_through) {
  FakeTransport fake;
  fake.Enqueue(Status::Timeout("no answer"));
  fake.Enqueue(Message(0));
  TraceTransport trace(fake);

  auto first = trace.Exchange(Message(kCcReadClock));
  BOOST_REQUIRE(!first.ok());
  BOOST_TEST(first.status().timed_out());
  BOOST_TEST(fake.cancels() == 1);

  auto second = trace.Exchange(Message(kCcGetRandom));
  BOOST_TEST(second.ok(), second.status().ToString());
  const auto records = trace.TakeRecords();
  BOOST_REQUIRE(records.size() == 2u);
  {
    BOOST_TEST(records[0].command_code == kCcReadClock);
    BOOST_TEST(records[0].failed);
    BOOST_TEST(records[1].command_code == kCcGetRandom);
    BOOST_TEST(!records[1].failed);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bytes)

BOOST_AUTO_TEST_CASE(writer_is_big_endian) {
  ByteWriter w;
  w.U8(0x01).U16(0x0203).U32(0x04050607).U64(0x08090A0B0C0D0E0FULL);
  BOOST_TEST(ToHex(w.bytes()) == "0102030405060708090a0b0c0d0e0f");
  w.Sized16(Bytes{0xAA, 0xBB}).Append(Bytes{0xCC});
  BOOST_TEST(ToHex(w.Take()) == "0102030405060708090a0b0c0d0e0f" "0002aabb" "cc");
}

BOOST_AUTO_TEST_CASE(reader_reads_what_the_writer_wrote) {
  const Bytes data = ByteWriter()
                         .U8(0xFE)
                         .U16(0xBEEF)
                         .U32(0xDEADBEEF)
                         .U64(0x0123456789ABCDEFULL)
                         .Sized16(Bytes{7, 8, 9})
                         .Take();
  ByteReader r(data);
  auto u8 = r.U8();
  auto u16 = r.U16();
  auto u32 = r.U32();
  auto u64 = r.U64();
  auto sized = r.Sized16("blob");
  BOOST_REQUIRE(u8.ok() && u16.ok() && u32.ok() && u64.ok() && sized.ok());
  BOOST_TEST(*u8 == 0xFE);
  BOOST_TEST(*u16 == 0xBEEF);
  BOOST_TEST(*u32 == 0xDEADBEEFu);
  BOOST_TEST(*u64 == 0x0123456789ABCDEFULL);
  BOOST_TEST(ToHex(*sized) == "070809");
  BOOST_TEST(r.empty());
  BOOST_TEST(r.offset() == data.size());
}

BOOST_AUTO_TEST_CASE(truncated_read_fails_with_the_offset_and_leaves_it_unchanged) {
  const Bytes data = {0x11, 0x22, 0x33};
  ByteReader r(data, "widget");
  auto too_big = r.U32();
  BOOST_REQUIRE(!too_big.ok());
  BOOST_TEST(too_big.status().layer() == Layer::kParse);
  BOOST_TEST(too_big.status().offset().value_or(99) == 0u);
  BOOST_TEST(r.offset() == 0u);

  auto half = r.U16();
  BOOST_REQUIRE(half.ok());
  BOOST_TEST(*half == 0x1122);

  auto rest = r.U16();
  BOOST_REQUIRE(!rest.ok());
  BOOST_TEST(rest.status().offset().value_or(99) == 2u);
  BOOST_TEST(Contains(rest.status().message(), "widget"), rest.status().message());
  BOOST_TEST(Contains(rest.status().message(), "byte 2"), rest.status().message());
  BOOST_TEST(r.offset() == 2u);
  BOOST_TEST(!r.U64().ok());
  BOOST_TEST(r.offset() == 2u);

  auto last = r.U8();
  BOOST_REQUIRE(last.ok());
  BOOST_TEST(*last == 0x33);
  BOOST_TEST(!r.U8().ok());
  BOOST_TEST(r.offset() == 3u);
}

BOOST_AUTO_TEST_CASE(take_checks_bounds_without_overflow) {
  const Bytes data = {1, 2, 3, 4};
  ByteReader r(data);
  BOOST_REQUIRE(r.Take(1).ok());
  BOOST_TEST(!r.Take(std::numeric_limits<size_t>::max()).ok());
  BOOST_TEST(!r.Take(4, "tail").ok());
  BOOST_TEST(r.offset() == 1u);
  auto tail = r.Take(3);
  BOOST_REQUIRE(tail.ok());
  BOOST_TEST(ToHex(*tail) == "020304");
  auto nothing = r.Take(0);
  BOOST_TEST(nothing.ok());
}

BOOST_AUTO_TEST_CASE(sized16_enforces_max_and_length) {
  const Bytes five = ByteWriter().Sized16(Bytes{1, 2, 3, 4, 5}).Take();
  {
    ByteReader r(five);
    auto over_max = r.Sized16("nonce", 4);
    BOOST_REQUIRE(!over_max.ok());
    BOOST_TEST(Contains(over_max.status().message(), "nonce"), over_max.status().message());
    BOOST_TEST(r.offset() == 0u);  // the size field is not consumed either
    auto at_max = r.Sized16("nonce", 5);
    BOOST_REQUIRE(at_max.ok());
    BOOST_TEST(at_max->size() == 5u);
  }
  {
    // The size says 5 but only 3 bytes follow.
    const Bytes cut(five.begin(), five.begin() + 5);
    ByteReader r(cut);
    BOOST_TEST(!r.Sized16("nonce").ok());
    BOOST_TEST(r.offset() == 0u);
  }
  {
    const Bytes half_a_size = {0x00};
    ByteReader r(half_a_size);
    BOOST_TEST(!r.Sized16("nonce").ok());
    BOOST_TEST(r.offset() == 0u);
  }
  {
    const Bytes empty_blob = {0x00, 0x00};
    ByteReader r(empty_blob);
    auto e = r.Sized16("nonce", 0);
    BOOST_REQUIRE(e.ok());
    BOOST_TEST(e->empty());
    BOOST_TEST(r.empty());
  }
}

BOOST_AUTO_TEST_CASE(hex_round_trip) {
  Bytes all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<uint8_t>(i));
  const std::string hex = ToHex(all);
  BOOST_TEST(hex.size() == 512u);
  BOOST_TEST(hex.substr(0, 8) == "00010203");
  BOOST_TEST(hex.substr(504) == "fcfdfeff");
  auto back = FromHex(hex);
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(*back == all);

  auto upper = FromHex("DEADbeef");
  BOOST_REQUIRE(upper.ok());
  BOOST_TEST(ToHex(*upper) == "deadbeef");
  auto empty = FromHex("");
  BOOST_REQUIRE(empty.ok());
  BOOST_TEST(empty->empty());
}

BOOST_AUTO_TEST_CASE(hex_errors) {
  auto odd = FromHex("abc");
  BOOST_REQUIRE(!odd.ok());
  BOOST_TEST(odd.status().layer() == Layer::kParse);

  auto bad = FromHex("00zz11");
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.status().layer() == Layer::kParse);
  BOOST_TEST(bad.status().offset().value_or(99) == 2u);

  BOOST_TEST(!FromHex("0g").ok());
  BOOST_TEST(!FromHex("0x00").ok());
  BOOST_TEST(!FromHex("00 11").ok());
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace tpmlab
