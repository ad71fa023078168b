// Shared by the SPI-bridge tests: a fake TPM that answers any command with
// its body reversed, and one command sent through the TIS engine over a bus
// into a TisSimulator, checked end to end (response, wait states, no host
// protocol violations).
#pragma once

#include <boost/test/unit_test.hpp>

#include <string>

#include "drivers/fake_transport.h"
#include "drivers/tis_simulator.h"
#include "drivers/tis_spi.h"

namespace tpmlab::testing {

// Answers with the command's bytes after the header in reverse order.
inline void AnswerReversed(FakeTransport& tpm) {
  tpm.set_responder([](ByteView c) -> FakeTransport::Reply {
    ByteWriter w;
    w.U16(0x8001).U32(static_cast<uint32_t>(c.size())).U32(0);
    for (size_t i = c.size(); i > kTpmHeaderSize; --i) w.U8(c[i - 1]);
    return w.Take();
  });
}

// Sends a `size`-byte command through `tis` and checks what came back and
// what the simulator saw on the wire.
inline void ExchangeThroughTis(TisSpiTransport& tis, TisSimulator& sim, FakeTransport& tpm, uint32_t size) {
  BOOST_TEST(tis.chip().vendor_id == 0x1014);
  ByteWriter w;
  w.U16(0x8001).U32(size).U32(0x17B);
  for (uint32_t i = 10; i < size; ++i) w.U8(static_cast<uint8_t>(i));
  const Bytes command = w.Take();
  auto response = tis.Exchange(command);
  BOOST_REQUIRE_MESSAGE(response.ok(), response.status().ToString());
  BOOST_TEST(response->size() == size);
  BOOST_TEST((*response)[10] == static_cast<uint8_t>(size - 1));
  BOOST_TEST((tpm.commands().back() == command));
  int waits = 0;
  for (const auto& f : sim.frames()) waits += f.wait_states;
  BOOST_TEST(waits > 0);
  std::string violations;
  for (const auto& v : sim.violations()) violations += v + "; ";
  BOOST_TEST(sim.violations().empty(), violations);
}

}  // namespace tpmlab::testing
