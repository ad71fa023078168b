#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "harness/eventlog.h"

namespace tpmlab {
namespace {

// A little-endian cursor over the log; every read checks what is left first.
class LeReader {
 public:
  explicit LeReader(ByteView data) : data_(data) {}
  size_t offset() const { return off_; }
  size_t remaining() const { return data_.size() - off_; }
  const uint8_t* here() const { return data_.data() + off_; }
  bool Has(size_t n) const { return remaining() >= n; }
  uint8_t U8() { return data_[off_++]; }
  uint16_t U16() {
    uint16_t v = static_cast<uint16_t>(data_[off_] | data_[off_ + 1] << 8);
    off_ += 2;
    return v;
  }
  uint32_t U32() {
    uint32_t v = uint32_t{data_[off_]} | uint32_t{data_[off_ + 1]} << 8 |
                 uint32_t{data_[off_ + 2]} << 16 | uint32_t{data_[off_ + 3]} << 24;
    off_ += 4;
    return v;
  }
  void Skip(size_t n) { off_ += n; }
  bool RestIsZero() const {
    for (size_t i = off_; i < data_.size(); ++i) {
      if (data_[i] != 0) return false;
    }
    return true;
  }

 private:
  ByteView data_;
  size_t off_ = 0;
};

Status Malformed(const std::string& what, size_t offset) {
  return Status::Parse("malformed event log at byte " + std::to_string(offset) + ": " + what, offset);
}

constexpr char kSpecIdSignature[] = "Spec ID Event03";  // 16 bytes with its NUL

void PutLe(Bytes& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

}  // namespace

std::string EventTypeName(uint32_t type) {
  switch (type) {
    case ev::kPrebootCert: return "EV_PREBOOT_CERT";
    case ev::kPostCode: return "EV_POST_CODE";
    case 0x00000002: return "EV_UNUSED";
    case ev::kNoAction: return "EV_NO_ACTION";
    case ev::kSeparator: return "EV_SEPARATOR";
    case ev::kAction: return "EV_ACTION";
    case ev::kEventTag: return "EV_EVENT_TAG";
    case ev::kSCrtmContents: return "EV_S_CRTM_CONTENTS";
    case ev::kSCrtmVersion: return "EV_S_CRTM_VERSION";
    case ev::kCpuMicrocode: return "EV_CPU_MICROCODE";
    case ev::kPlatformConfigFlags: return "EV_PLATFORM_CONFIG_FLAGS";
    case ev::kTableOfDevices: return "EV_TABLE_OF_DEVICES";
    case ev::kCompactHash: return "EV_COMPACT_HASH";
    case ev::kIpl: return "EV_IPL";
    case ev::kIplPartitionData: return "EV_IPL_PARTITION_DATA";
    case ev::kNonhostCode: return "EV_NONHOST_CODE";
    case ev::kNonhostConfig: return "EV_NONHOST_CONFIG";
    case ev::kNonhostInfo: return "EV_NONHOST_INFO";
    case ev::kOmitBootDeviceEvents: return "EV_OMIT_BOOT_DEVICE_EVENTS";
    case ev::kEfiEventBase: return "EV_EFI_EVENT_BASE";
    case ev::kEfiVariableDriverConfig: return "EV_EFI_VARIABLE_DRIVER_CONFIG";
    case ev::kEfiVariableBoot: return "EV_EFI_VARIABLE_BOOT";
    case ev::kEfiBootServicesApplication: return "EV_EFI_BOOT_SERVICES_APPLICATION";
    case ev::kEfiBootServicesDriver: return "EV_EFI_BOOT_SERVICES_DRIVER";
    case ev::kEfiRuntimeServicesDriver: return "EV_EFI_RUNTIME_SERVICES_DRIVER";
    case ev::kEfiGptEvent: return "EV_EFI_GPT_EVENT";
    case ev::kEfiAction: return "EV_EFI_ACTION";
    case ev::kEfiPlatformFirmwareBlob: return "EV_EFI_PLATFORM_FIRMWARE_BLOB";
    case ev::kEfiHandoffTables: return "EV_EFI_HANDOFF_TABLES";
    case ev::kEfiPlatformFirmwareBlob2: return "EV_EFI_PLATFORM_FIRMWARE_BLOB2";
    case ev::kEfiHandoffTables2: return "EV_EFI_HANDOFF_TABLES2";
    case ev::kEfiVariableBoot2: return "EV_EFI_VARIABLE_BOOT2";
    case ev::kEfiGpt2Event: return "EV_EFI_GPT2_EVENT";
    case ev::kEfiHcrtmEvent: return "EV_EFI_HCRTM_EVENT";
    case ev::kEfiVariableAuthority: return "EV_EFI_VARIABLE_AUTHORITY";
    case ev::kEfiSpdmFirmwareBlob: return "EV_EFI_SPDM_FIRMWARE_BLOB";
    case ev::kEfiSpdmFirmwareConfig: return "EV_EFI_SPDM_FIRMWARE_CONFIG";
    case 0x800000E3: return "EV_EFI_SPDM_DEVICE_POLICY";
    case 0x800000E4: return "EV_EFI_SPDM_DEVICE_AUTHORITY";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "EV_UNKNOWN_0x%08X", type);
      return buf;
    }
  }
}

bool IsKnownEventType(uint32_t type) { return EventTypeName(type).rfind("EV_UNKNOWN", 0) != 0; }

const char* LogFormatName(LogFormat format) {
  return format == LogFormat::kCryptoAgile ? "crypto-agile" : "sha1";
}

EventLog EventLog::CryptoAgile(const std::vector<HashAlg>& banks) {
  EventLog log;
  log.format_ = LogFormat::kCryptoAgile;
  for (HashAlg b : banks) {
    log.spec_.algorithms.push_back({static_cast<uint16_t>(b), static_cast<uint16_t>(HashSize(b))});
  }
  return log;
}

std::optional<ByteView> EventLog::DigestFor(const Event& e, uint16_t alg) const {
  for (uint32_t i = 0; i < e.digest_count; ++i) {
    const DigestRef& d = DigestAt(e, i);
    if (d.alg == alg) return DigestBytes(d);
  }
  return std::nullopt;
}

void EventLog::Append(uint32_t pcr, uint32_t type,
                      const std::vector<std::pair<uint16_t, Bytes>>& digests, ByteView data) {
  if (mapped_) {  // a log read from a file grows in memory of its own
    store_.assign(mapped_.get(), mapped_.get() + mapped_size_);
    mapped_.reset();
    mapped_size_ = 0;
  }
  Event e;
  e.pcr = pcr;
  e.type = type;
  e.first_digest = static_cast<uint32_t>(digests_.size());
  e.digest_count = static_cast<uint32_t>(digests.size());
  for (const auto& [alg, digest] : digests) {
    digests_.push_back({alg, static_cast<uint16_t>(digest.size()), store_.size()});
    store_.insert(store_.end(), digest.begin(), digest.end());
  }
  e.data_offset = store_.size();
  e.data_size = static_cast<uint32_t>(data.size());
  store_.insert(store_.end(), data.begin(), data.end());
  events_.push_back(e);
}

bool EventLog::operator==(const EventLog& o) const {
  if (format_ != o.format_ || !(spec_ == o.spec_) || events_.size() != o.events_.size()) return false;
  for (size_t i = 0; i < events_.size(); ++i) {
    const Event& a = events_[i];
    const Event& b = o.events_[i];
    if (a.pcr != b.pcr || a.type != b.type || a.digest_count != b.digest_count) return false;
    for (uint32_t d = 0; d < a.digest_count; ++d) {
      const DigestRef& da = DigestAt(a, d);
      const DigestRef& db = o.DigestAt(b, d);
      ByteView va = DigestBytes(da), vb = o.DigestBytes(db);
      if (da.alg != db.alg || !std::equal(va.begin(), va.end(), vb.begin(), vb.end())) return false;
    }
    ByteView x = Data(a), y = o.Data(b);
    if (!std::equal(x.begin(), x.end(), y.begin(), y.end())) return false;
  }
  return true;
}

Result<EventLog> ParseEventLog(Bytes bytes) {
  EventLog log;
  log.store_ = std::move(bytes);
  return EventLog::Parse(std::move(log));
}

Result<EventLog> EventLog::Parse(EventLog log) {
  const ByteView data = log.StoreBytes();
  LeReader r(data);
  if (data.empty()) return Malformed("the log is empty", 0);

  // The first event is always a TCG_PCR_EVENT (SHA1 layout): 32 bytes of header.
  constexpr size_t kSha1Header = 4 + 4 + 20 + 4;
  if (!r.Has(kSha1Header)) {
    return Malformed("only " + std::to_string(data.size()) +
                         " bytes: shorter than one event header (32 bytes)", 0);
  }
  const uint32_t first_type = [&] {
    LeReader peek(data);
    peek.Skip(4);
    return peek.U32();
  }();
  const uint32_t first_size = [&] {
    LeReader peek(data);
    peek.Skip(28);
    return peek.U32();
  }();
  const bool agile = first_type == ev::kNoAction && first_size >= 24 &&
                     data.size() >= kSha1Header + 16 &&
                     std::memcmp(data.data() + kSha1Header, kSpecIdSignature, 16) == 0;
  log.format_ = agile ? LogFormat::kCryptoAgile : LogFormat::kSha1;
  log.events_.reserve(data.size() / 96 + 1);
  log.digests_.reserve((data.size() / 96 + 1) * (agile ? 2 : 1));

  uint16_t sizes[32] = {};              // digest size per algorithm slot in the Spec ID event
  uint16_t algs[32] = {};
  size_t alg_count = 0;

  if (agile) {
    // TCG_PCR_EVENT header, then TCG_EfiSpecIDEvent as its data.
    r.Skip(kSha1Header);
    const size_t spec_start = r.offset();
    const size_t spec_end = spec_start + first_size;
    if (first_size > r.remaining()) return Malformed("Spec ID event size " + std::to_string(first_size) + " runs past the end", 28);
    // Signature, platformClass, four version bytes, numberOfAlgorithms, vendorInfoSize.
    if (first_size < 29) {
      return Malformed("Spec ID event size " + std::to_string(first_size) + " is less than its 29 fixed bytes", 28);
    }
    r.Skip(16);  // signature
    SpecIdEvent& s = log.spec_;
    s.platform_class = r.U32();
    s.version_minor = r.U8();
    s.version_major = r.U8();
    s.errata = r.U8();
    s.uintn_size = r.U8();
    const uint32_t n = r.U32();
    if (n == 0 || n > 32) return Malformed("Spec ID numberOfAlgorithms " + std::to_string(n) + " not in 1..32", r.offset() - 4);
    if (r.offset() + n * 4 + 1 > spec_end) return Malformed("Spec ID algorithm list runs past its event", r.offset());
    for (uint32_t i = 0; i < n; ++i) {
      AlgorithmSize a{r.U16(), r.U16()};
      // A size that disagrees with a known algorithm would make replay skip its digests.
      if (auto known = HashAlgFromId(a.alg); known && HashSize(*known) != a.digest_size) {
        return Malformed("Spec ID gives algorithm 0x" + ToHex(ByteWriter().U16(a.alg).bytes()) + " a digest size of " +
                             std::to_string(a.digest_size) + ", not " + std::to_string(HashSize(*known)),
                         r.offset() - 2);
      }
      if (a.digest_size == 0 || a.digest_size > 64) {
        return Malformed("Spec ID digest size " + std::to_string(a.digest_size) + " for algorithm 0x" +
                             ToHex(ByteWriter().U16(a.alg).bytes()), r.offset() - 2);
      }
      s.algorithms.push_back(a);
      algs[alg_count] = a.alg;
      sizes[alg_count++] = a.digest_size;
    }
    const uint8_t vendor_size = r.U8();
    if (r.offset() + vendor_size > spec_end) {
      return Malformed("Spec ID vendorInfoSize " + std::to_string(vendor_size) + " runs past its event", r.offset() - 1);
    }
    s.vendor_info.assign(r.here(), r.here() + vendor_size);
    r.Skip(spec_end - r.offset());
  }

  while (r.remaining() > 0) {
    const size_t start = r.offset();
    // Firmware reserves the log area and leaves the unused rest zero-filled:
    // zero bytes to the end are padding, however few (even shorter than a header).
    if (data[start] == 0 && r.RestIsZero()) break;
    Event e;
    e.log_offset = start;
    if (!agile) {
      if (!r.Has(kSha1Header)) return Malformed("truncated event header (" + std::to_string(r.remaining()) + " bytes left)", start);
      e.pcr = r.U32();
      e.type = r.U32();
      e.first_digest = static_cast<uint32_t>(log.digests_.size());
      e.digest_count = 1;
      log.digests_.push_back({static_cast<uint16_t>(HashAlg::kSha1), 20, r.offset()});
      r.Skip(20);
    } else {
      if (!r.Has(12)) return Malformed("truncated event header (" + std::to_string(r.remaining()) + " bytes left)", start);
      e.pcr = r.U32();
      e.type = r.U32();
      const uint32_t count = r.U32();
      if (count > alg_count) {
        return Malformed("event " + std::to_string(log.events_.size() + 1) + " has " + std::to_string(count) +
                             " digests but the Spec ID event lists " + std::to_string(alg_count) + " algorithms",
                         start + 8);
      }
      e.first_digest = static_cast<uint32_t>(log.digests_.size());
      e.digest_count = count;
      for (uint32_t i = 0; i < count; ++i) {
        if (!r.Has(2)) return Malformed("truncated digest algorithm", r.offset());
        const size_t at = r.offset();
        const uint16_t alg = r.U16();
        size_t slot = 0;
        while (slot < alg_count && algs[slot] != alg) ++slot;
        if (slot == alg_count) {
          return Malformed("digest algorithm 0x" + ToHex(ByteWriter().U16(alg).bytes()) +
                               " is not in the Spec ID event", at);
        }
        if (!r.Has(sizes[slot])) return Malformed("truncated digest", r.offset());
        log.digests_.push_back({alg, sizes[slot], r.offset()});
        r.Skip(sizes[slot]);
      }
    }
    if (!r.Has(4)) return Malformed("truncated event size", r.offset());
    const size_t size_at = r.offset();
    const uint32_t size = r.U32();
    if (size > r.remaining()) {
      return Malformed("event size " + std::to_string(size) + " runs past the end (" +
                           std::to_string(r.remaining()) + " bytes left)", size_at);
    }
    e.data_offset = r.offset();
    e.data_size = size;
    r.Skip(size);
    log.events_.push_back(e);
  }
  return log;
}

namespace {

// `fd`'s contents mapped read-only, or null when it is no regular file with
// a size (securityfs's binary_bios_measurements and pipes report none) or
// cannot be mapped. MAP_POPULATE maps the pages in one go rather than
// faulting them in one by one.
std::shared_ptr<const uint8_t> MapFile(int fd, size_t& size) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return nullptr;
  size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return nullptr;
  return std::shared_ptr<const uint8_t>(static_cast<const uint8_t*>(p),
                                        [size](const uint8_t* q) { munmap(const_cast<uint8_t*>(q), size); });
}

}  // namespace

Result<EventLog> ReadEventLogFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Status::Parse(path + ": is a folder, not an event log");
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Parse(path + ": cannot read the event log");
  EventLog log;
  log.mapped_ = MapFile(fd, log.mapped_size_);
  if (!log.mapped_) {
    // Read to the end rather than trusting the size the file reports.
    uint8_t chunk[1 << 16];
    ssize_t n = 0;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        close(fd);
        return Status::Parse(path + ": cannot read the event log");
      }
      log.store_.insert(log.store_.end(), chunk, chunk + n);
    }
  }
  close(fd);
  auto parsed = EventLog::Parse(std::move(log));
  if (!parsed.ok()) return Status::Parse(path + ": " + parsed.status().message(), parsed.status().offset());
  return parsed;
}

Bytes WriteEventLog(const EventLog& log) {
  Bytes out;
  SpecIdEvent spec = log.spec();
  if (log.format() == LogFormat::kSha1) {
    spec = SpecIdEvent{};
    spec.algorithms = {{static_cast<uint16_t>(HashAlg::kSha1), 20}};
  }
  // TCG_PCR_EVENT header carrying the Spec ID event.
  const uint32_t spec_size = static_cast<uint32_t>(16 + 4 + 4 + 4 + spec.algorithms.size() * 4 + 1 +
                                                   spec.vendor_info.size());
  out.reserve(64 + spec_size + log.size() * 128);
  PutLe(out, 0, 4);
  PutLe(out, ev::kNoAction, 4);
  out.insert(out.end(), 20, 0);
  PutLe(out, spec_size, 4);
  out.insert(out.end(), kSpecIdSignature, kSpecIdSignature + 16);
  PutLe(out, spec.platform_class, 4);
  out.push_back(spec.version_minor);
  out.push_back(spec.version_major);
  out.push_back(spec.errata);
  out.push_back(spec.uintn_size);
  PutLe(out, spec.algorithms.size(), 4);
  for (const auto& a : spec.algorithms) {
    PutLe(out, a.alg, 2);
    PutLe(out, a.digest_size, 2);
  }
  out.push_back(static_cast<uint8_t>(spec.vendor_info.size()));
  out.insert(out.end(), spec.vendor_info.begin(), spec.vendor_info.end());

  for (const Event& e : log.events()) {
    PutLe(out, e.pcr, 4);
    PutLe(out, e.type, 4);
    PutLe(out, e.digest_count, 4);
    for (uint32_t i = 0; i < e.digest_count; ++i) {
      const auto& d = log.DigestAt(e, i);
      PutLe(out, d.alg, 2);
      ByteView v = log.DigestBytes(d);
      out.insert(out.end(), v.begin(), v.end());
    }
    ByteView data = log.Data(e);
    PutLe(out, data.size(), 4);
    out.insert(out.end(), data.begin(), data.end());
  }
  return out;
}

}  // namespace tpmlab
