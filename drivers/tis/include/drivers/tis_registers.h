// TCG PC Client PTP FIFO interface over SPI: the frame, register offsets and
// bits that both the TIS engine and the simulated SPI TPM speak.
// Facts from ../shared/docs/hardware-reference.md §2.
#pragma once

#include <array>
#include <cstdint>

namespace tpmlab::tis {

// Register offsets within a locality's 4 KiB window.
inline constexpr uint16_t kAccess = 0x000;          // 1 byte
inline constexpr uint16_t kIntEnable = 0x008;
inline constexpr uint16_t kIntVector = 0x00C;
inline constexpr uint16_t kIntStatus = 0x010;
inline constexpr uint16_t kIntfCapability = 0x014;  // 4 bytes
inline constexpr uint16_t kSts = 0x018;             // 4 bytes, little-endian
inline constexpr uint16_t kDataFifo = 0x024;
inline constexpr uint16_t kInterfaceId = 0x030;
inline constexpr uint16_t kXDataFifo = 0x080;
inline constexpr uint16_t kDidVid = 0xF00;          // LE u32: VID low 16, DID high 16
inline constexpr uint16_t kRid = 0xF04;             // 1 byte

inline constexpr uint8_t kMaxLocality = 4;
inline constexpr uint32_t kSpiBase = 0xD40000;
inline constexpr size_t kMaxFrame = 64;  // data bytes per transaction
inline constexpr size_t kHeaderSize = 4;

// TPM_ACCESS bits. Writes set one bit at a time.
inline constexpr uint8_t kAccessValid = 0x80;           // tpmRegValidSts
inline constexpr uint8_t kAccessActiveLocality = 0x20;  // read: ours; write 1: relinquish
inline constexpr uint8_t kAccessRequestPending = 0x04;  // another locality wants it
inline constexpr uint8_t kAccessRequestUse = 0x02;
inline constexpr uint8_t kAccessEstablishment = 0x01;

// TPM_STS bits.
inline constexpr uint32_t kStsFamilyMask = 0x0C000000;  // 27:26
inline constexpr uint32_t kStsFamilyTpm2 = 0x04000000;  // 01
inline constexpr uint32_t kStsResetEstablishment = 1u << 25;
inline constexpr uint32_t kStsCommandCancel = 1u << 24;
inline constexpr uint32_t kStsBurstShift = 8;           // 23:8
inline constexpr uint32_t kStsBurstMask = 0xFFFF00;
inline constexpr uint32_t kStsValid = 0x80;
inline constexpr uint32_t kStsCommandReady = 0x40;
inline constexpr uint32_t kStsGo = 0x20;
inline constexpr uint32_t kStsDataAvail = 0x10;
inline constexpr uint32_t kStsExpect = 0x08;
inline constexpr uint32_t kStsSelfTestDone = 0x04;
inline constexpr uint32_t kStsResponseRetry = 0x02;

inline constexpr uint32_t Address(uint8_t locality, uint16_t reg) {
  return kSpiBase | uint32_t{locality} << 12 | (reg & 0xFFFu);
}

// byte0 = read bit 7 | (len-1) in bits 5:0; bytes 1-3 = 24-bit address.
inline constexpr std::array<uint8_t, kHeaderSize> Header(bool read, size_t len, uint8_t locality,
                                                         uint16_t reg) {
  const uint32_t a = Address(locality, reg);
  return {static_cast<uint8_t>((read ? 0x80 : 0x00) | ((len - 1) & 0x3F)),
          static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
}

}  // namespace tpmlab::tis
