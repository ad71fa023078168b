// Step family: firmware — a platform firmware model switched, or a TPM
// image installed, with what the TPM kept across it.
#include <algorithm>
#include <cstdio>

#include "harness/boot_source.h"
#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

Status Run::FirmwareUpdate(const FirmwareUpdateStep& f, StepResult& r) {
  if (Board* board = dut_.board(); f.model && board) {
    // The name is the scenario's; which flash image it is, the bench's.
    TRY(board->SelectFirmware(f.model->name));
    r.detail["platform"] = {{"to", f.model->name}, {"board", board->Describe()["firmware_images"]}};
    r.checks.push_back({"firmware_update", true,
                        options_.bench->flash
                            ? "platform firmware image " + f.model->name + " written with flashrom (" +
                                  options_.bench->flash->programmer + ") and verified at the next power cycle, "
                                  "with the board off; the chip's previous contents kept in firmware/"
                            : "platform firmware image " + f.model->name + " flashed, booted from the next power cycle"});
    return Status::Ok();
  }
  if (f.model && !MeasuresFirmware()) {
    return Status::Error(Layer::kScenario, "a platform firmware model applies to a DUT tpmlab boots and measures; "
                                           "bench '" + options_.bench->name + "' takes its boot log from " +
                                           BootLogSourceName(options_.bench->boot_log.source));
  }
  if (f.model) {
    const std::string from = firmware_ ? firmware_->model().name : "none";
    if (firmware_) {
      firmware_->set_model(*f.model);
    } else {
      firmware_ = std::make_unique<EmulatedFirmware>(*f.model, scenario_.platform.boot);
    }
    r.detail["platform"] = {{"from", from}, {"to", f.model->name}, {"file", f.model->file}};
    r.checks.push_back({"firmware_update", true, "platform firmware " + from + " -> " + f.model->name +
                                                     ", measured from the next cold boot"});
    return Status::Ok();
  }
  const TpmImage* image = nullptr;
  for (const auto& i : scenario_.platform.images) {
    if (i.name == f.image) image = &i;
  }
  if (image == nullptr) return Status::Error(Layer::kScenario, "no TPM image named '" + f.image + "'");
  TRY_ASSIGN(json before, TpmRecord());
  const uint64_t running = before["firmware_version_raw"].get<uint64_t>();
  // The installed build's version: what the chip reported before any image
  // of this run changed it.
  if (!stock_version_) stock_version_ = running;
  const uint64_t target = image->firmware_version.value_or(*stock_version_);
  std::string library_dir = image->library_dir;
  if (image->firmware_version && library_dir.empty()) {
    TRY_ASSIGN(fs::path dir, DeriveLibtpmsImage(options_.out_dir / "images" / image->name, *stock_version_,
                                                *image->firmware_version));
    library_dir = dir.string();
  }
  TRY(dut_.SwapImage(image->swtpm, library_dir, running, target));
  TRY(dut_.Startup(scenario_.platform.boot, StartupType::kClear));
  TRY(AfterStartup(StartupType::kClear, {}, /*snapshot=*/false, r));
  TRY_ASSIGN(json after, TpmRecord());
  json survived;
  for (const char* key : {"firmware_version", "ek", "srk", "persistent_handles", "nv_indices"}) {
    survived[key] = before[key] == after[key];
  }
  before.erase("firmware_version_raw");
  after.erase("firmware_version_raw");
  r.detail["tpm"] = {{"image", image->name}, {"swtpm", image->swtpm}, {"library_dir", library_dir},
                     {"before", before}, {"after", after}, {"unchanged", survived}};
  // A firmware update may change the identity a power cycle must keep.
  reference_.reset();
  r.checks.push_back({"firmware_update", true, "TPM image " + image->name + ": firmware " +
                                                   before["firmware_version"].get<std::string>() + " -> " +
                                                   after["firmware_version"].get<std::string>()});
  return Status::Ok();
}

// What a TPM firmware update may change, read from the TPM.
Result<json> Run::TpmRecord() {
  Tpm& tpm = dut_.tpm();
  TRY_ASSIGN(TpmProperties p, tpm.Properties());
  char version[24];
  std::snprintf(version, sizeof(version), "0x%016llx", static_cast<unsigned long long>(p.firmware_version));
  json record = {{"firmware_version", version}, {"firmware_version_raw", p.firmware_version},
                 {"manufacturer", p.manufacturer}};
  TRY_ASSIGN(std::vector<uint32_t> persistent, tpm.PersistentHandles());
  TRY_ASSIGN(std::vector<uint32_t> nv, tpm.NvIndices());
  // Keys that are there, not made for the record (that would fake survival).
  auto persisted = [&](uint32_t handle) {
    return std::find(persistent.begin(), persistent.end(), handle) != persistent.end();
  };
  auto ek = persisted(kEkHandle) ? tpm.EnsureEk() : Result<KeyInfo>(Status::Error(Layer::kTpm, "none"));
  record["ek"] = ek.ok() ? json(ToHex(ek->name)) : json(nullptr);
  auto srk = persisted(kSrkHandle) ? tpm.EnsureSrk() : Result<KeyInfo>(Status::Error(Layer::kTpm, "none"));
  record["srk"] = srk.ok() ? json(ToHex(srk->name)) : json(nullptr);
  auto hex_list = [](const std::vector<uint32_t>& handles) {
    json list = json::array();
    for (uint32_t h : handles) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "0x%08x", h);
      list.push_back(buf);
    }
    return list;
  };
  record["persistent_handles"] = hex_list(persistent);
  record["nv_indices"] = hex_list(nv);
  return record;
}
}  // namespace tpmlab
