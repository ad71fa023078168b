// (a) in the cycle benchmark: the benchmark cycle through tpmlab itself —
// an emulated Dut (supervised swtpm, trace decorator, TCTI adapter, ESAPI),
// its power-loss cycle, and tpmlab's own quote verifier.
//
//   tpmlab_cycle [--cycles N] [--ak rsa|ecc] [--warmup W] [--banks LIST]
//
// Like esapi_floor: no Shutdown before each _TPM_Init, all allocated banks
// read after Startup, PCRs 0-7 extended in every bank, a quote over sha256
// PCRs 0-23 with a fresh nonce, verified against the locally replayed PCRs.
#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "harness/attest.h"
#include "harness/dut.h"

using namespace tpmlab;
namespace fs = std::filesystem;

namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "tpmlab_cycle: %s\n", s.ToString().c_str());
  return 1;
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

// One cycle; `verify` false only for warm-up.
Status Cycle(Dut& dut, const KeyInfo& ak, const std::vector<HashAlg>& banks,
             const std::map<HashAlg, Bytes>& measurement) {
  TRY(dut.PowerCycle(PowerCycleKind::kPowerLoss, BootOptions{}));
  TRY_ASSIGN(PcrValues pcrs, dut.tpm().ReadPcrs(banks));
  for (int pcr = 0; pcr < 8; ++pcr) {
    TRY(dut.tpm().Extend(pcr, measurement));
    for (HashAlg b : banks) pcrs[b][pcr] = ExtendPcr(b, pcrs[b][pcr], measurement.at(b));
  }
  Bytes nonce(32);
  RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
  TRY_ASSIGN(QuoteBlob quote, dut.tpm().Quote(ak, HashAlg::kSha256, 0xFFFFFF, nonce));
  QuoteCheck check = VerifyQuote(quote, ak.public_der, nonce, pcrs);
  if (!check.verified()) return Status::Error(Layer::kHarness, "quote: " + check.failure);
  if (check.attest.clock.restart_count != 0) {
    return Status::Error(Layer::kHarness, "restartCount is not 0 after a power loss");
  }
  dut.trace().TakeRecords();  // the trace is kept per step in a run; drop it here
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  int cycles = 200, warmup = 2;
  KeyType ak_type = KeyType::kRsa2048;
  std::string banks_arg = "sha1,sha256,sha384,sha512";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--cycles") cycles = std::atoi(v.c_str()), ++i;
    else if (a == "--warmup") warmup = std::atoi(v.c_str()), ++i;
    else if (a == "--banks") banks_arg = v, ++i;
    else if (a == "--ak" && KeyTypeFromName(v)) ak_type = *KeyTypeFromName(v), ++i;
    else {
      std::fprintf(stderr, "usage: tpmlab_cycle [--cycles N] [--ak rsa|ecc] [--warmup W] [--banks LIST]\n");
      return 2;
    }
  }
  if (cycles < 1) return 2;

  char tmpl[] = "/tmp/tpmlab-cycle-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const fs::path dir = tmpl;
  int rc = 0;
  {
    EmulatedDutConfig config;
    config.state_dir = dir / "dut0";
    config.banks = Split(banks_arg);
    auto dut = Dut::LaunchEmulated(config);
    if (!dut.ok()) return Fail(dut.status());
    Dut& d = **dut;
    auto run = [&]() -> Status {
      TRY(d.Startup(BootOptions{}));
      TRY_ASSIGN(KeyInfo ak, d.tpm().EnsureAk(ak_type));
      TRY_ASSIGN(std::vector<HashAlg> banks, d.tpm().PcrBanks());
      std::map<HashAlg, Bytes> measurement;
      for (HashAlg b : banks) {
        TRY_ASSIGN(measurement[b], Hash(b, AsBytes("tpmlab bench")));
      }
      for (int i = 0; i < warmup; ++i) TRY(Cycle(d, ak, banks, measurement));
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < cycles; ++i) TRY(Cycle(d, ak, banks, measurement));
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("tpmlab_cycle cycles=%d seconds=%.3f cycles_per_s=%.1f ak=%s\n", cycles, seconds,
                  cycles / seconds, KeyTypeName(ak_type));
      return Status::Ok();
    };
    Status s = run();
    if (!s.ok()) rc = Fail(s);
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  return rc;
}
