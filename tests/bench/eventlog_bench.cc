// Event log benchmark: tpmlab's parse and replay against the bare hashing of
// the same extends (and, in run_eventlog_bench.sh, against tpm2_eventlog).
//
//   eventlog_bench generate FILE [--events N] [--banks sha1,sha256] [--seed S]
//   eventlog_bench time FILE... [--repeat R]
//
// generate writes a crypto-agile log with tpmlab's own writer, in the order
// of a real UEFI + shim + grub boot, stretched to N events: a third from
// firmware before the separators (S-CRTM, firmware volumes, POST codes,
// Secure Boot variables, boot options, handoff tables, option-ROM drivers,
// tagged events, PCRs 0-7), a separator on each of PCRs 0-7, then the boot
// loader's (mostly grub commands and files on PCRs 8-9, boot applications,
// actions, authorities) and the two ExitBootServices actions. Event data is
// well-formed for its type, and digests are the real hashes of what the
// firmware would have measured (the data itself, grub's command, or an
// image the log does not carry), so tpmlab's findings stay quiet and
// tpm2_eventlog does not warn. 100,000 events at sha1+sha256 come to about
// 10.2 MB.
//
// time prints one line per file and a total line, each the median over R
// repeats (after one warm-up pass) of:
//   parse_ms   ReadEventLogFile: read the file and parse it
//   replay_ms  ReplayEventLog on the parsed log (wall time; a long log
//              replays its banks on parallel threads when CPUs allow)
//   replay_cpu_ms  the CPU time of that replay, all threads together
//   bare_ms    the same extends hashed alone: the digest fetched once per bank
//              (EVP_MD_fetch), one EVP_MD_CTX reused, Init_ex2/Update/Update/
//              Final per extend, in log order into a PCR buffer
// and replay_over_bare = replay_ms / bare_ms. check=ok says the bare loop
// ended at the PCR values the replay found, so both did the same extends.
// The total line's samples are per-repeat sums over the files that replayed.
// In-process figures are warm: after the first pass the allocator hands back
// memory already faulted in, which a fresh `tpmlab eventlog replay` process
// does not have (about 4 ms more to read+parse 10 MB there).
#include <openssl/evp.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "harness/eventlog.h"
#include "harness/replay.h"

using namespace tpmlab;

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: eventlog_bench generate FILE [--events N] [--banks sha1,sha256] [--seed S]\n"
               "       eventlog_bench time FILE... [--repeat R]\n");
  return 2;
}

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    out.push_back(list.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// ---------------------------------------------------------------- generate

void Le(Bytes& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Append(Bytes& out, ByteView v) { out.insert(out.end(), v.begin(), v.end()); }
void Utf16(Bytes& out, const std::string& s, bool nul) {
  for (char c : s) Le(out, static_cast<uint8_t>(c), 2);
  if (nul) Le(out, 0, 2);
}
Bytes Str(const std::string& s, bool nul = false) {
  Bytes b(s.begin(), s.end());
  if (nul) b.push_back(0);
  return b;
}

// EFI GUIDs in their on-disk (mixed-endian) byte order.
using Guid = std::array<uint8_t, 16>;
constexpr Guid kEfiGlobalVariable = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                     0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
constexpr Guid kImageSecurityDatabase = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                         0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};
constexpr Guid kEfiCertSha256 = {0x26, 0x16, 0xc4, 0xc1, 0x4c, 0x50, 0x92, 0x40,
                                 0xac, 0xa9, 0x41, 0xf9, 0x36, 0x93, 0x43, 0x28};
constexpr Guid kOwner = {0xbd, 0x9a, 0xfa, 0x77, 0x59, 0x03, 0x32, 0x4d,
                         0xbd, 0x60, 0x28, 0xf4, 0xe7, 0x8f, 0x78, 0x4b};
constexpr Guid kDiskPartition = {0x5c, 0x6c, 0x8e, 0x2a, 0x1d, 0x3f, 0x41, 0x4f,
                                 0x9e, 0x1d, 0x4f, 0x2a, 0x62, 0x77, 0x0a, 0x31};

// UEFI_VARIABLE_DATA
Bytes Variable(const Guid& guid, const std::string& name, const Bytes& value) {
  Bytes b(guid.begin(), guid.end());
  Le(b, name.size(), 8);
  Le(b, value.size(), 8);
  Utf16(b, name, false);
  Append(b, value);
  return b;
}

// An EFI_SIGNATURE_LIST of `n` SHA-256 entries.
Bytes Sha256SignatureList(int n, std::mt19937_64& rng) {
  Bytes b(kEfiCertSha256.begin(), kEfiCertSha256.end());
  Le(b, 28 + n * 48, 4);  // SignatureListSize
  Le(b, 0, 4);            // SignatureHeaderSize
  Le(b, 48, 4);           // SignatureSize: owner GUID + SHA-256
  for (int i = 0; i < n; ++i) {
    b.insert(b.end(), kOwner.begin(), kOwner.end());
    for (int j = 0; j < 32; ++j) b.push_back(static_cast<uint8_t>(rng()));
  }
  return b;
}

// A device path: hard drive (GPT partition), file path, end.
Bytes DevicePath(const std::string& file) {
  Bytes b = {0x04, 0x01, 42, 0};
  Le(b, 1, 4);           // partition number
  Le(b, 2048, 8);        // start LBA
  Le(b, 1048576, 8);     // size in LBAs
  b.insert(b.end(), kDiskPartition.begin(), kDiskPartition.end());
  b.push_back(0x02);     // GPT
  b.push_back(0x02);     // GUID signature
  Bytes path;
  Utf16(path, file, true);
  b.push_back(0x04);
  b.push_back(0x04);
  Le(b, 4 + path.size(), 2);
  Append(b, path);
  Append(b, Bytes{0x7f, 0xff, 0x04, 0x00});
  return b;
}

// UEFI_IMAGE_LOAD_EVENT
Bytes ImageLoad(const std::string& file, uint64_t base, uint64_t length) {
  Bytes path = DevicePath(file);
  Bytes b;
  Le(b, base, 8);
  Le(b, length, 8);
  Le(b, 0, 8);
  Le(b, path.size(), 8);
  Append(b, path);
  return b;
}

// EFI_LOAD_OPTION
Bytes LoadOption(const std::string& description, const std::string& file) {
  Bytes path = DevicePath(file);
  Bytes b;
  Le(b, 1, 4);  // LOAD_OPTION_ACTIVE
  Le(b, path.size(), 2);
  Utf16(b, description, true);
  Append(b, path);
  return b;
}

class Generator {
 public:
  Generator(EventLog& log, std::vector<HashAlg> banks, uint64_t seed)
      : log_(log), banks_(std::move(banks)), rng_(seed) {}

  size_t count() const { return log_.size(); }

  // A boot in the order firmware and boot loader log it: `events` in all
  // (or the few a boot cannot do without, when that is more).
  Status Boot(size_t events) {
    TRY(FirmwareStart());
    while (count() + 12 < events / 3) TRY(Firmware());
    TRY(Add(4, ev::kEfiAction, Str("Calling EFI Application from Boot Option")));
    for (uint32_t pcr = 0; pcr < 8; ++pcr) TRY(Add(pcr, ev::kSeparator, Bytes(4, 0)));
    TRY(Image(4, ev::kEfiBootServicesApplication, "\\EFI\\debian\\shimx64.efi"));
    TRY(Add(7, ev::kEfiVariableAuthority, Variable(kImageSecurityDatabase, "db", Sha256SignatureList(1, rng_))));
    TRY(Image(4, ev::kEfiBootServicesApplication, "\\EFI\\debian\\grubx64.efi"));
    while (count() + 2 < events) TRY(Loader());
    TRY(Add(5, ev::kEfiAction, Str("Exit Boot Services Invocation")));
    return Add(5, ev::kEfiAction, Str("Exit Boot Services Returned with Success"));
  }

 private:
  // Digests of the data itself (what firmware measures for most types).
  Status Add(uint32_t pcr, uint32_t type, const Bytes& data) { return AddOf(pcr, type, data, data); }
  // Digests of `measured` (an image, a firmware volume), `data` describing it.
  Status AddOf(uint32_t pcr, uint32_t type, const Bytes& data, ByteView measured) {
    digests_.clear();
    for (HashAlg b : banks_) {
      TRY_ASSIGN(Bytes d, Hash(b, measured));
      digests_.emplace_back(static_cast<uint16_t>(b), std::move(d));
    }
    log_.Append(pcr, type, digests_, data);
    return Status::Ok();
  }

  // S-CRTM, the firmware volumes, Secure Boot configuration, boot options.
  Status FirmwareStart() {
    Bytes version;
    Utf16(version, "tpmlab firmware 1.42", true);
    TRY(Add(0, ev::kSCrtmVersion, version));
    for (int i = 0; i < 3; ++i) TRY(Blob(0));
    TRY(Add(7, ev::kEfiVariableDriverConfig, Variable(kEfiGlobalVariable, "SecureBoot", {1})));
    TRY(Add(7, ev::kEfiVariableDriverConfig, Variable(kEfiGlobalVariable, "PK", Sha256SignatureList(1, rng_))));
    TRY(Add(7, ev::kEfiVariableDriverConfig, Variable(kEfiGlobalVariable, "KEK", Sha256SignatureList(2, rng_))));
    TRY(Add(7, ev::kEfiVariableDriverConfig, Variable(kImageSecurityDatabase, "db", Sha256SignatureList(4, rng_))));
    TRY(Add(7, ev::kEfiVariableDriverConfig, Variable(kImageSecurityDatabase, "dbx", Sha256SignatureList(77, rng_))));
    TRY(HandoffTable());
    TRY(Add(1, ev::kEfiVariableBoot, Variable(kEfiGlobalVariable, "BootOrder", {0, 0, 1, 0, 2, 0})));
    TRY(Add(1, ev::kEfiVariableBoot,
            Variable(kEfiGlobalVariable, "Boot0000", LoadOption("debian", "\\EFI\\debian\\shimx64.efi"))));
    return Add(1, ev::kEfiVariableBoot,
               Variable(kEfiGlobalVariable, "Boot0001", LoadOption("UEFI Shell", "\\EFI\\Boot\\shell.efi")));
  }

  // One event before the separators: PCRs 0-7.
  Status Firmware() {
    const uint32_t pick = static_cast<uint32_t>(rng_() % 1000);
    if (pick < 300) return Blob(0);
    if (pick < 450) return AddOf(0, ev::kPostCode, Blob16(), Random(64));
    if (pick < 500) return AddOf(0, ev::kSCrtmContents, Blob16(), Random(64));
    if (pick < 550) return Image(2, ev::kEfiBootServicesDriver, "\\Drv" + std::to_string(rng_() % 64) + ".efi");
    if (pick < 700) return Add(1, ev::kPlatformConfigFlags, Random(4 + rng_() % 8));
    if (pick < 750) return HandoffTable();
    if (pick < 770) {
      const std::string name = "Boot000" + std::to_string(rng_() % 8);
      return Add(1, ev::kEfiVariableBoot, Variable(kEfiGlobalVariable, name, LoadOption("disk", File())));
    }
    if (pick < 880) return Add(3, ev::kEventTag, Tag());
    return AddOf(6, ev::kCompactHash, Random(4), Random(64));
  }

  // One event after them: the boot loader's, PCRs 1, 4, 7, 8, 9.
  Status Loader() {
    const uint32_t pick = static_cast<uint32_t>(rng_() % 1000);
    if (pick < 640) return Grub();
    if (pick < 900) return AddOf(9, ev::kIpl, Str(File(), true), Random(64));  // the file's contents
    if (pick < 930) {
      const std::string line = "/vmlinuz-6.1.0-18-amd64 root=UUID=4f2a ro quiet";
      return AddOf(8, ev::kIpl, Str("kernel_cmdline: " + line, true), AsBytes(line));
    }
    if (pick < 960) return Add(4, ev::kEfiAction, Str(kActions[rng_() % std::size(kActions)]));
    if (pick < 975) return Image(4, ev::kEfiBootServicesApplication, "\\EFI\\debian\\" + File().substr(11));
    if (pick < 990) return Add(1, ev::kEfiVariableBoot, Variable(kEfiGlobalVariable, "BootOrder", {0, 0, 1, 0}));
    return Add(7, ev::kEfiVariableAuthority, Variable(kImageSecurityDatabase, "db", Sha256SignatureList(1, rng_)));
  }

  static constexpr const char* kActions[] = {"Calling EFI Application from Boot Option",
                                             "Returning from EFI Application from Boot Option"};

  Bytes Random(size_t n) {
    Bytes b(n);
    for (auto& x : b) x = static_cast<uint8_t>(rng_());
    return b;
  }
  // UEFI_PLATFORM_FIRMWARE_BLOB: base and length of a firmware volume.
  Bytes Blob16() {
    Bytes b;
    Le(b, 0xff000000 + (rng_() % 256) * 0x10000, 8);
    Le(b, 0x10000 * (1 + rng_() % 16), 8);
    return b;
  }
  Status Blob(uint32_t pcr) { return AddOf(pcr, ev::kEfiPlatformFirmwareBlob, Blob16(), Random(64)); }
  // UEFI_HANDOFF_TABLE_POINTERS with one table (the SMBIOS entry point).
  Status HandoffTable() {
    static constexpr Guid kSmbios3 = {0x44, 0x15, 0xfd, 0xf2, 0x94, 0x97, 0x2c, 0x4a,
                                      0x99, 0x2e, 0xe5, 0xbb, 0xcf, 0x20, 0xe3, 0x94};
    Bytes b;
    Le(b, 1, 8);
    b.insert(b.end(), kSmbios3.begin(), kSmbios3.end());
    Le(b, 0x7f000000 + (rng_() % 4096) * 0x10, 8);
    return AddOf(1, ev::kEfiHandoffTables, b, Random(64));
  }
  // TCG_PCClientTaggedEvent: one tag.
  Bytes Tag() {
    Bytes data = Random(4 + rng_() % 12);
    Bytes b;
    Le(b, 0x1000 + rng_() % 16, 4);
    Le(b, data.size(), 4);
    Append(b, data);
    return b;
  }
  Status Image(uint32_t pcr, uint32_t type, const std::string& file) {
    return AddOf(pcr, type, ImageLoad(file, 0x7e000000 + (rng_() % 4096) * 0x1000, 0x10000 + rng_() % 0x200000),
                 Random(64));
  }
  std::string GrubCommand() {
    static constexpr const char* kCommands[] = {
        "set root=hd0,gpt2", "insmod part_gpt", "insmod ext2", "set gfxpayload=keep",
        "load_video", "insmod gzio", "echo Loading Linux ...", "[ -s $prefix/grubenv ]",
        "set default=0", "set timeout=5", "insmod all_video", "initrd /initrd.img",
        "search --fs-uuid --set=root 4f2a", "terminal_output gfxterm", "set gfxmode=auto", "insmod png"};
    return kCommands[rng_() % std::size(kCommands)];
  }
  // GRUB measures the command, and logs it prefixed and NUL-terminated.
  Status Grub() {
    const std::string cmd = GrubCommand();
    return AddOf(8, ev::kIpl, Str("grub_cmd: " + cmd, true), AsBytes(cmd));
  }
  std::string File() {
    static constexpr const char* kFiles[] = {
        "/boot/grub/grub.cfg", "/boot/grub/x86_64-efi/normal.mod", "/boot/grub/fonts/unicode.pf2",
        "/boot/vmlinuz-6.1.0-18-amd64", "/boot/initrd.img-6.1.0-18-amd64", "/boot/grub/grubenv",
        "/boot/grub/x86_64-efi/gzio.mod", "/boot/grub/x86_64-efi/ext2.mod"};
    return std::string("(hd0,gpt2)") + kFiles[rng_() % std::size(kFiles)];
  }

  EventLog& log_;
  std::vector<HashAlg> banks_;
  std::mt19937_64 rng_;
  std::vector<std::pair<uint16_t, Bytes>> digests_;
};

int Generate(int argc, char** argv) {
  std::string file, banks_arg = "sha1,sha256";
  long events = 100000;
  uint64_t seed = 1;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--events") events = std::atol(v.c_str()), ++i;
    else if (a == "--banks") banks_arg = v, ++i;
    else if (a == "--seed") seed = std::strtoull(v.c_str(), nullptr, 10), ++i;
    else if (file.empty() && a.rfind("--", 0) != 0) file = a;
    else return Usage();
  }
  if (file.empty() || events < 1) return Usage();
  std::vector<HashAlg> banks;
  for (const auto& name : Split(banks_arg)) {
    auto alg = HashAlgFromName(name);
    if (!alg) {
      std::fprintf(stderr, "eventlog_bench: unknown bank %s\n", name.c_str());
      return 2;
    }
    banks.push_back(*alg);
  }
  EventLog log = EventLog::CryptoAgile(banks);
  Generator gen(log, banks, seed);
  Status s = gen.Boot(static_cast<size_t>(events));
  if (!s.ok()) {
    std::fprintf(stderr, "eventlog_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  const Bytes bytes = WriteEventLog(log);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "eventlog_bench: cannot write %s\n", file.c_str());
    return 1;
  }
  std::printf("eventlog_bench generated file=%s events=%zu bytes=%zu banks=%s\n", file.c_str(), log.size(),
              bytes.size(), banks_arg.c_str());
  return 0;
}

// -------------------------------------------------------------------- time

using Clock = std::chrono::steady_clock;
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double CpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The bare-hashing floor for one log: every extend the replay does, as a
// flat list, hashed with nothing else around it.
class BareHash {
 public:
  struct Extend {
    uint32_t bank;
    uint32_t pcr;
    const uint8_t* digest;
  };

  ~BareHash() {
    for (EVP_MD* md : mds_) EVP_MD_free(md);
    EVP_MD_CTX_free(ctx_);
  }

  // Same rules as ReplayEventLog: no EV_NO_ACTION, PCRs < 24, the first
  // digest per bank the log lists, of the bank's size, DRTM PCRs from zero
  // in a log with DRTM events.
  Status Prepare(const EventLog& log, const Replay& replay) {
    for (const auto& [alg, values] : replay.pcrs) {
      EVP_MD* md = EVP_MD_fetch(nullptr, OpenSslDigestName(alg), nullptr);
      if (md == nullptr) return Status::Error(Layer::kHarness, std::string("cannot fetch ") + OpenSslDigestName(alg));
      mds_.push_back(md);
      algs_.push_back(alg);
      sizes_.push_back(HashSize(alg));
      start_.push_back(values);  // filled with the reset values below
    }
    const uint8_t pcr0 = replay.hcrtm ? 4 : replay.startup_locality;
    for (size_t b = 0; b < algs_.size(); ++b) {
      for (int i = 0; i < kPcrCount; ++i) {
        start_[b][i] = PcrResetValue(algs_[b], i, pcr0);
        if (replay.drtm && (kDrtmPcrs & (1u << i)) != 0) start_[b][i].assign(sizes_[b], 0);  // a dynamic launch
      }
    }
    for (const Event& e : log.events()) {
      if (e.type == ev::kNoAction || e.pcr >= kPcrCount) continue;
      for (uint32_t i = 0; i < e.digest_count; ++i) {
        const auto& d = log.DigestAt(e, i);
        for (size_t b = 0; b < algs_.size(); ++b) {
          if (static_cast<uint16_t>(algs_[b]) != d.alg) continue;
          if (d.size == sizes_[b]) extends_.push_back({static_cast<uint32_t>(b), e.pcr, log.DigestBytes(d).data()});
          break;
        }
      }
    }
    pcrs_.assign(algs_.size() * kPcrCount * EVP_MAX_MD_SIZE, 0);
    ctx_ = EVP_MD_CTX_new();
    return Status::Ok();
  }

  size_t extends() const { return extends_.size(); }

  // Resets the PCR buffer (untimed), then returns the ms the extends take.
  double Run() {
    for (size_t b = 0; b < algs_.size(); ++b) {
      for (int i = 0; i < kPcrCount; ++i) std::memcpy(Pcr(b, i), start_[b][i].data(), sizes_[b]);
    }
    const auto t0 = Clock::now();
    unsigned int len = 0;
    for (const Extend& x : extends_) {
      uint8_t* pcr = Pcr(x.bank, x.pcr);
      const size_t n = sizes_[x.bank];
      EVP_DigestInit_ex2(ctx_, mds_[x.bank], nullptr);
      EVP_DigestUpdate(ctx_, pcr, n);
      EVP_DigestUpdate(ctx_, x.digest, n);
      EVP_DigestFinal_ex(ctx_, pcr, &len);
    }
    return MsSince(t0);
  }

  // The PCR values after Run() equal the replay's.
  bool Matches(const Replay& replay) const {
    for (size_t b = 0; b < algs_.size(); ++b) {
      const PcrBank& want = replay.pcrs.at(algs_[b]);
      for (int i = 0; i < kPcrCount; ++i) {
        if (std::memcmp(want[i].data(), Pcr(b, i), sizes_[b]) != 0) return false;
      }
    }
    return true;
  }

 private:
  uint8_t* Pcr(size_t bank, int i) { return pcrs_.data() + (bank * kPcrCount + i) * EVP_MAX_MD_SIZE; }
  const uint8_t* Pcr(size_t bank, int i) const {
    return pcrs_.data() + (bank * kPcrCount + i) * EVP_MAX_MD_SIZE;
  }

  std::vector<EVP_MD*> mds_;
  std::vector<HashAlg> algs_;
  std::vector<size_t> sizes_;
  std::vector<PcrBank> start_;
  std::vector<Extend> extends_;
  std::vector<uint8_t> pcrs_;
  EVP_MD_CTX* ctx_ = nullptr;
};

struct Samples {
  std::vector<double> parse, replay, replay_cpu, bare;
};

int Time(int argc, char** argv) {
  std::vector<std::string> files;
  int repeat = 11;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--repeat" && i + 1 < argc) repeat = std::atoi(argv[++i]);
    else if (a.rfind("--", 0) == 0) return Usage();
    else files.push_back(a);
  }
  if (files.empty() || repeat < 1) return Usage();

  // Untimed: parse each file once, find its extends, and check the floor
  // does the same work as the replay.
  struct File {
    std::string path;
    size_t bytes = 0, events = 0;
    std::unique_ptr<EventLog> log;  // the bare extends point into its bytes
    std::unique_ptr<BareHash> bare;
    bool check = false;
    Samples s;
  };
  std::vector<File> ok;
  int rc = 0;
  for (const auto& path : files) {
    auto log = ReadEventLogFile(path);
    if (!log.ok()) {
      std::printf("eventlog_bench file=%s skipped=parse-error (%s)\n", path.c_str(), log.status().message().c_str());
      continue;
    }
    auto replay = ReplayEventLog(*log);
    if (!replay.ok()) {
      std::printf("eventlog_bench file=%s skipped=replay-error (%s)\n", path.c_str(),
                  replay.status().message().c_str());
      continue;
    }
    File f;
    f.path = path;
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    f.bytes = static_cast<size_t>(in.tellg());
    f.events = log->size();
    f.log = std::make_unique<EventLog>(std::move(*log));
    f.bare = std::make_unique<BareHash>();
    Status s = f.bare->Prepare(*f.log, *replay);
    if (!s.ok()) {
      std::fprintf(stderr, "eventlog_bench: %s: %s\n", path.c_str(), s.ToString().c_str());
      return 1;
    }
    f.bare->Run();
    f.check = f.bare->Matches(*replay);
    if (!f.check) rc = 1;
    ok.push_back(std::move(f));
  }

  Samples total;
  for (int r = -1; r < repeat; ++r) {  // r == -1: warm-up, not kept
    double tp = 0, tr = 0, tc = 0, tb = 0;
    for (File& f : ok) {
      auto t0 = Clock::now();
      auto log = ReadEventLogFile(f.path);
      const double parse = MsSince(t0);
      const double cpu0 = CpuMs();
      t0 = Clock::now();
      auto replay = ReplayEventLog(*log);
      const double rep = MsSince(t0);
      const double cpu = CpuMs() - cpu0;
      if (!replay.ok() || (replay->events_extended == 0 && f.bare->extends() > 0)) rc = 1;
      const double bare = f.bare->Run();
      if (r < 0) continue;
      f.s.parse.push_back(parse);
      f.s.replay.push_back(rep);
      f.s.replay_cpu.push_back(cpu);
      f.s.bare.push_back(bare);
      tp += parse, tr += rep, tc += cpu, tb += bare;
    }
    if (r >= 0) {
      total.parse.push_back(tp);
      total.replay.push_back(tr);
      total.replay_cpu.push_back(tc);
      total.bare.push_back(tb);
    }
  }

  size_t bytes = 0, events = 0, extends = 0;
  auto line = [&](const std::string& what, size_t b, size_t e, size_t x, const Samples& s, const char* check) {
    const double p = Median(s.parse), rp = Median(s.replay), rcpu = Median(s.replay_cpu), bh = Median(s.bare);
    std::printf(
        "eventlog_bench %s bytes=%zu events=%zu extends=%zu repeat=%d parse_ms=%.3f replay_ms=%.3f "
        "replay_cpu_ms=%.3f bare_ms=%.3f replay_over_bare=%.2f parse_mb_s=%.0f check=%s\n",
        what.c_str(), b, e, x, repeat, p, rp, rcpu, bh, bh > 0 ? rp / bh : 0.0, p > 0 ? b / p / 1e3 : 0.0, check);
  };
  for (const File& f : ok) {
    line("file=" + f.path, f.bytes, f.events, f.bare->extends(), f.s, f.check ? "ok" : "MISMATCH");
    bytes += f.bytes, events += f.events, extends += f.bare->extends();
  }
  if (ok.size() > 1) {
    line("total files=" + std::to_string(ok.size()), bytes, events, extends, total, rc == 0 ? "ok" : "MISMATCH");
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string cmd = argv[1];
  if (cmd == "generate") return Generate(argc, argv);
  if (cmd == "time") return Time(argc, argv);
  return Usage();
}
