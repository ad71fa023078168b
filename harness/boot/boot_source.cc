#include "harness/boot_source.h"

#include <fstream>

#include "uefi.h"

namespace tpmlab {
namespace {

// Builds the log of one cold boot: each measurement is hashed per bank and
// appended as an event. `extend` is false for events the TPM does not see
// through TPM2_PCR_Extend (EV_NO_ACTION, and the H-CRTM, which the TPM
// measured itself before Startup).
class LogBuilder {
 public:
  LogBuilder(const std::vector<HashAlg>& banks) : banks_(banks), log_(EventLog::CryptoAgile(banks)) {}

  // An event whose digest is H(measured) in every bank.
  void Measure(uint32_t pcr, uint32_t type, ByteView measured, ByteView data) {
    std::vector<std::pair<uint16_t, Bytes>> digests;
    for (HashAlg b : banks_) {
      auto h = Hash(b, measured);
      digests.emplace_back(static_cast<uint16_t>(b), h.ok() ? *h : Bytes(HashSize(b), 0));
    }
    log_.Append(pcr, type, digests, data);
  }
  // The data itself is what is measured.
  void Measure(uint32_t pcr, uint32_t type, ByteView data) { Measure(pcr, type, data, data); }
  void NoAction(uint32_t pcr, ByteView data) {
    std::vector<std::pair<uint16_t, Bytes>> zeros;
    for (HashAlg b : banks_) zeros.emplace_back(static_cast<uint16_t>(b), Bytes(HashSize(b), 0));
    log_.Append(pcr, ev::kNoAction, zeros, data);
  }

  EventLog Take() { return std::move(log_); }

 private:
  std::vector<HashAlg> banks_;
  EventLog log_;
};

ByteView Text(const std::string& s) { return AsBytes(s); }

void MeasureSecureBoot(LogBuilder& b, const SecureBoot& sb) {
  const Bytes enabled = {static_cast<uint8_t>(sb.enabled ? 1 : 0)};
  auto var = [&b](const uefi::Guid& guid, const std::string& name, ByteView data) {
    const Bytes v = uefi::VariableData(guid, name, data);
    b.Measure(7, ev::kEfiVariableDriverConfig, v);
  };
  var(uefi::kGlobalVariable, "SecureBoot", enabled);
  var(uefi::kGlobalVariable, "PK", uefi::SignatureList(sb.pk.empty() ? std::vector<std::string>{} : std::vector<std::string>{sb.pk}));
  var(uefi::kGlobalVariable, "KEK", uefi::SignatureList(sb.kek));
  var(uefi::kImageSecurityDatabase, "db", uefi::SignatureList(sb.db));
  var(uefi::kImageSecurityDatabase, "dbx", uefi::SignatureList(sb.dbx));
}

// When Secure Boot verified an image, PCR7 records which db entry allowed it.
void MeasureAuthority(LogBuilder& b, const SecureBoot& sb, const std::string& entry,
                      const uefi::Guid& owner, const std::string& variable) {
  if (!sb.enabled || entry.empty()) return;
  const Bytes v = uefi::VariableData(owner, variable, uefi::SignatureData(entry));
  b.Measure(7, ev::kEfiVariableAuthority, v);
}

void MeasureApplication(LogBuilder& b, uint32_t pcr, const std::string& content, const std::string& path) {
  b.Measure(pcr, ev::kEfiBootServicesApplication, Text(content), uefi::ImageLoadEvent(content.size(), path));
}

}  // namespace

EventLog MeasuredBootLog(const FirmwareModel& m, const BootOptions& boot,
                         const std::vector<HashAlg>& banks) {
  LogBuilder b(banks);
  // PCR0: where the platform started, the S-CRTM, the firmware itself.
  if (boot.startup_locality != 0) b.NoAction(0, uefi::StartupLocality(boot.startup_locality));
  if (boot.hcrtm_data) b.Measure(0, ev::kEfiHcrtmEvent, *boot.hcrtm_data, Text("HCRTM"));
  if (!m.s_crtm_version.empty()) b.Measure(0, ev::kSCrtmVersion, uefi::Ucs2(m.s_crtm_version, true));
  for (const auto& blob : m.firmware_blobs) {
    b.Measure(0, ev::kEfiPlatformFirmwareBlob2, Text(blob.content),
              uefi::FirmwareBlob2(blob.description, blob.base, blob.length ? blob.length : blob.content.size()));
  }
  for (const auto& rom : m.option_roms) {
    if (rom.embedded) {
      b.Measure(0, ev::kEfiPlatformFirmwareBlob2, Text(rom.content),
                uefi::FirmwareBlob2(rom.name, 0, rom.content.size()));
    }
  }
  // PCR1: platform configuration.
  for (const auto& config : m.platform_config) b.Measure(1, ev::kPlatformConfigFlags, Text(config));
  // PCR7: the Secure Boot policy, then its separator.
  MeasureSecureBoot(b, m.secure_boot);
  b.Measure(7, ev::kSeparator, uefi::kSeparatorData);
  // PCR1: boot variables; only their data is hashed (as edk2 does).
  if (!m.boot_order.empty()) {
    const Bytes order = uefi::BootOrder(m.boot_order);
    b.Measure(1, ev::kEfiVariableBoot, order, uefi::VariableData(uefi::kGlobalVariable, "BootOrder", order));
  }
  for (const auto& entry : m.boot_entries) {
    const Bytes option = uefi::LoadOption(entry.description, entry.path);
    b.Measure(1, ev::kEfiVariableBoot, option,
              uefi::VariableData(uefi::kGlobalVariable, uefi::BootVariableName(entry.number), option));
  }
  // PCR2: option ROMs on cards.
  for (const auto& rom : m.option_roms) {
    if (!rom.embedded) {
      b.Measure(2, ev::kEfiBootServicesDriver, Text(rom.content), uefi::ImageLoadEvent(rom.content.size(), ""));
    }
  }
  // Ready to boot: PCR4 notes the boot attempt; PCRs 0-6 get their separators.
  b.Measure(4, ev::kEfiAction, Text("Calling EFI Application from Boot Option"));
  for (uint32_t pcr = 0; pcr <= 6; ++pcr) b.Measure(pcr, ev::kSeparator, uefi::kSeparatorData);
  // PCR5: the partition table of the boot disk.
  if (!m.gpt.empty()) b.Measure(5, ev::kEfiGptEvent, uefi::GptEvent(m.disk_guid, m.gpt));

  // The boot loader chain.
  const SecureBoot& sb = m.secure_boot;
  const std::string first_db = sb.db.empty() ? "" : sb.db.front();
  if (m.boot_loader.kind == "systemd-boot") {
    if (!m.boot_loader.systemd_boot.empty()) {
      MeasureApplication(b, 4, m.boot_loader.systemd_boot, "\\EFI\\systemd\\systemd-bootx64.efi");
      MeasureAuthority(b, sb, first_db, uefi::kImageSecurityDatabase, "db");
    }
    if (!m.kernel.image.empty()) MeasureApplication(b, 4, m.kernel.image, "\\EFI\\Linux\\linux.efi");
    if (!m.kernel.cmdline.empty()) b.Measure(12, ev::kIpl, uefi::Ucs2(m.kernel.cmdline, true));
    if (!m.kernel.initrd.empty()) b.Measure(9, ev::kIpl, Text(m.kernel.initrd), Text("initrd"));
  } else {
    if (!m.boot_loader.shim.empty()) {
      MeasureApplication(b, 4, m.boot_loader.shim, "\\EFI\\BOOT\\BOOTX64.EFI");
      MeasureAuthority(b, sb, first_db, uefi::kImageSecurityDatabase, "db");
    }
    if (!m.boot_loader.grub.empty()) {
      MeasureApplication(b, 4, m.boot_loader.grub, "\\EFI\\BOOT\\grubx64.efi");
      MeasureAuthority(b, sb, m.boot_loader.shim, uefi::kShimLock, "Shim");
    }
    for (const auto& cmd : m.boot_loader.grub_commands) {
      b.Measure(8, ev::kIpl, Text(cmd), uefi::CString("grub_cmd: " + cmd));
    }
    if (!m.kernel.image.empty()) {
      b.Measure(9, ev::kIpl, Text(m.kernel.image), uefi::CString("/boot/vmlinuz"));
      MeasureApplication(b, 4, m.kernel.image, "");
    }
    if (!m.kernel.cmdline.empty()) {
      b.Measure(8, ev::kIpl, Text(m.kernel.cmdline), uefi::CString("kernel_cmdline: " + m.kernel.cmdline));
    }
    if (!m.kernel.initrd.empty()) b.Measure(9, ev::kIpl, Text(m.kernel.initrd), uefi::CString("/boot/initrd.img"));
  }
  // PCR5: the OS takes over the platform.
  b.Measure(5, ev::kEfiAction, Text("Exit Boot Services Invocation"));
  b.Measure(5, ev::kEfiAction, Text("Exit Boot Services Returned with Success"));
  // The OS measures its own modules.
  uint32_t tag = 0;
  for (const auto& os : m.os_measurements) {
    b.Measure(static_cast<uint32_t>(os.pcr), ev::kEventTag, Text(os.content), uefi::TaggedEvent(tag++, os.name));
  }
  return b.Take();
}

Status EmulatedFirmware::AfterStartup(Tpm& tpm, StartupType type, const std::vector<HashAlg>& banks) {
  if (type == StartupType::kState) return Status::Ok();  // S3 resume: nothing is measured again
  if (model_.recorded_log) {
    TRY_ASSIGN(log_, RecordedBootLog(model_, banks));
  } else {
    log_ = MeasuredBootLog(model_, boot_, banks);
  }
  for (const Event& e : log_.events()) {
    // The TPM measured the H-CRTM itself before Startup; NO_ACTION is never extended.
    if (e.type == ev::kNoAction || (e.type == ev::kEfiHcrtmEvent && e.pcr == 0)) continue;
    std::map<HashAlg, Bytes> digests;
    for (uint32_t i = 0; i < e.digest_count; ++i) {
      const auto& d = log_.DigestAt(e, i);
      ByteView v = log_.DigestBytes(d);
      digests[static_cast<HashAlg>(d.alg)] = Bytes(v.begin(), v.end());
    }
    TRY(tpm.Extend(static_cast<int>(e.pcr), digests));
  }
  return Status::Ok();
}

Status EmulatedFirmware::Measure(Tpm& tpm, const std::vector<HashAlg>& banks, int pcr, uint32_t type,
                                 const std::string& data, bool logged) {
  const ByteView bytes(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  std::map<HashAlg, Bytes> digests;
  std::vector<std::pair<uint16_t, Bytes>> logged_digests;
  for (HashAlg bank : banks) {
    TRY_ASSIGN(Bytes d, Hash(bank, bytes));
    logged_digests.emplace_back(static_cast<uint16_t>(bank), d);
    digests[bank] = std::move(d);
  }
  TRY(tpm.Extend(pcr, digests));
  if (logged) log_.Append(static_cast<uint32_t>(pcr), type, logged_digests, bytes);
  return Status::Ok();
}

Result<Bytes> PlatformLog::ReadLog() {
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    return Status::Error(Layer::kEnvironment, file_.string() +
                                                  ": cannot read the platform's event log (is securityfs "
                                                  "mounted, and are you root?)");
  }
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace tpmlab
