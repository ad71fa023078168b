// A repro bundle written and read: the archive, its manifest and the store
// rows it carries. One file (just over 600 lines) because writer and reader
// share the manifest's layout; replaying a bundle is bundle_replay.cc.
#include "harness/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "drivers/bytes.h"
#include "harness/run_files.h"
#include "harness/store.h"
#include "harness/enrollment.h"
#include "harness/runner.h"
#include "harness/tpm_types.h"
#include "harness/version.h"

namespace tpmlab {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kBlock = 64 * 1024;

std::string NowUtc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// sha256 over data fed in pieces.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
  }
  void Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string Hex() {
    std::array<uint8_t, EVP_MAX_MD_SIZE> md{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md.data(), &n);
    return ToHex(ByteView(md.data(), n));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

// ---------------------------------------------------------------------------
// Writing.

struct Member {
  std::string name;  // path inside the bundle
  fs::path source;   // a file on disk, or
  std::string text;  // generated content when source is empty
  uint64_t size = 0;
  std::string sha256;
};

Status FromArchive(archive* a, const std::string& what) {
  const char* e = archive_error_string(a);
  return Status::Error(Layer::kStore, what + ": " + (e ? e : "libarchive error"));
}

// Every regular file under run_dir/folder, as members named folder/...
Status AddTree(const fs::path& run_dir, const std::string& folder, std::vector<Member>& out) {
  const fs::path root = run_dir / folder;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return Status::Ok();
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;  // sockets, locks that are not files, folders
    if (it->path().filename() == ".lock") continue;  // swtpm's lock, meaningless elsewhere
    out.push_back({fs::relative(it->path(), run_dir).generic_string(), it->path(), "", 0, ""});
  }
  if (ec) return Status::Error(Layer::kStore, "cannot list " + root.string() + ": " + ec.message());
  return Status::Ok();
}

// A path run.json names must stay inside the run folder.
bool InsideRun(const std::string& rel) {
  const fs::path p(rel);
  if (rel.empty() || p.is_absolute()) return false;
  return std::none_of(p.begin(), p.end(), [](const fs::path& c) { return c == ".."; });
}

Status HashMember(Member& m) {
  Sha256 h;
  if (m.source.empty()) {
    h.Update(m.text.data(), m.text.size());
    m.size = m.text.size();
  } else {
    std::ifstream in(m.source, std::ios::binary);
    if (!in) return Status::Error(Layer::kStore, "cannot read " + m.source.string());
    std::vector<char> buf(kBlock);
    m.size = 0;
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      const auto n = static_cast<size_t>(in.gcount());
      h.Update(buf.data(), n);
      m.size += n;
    }
    if (in.bad()) return Status::Error(Layer::kStore, "cannot read " + m.source.string());
  }
  m.sha256 = h.Hex();
  return Status::Ok();
}

Status WriteMember(archive* a, const Member& m, const fs::path& out_file) {
  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), m.name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(m.size));
  archive_entry_set_mtime(e.get(), std::time(nullptr), 0);
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) return FromArchive(a, out_file.string() + ": " + m.name);
  auto put = [&](const char* p, size_t n) {
    return archive_write_data(a, p, n) == static_cast<la_ssize_t>(n);
  };
  if (m.source.empty()) {
    if (!put(m.text.data(), m.text.size())) return FromArchive(a, out_file.string() + ": " + m.name);
    return Status::Ok();
  }
  std::ifstream in(m.source, std::ios::binary);
  std::vector<char> buf(kBlock);
  uint64_t written = 0;
  while (in && written < m.size) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), m.size - written)));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    if (!put(buf.data(), n)) return FromArchive(a, out_file.string() + ": " + m.name);
    written += n;
  }
  if (written != m.size) {
    return Status::Error(Layer::kStore, m.source.string() + " changed while it was being bundled");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Reading.

// "inputs/a.yaml" from "./inputs//a.yaml"; nullopt when the name would land
// outside the target folder.
std::optional<std::string> SafeMemberName(const char* raw) {
  if (raw == nullptr || *raw == '\0') return std::nullopt;
  const fs::path p(raw);
  if (p.is_absolute()) return std::nullopt;
  fs::path clean;
  for (const auto& c : p) {
    if (c == "..") return std::nullopt;
    if (c == "." || c.empty()) continue;
    clean /= c;
  }
  if (clean.empty()) return std::nullopt;
  return clean.generic_string();
}

const std::string kOnlyInside = "; a bundle holds only regular files and folders, all inside it";

struct ArchiveReadCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

class Extractor {
 public:
  Extractor(const fs::path& file, const fs::path& dir, const BundleLimits& limits)
      : file_(file), dir_(dir), limits_(limits) {}

  Result<std::map<std::string, std::pair<uint64_t, std::string>>> Run() {
    std::unique_ptr<archive, ArchiveReadCloser> a(archive_read_new());
    archive_read_support_filter_gzip(a.get());
    archive_read_support_format_tar(a.get());
    a_ = a.get();
    if (archive_read_open_filename(a_, file_.c_str(), kBlock) != ARCHIVE_OK) {
      return Fail("", "not a readable tar.gz");
    }
    for (;;) {
      archive_entry* e = nullptr;
      const int rc = archive_read_next_header(a_, &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc < ARCHIVE_WARN) {
        return Fail(last_.empty() ? "" : "after member " + last_, "not a readable tar.gz");
      }
      TRY(Entry(e));
    }
    return std::move(files_);
  }

 private:
  // Where reading stopped: the compressed bytes consumed, or the file's end
  // when libarchive stopped before it could say (a file cut short).
  std::string At() const {
    std::error_code ec;
    const auto size = fs::file_size(file_, ec);
    const la_int64_t read = a_ != nullptr ? archive_filter_bytes(a_, -1) : -1;
    if (read >= 0 && (ec || static_cast<uintmax_t>(read) < size)) {
      offset_ = static_cast<uint64_t>(read);
      return " (at byte " + std::to_string(read) + " of " + (ec ? "the file" : std::to_string(size)) + ")";
    }
    offset_ = ec ? 0 : static_cast<uint64_t>(size);
    return ec ? "" : " (at byte " + std::to_string(size) + ", the end of the file)";
  }
  Status Fail(const std::string& where, const std::string& what) const {
    const char* e = archive_error_string(a_);
    std::string m = file_.string() + ": " + (where.empty() ? "" : where + ": ") + what;
    if (e != nullptr && *e != '\0') m += ": " + std::string(e);
    m += At();
    return Status::Parse(m, offset_);
  }
  // A member refused for what it is: where its header starts in the tar.
  Status Reject(const std::string& member, const std::string& why) const {
    const la_int64_t header = archive_read_header_position(a_);
    return Status::Parse(file_.string() + ": member '" + member + "' " + why + " (its header is at byte " +
                             std::to_string(header) + " of the unpacked tar)",
                         static_cast<uint64_t>(std::max<la_int64_t>(header, 0)));
  }

  Status Entry(archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    const std::string shown = raw ? raw : "(unnamed)";
    if (++members_ > limits_.max_members) {
      return Reject(shown, "is one member too many (at most " + std::to_string(limits_.max_members) + ")");
    }
    const auto type = archive_entry_filetype(e);
    if (type == AE_IFDIR && raw != nullptr && fs::path(raw).lexically_normal() == ".") return Status::Ok();  // tar -C dir .
    const std::optional<std::string> name = SafeMemberName(raw);
    if (!name) return Reject(shown, std::string("has an absolute path or '..'") + kOnlyInside);
    if (archive_entry_hardlink(e) != nullptr) {
      return Reject(shown, std::string("is a hard link to '") + archive_entry_hardlink(e) + "'" + kOnlyInside);
    }
    if (type == AE_IFLNK) {
      const char* to = archive_entry_symlink(e);
      return Reject(shown, std::string("is a symbolic link to '") + (to ? to : "") + "'" + kOnlyInside);
    }
    last_ = *name;
    const fs::path target = dir_ / *name;
    std::error_code ec;
    if (type == AE_IFDIR) {
      fs::create_directories(target, ec);
      if (ec) return Status::Error(Layer::kStore, "cannot create " + target.string() + ": " + ec.message());
      return Status::Ok();
    }
    if (type != AE_IFREG) return Reject(shown, std::string("is a device, fifo or socket") + kOnlyInside);
    if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
        total_ + static_cast<uint64_t>(archive_entry_size(e)) > limits_.max_total_bytes) {
      return Reject(shown, "would take the bundle past " + std::to_string(limits_.max_total_bytes) +
                               " bytes unpacked");
    }
    fs::create_directories(target.parent_path(), ec);
    if (ec) return Status::Error(Layer::kStore, "cannot create " + target.parent_path().string() + ": " + ec.message());
    // O_EXCL: a member named twice is an error, never a silent overwrite;
    // O_NOFOLLOW: never write through a link, though none can be there.
    const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      if (errno == EEXIST) return Reject(shown, "appears twice");
      return Status::Error(Layer::kStore, "cannot create " + target.string() + ": " + std::strerror(errno));
    }
    Sha256 h;
    uint64_t size = 0;
    std::vector<char> buf(kBlock);
    Status status = Status::Ok();
    for (;;) {
      const la_ssize_t n = archive_read_data(a_, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        status = Fail("member '" + *name + "'", "cannot read its data");
        break;
      }
      size += static_cast<uint64_t>(n);
      total_ += static_cast<uint64_t>(n);
      if (total_ > limits_.max_total_bytes) {
        status = Reject(shown, "takes the bundle past " + std::to_string(limits_.max_total_bytes) +
                                   " bytes unpacked");
        break;
      }
      h.Update(buf.data(), static_cast<size_t>(n));
      if (::write(fd, buf.data(), static_cast<size_t>(n)) != n) {
        status = Status::Error(Layer::kStore, "cannot write " + target.string() + ": " + std::strerror(errno));
        break;
      }
    }
    if (::close(fd) != 0 && status.ok()) {
      status = Status::Error(Layer::kStore, "cannot write " + target.string() + ": " + std::strerror(errno));
    }
    TRY(status);
    files_[*name] = {size, h.Hex()};
    return Status::Ok();
  }

  fs::path file_;
  fs::path dir_;
  BundleLimits limits_;
  archive* a_ = nullptr;
  std::string last_;
  uint64_t members_ = 0;
  uint64_t total_ = 0;
  mutable uint64_t offset_ = 0;
  std::map<std::string, std::pair<uint64_t, std::string>> files_;
};

// Removes what an extraction wrote; the folder itself stays.
void Clear(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
}

}  // namespace

Result<json> ExportRunTrace(const fs::path& database, int64_t run_id) {
  std::error_code ec;
  if (!IsDatabaseUrl(database) && !fs::is_regular_file(database, ec)) {
    return Status::Parse(database.string() + ": no such database");
  }
  // Through the store, which knows how steps are packed: no SQL out here.
  TRY_ASSIGN(std::unique_ptr<Store> store, Store::Open(database));
  TRY_ASSIGN(StoredRun run, store->LoadRun(run_id));
  json out = {{"database", IsDatabaseUrl(database) ? DatabaseDisplayName(database) : database.filename().string()},
              {"run_id", run_id}};
  out["run"] = {{"id", run.id}, {"scenario", run.info.scenario}, {"scenario_file", run.info.scenario_file},
                {"seed", run.info.seed}, {"status", run.status}, {"started_at", run.info.started_at},
                {"finished_at", run.finished_at}, {"tpmlab_version", run.info.tpmlab_version},
                {"host", run.info.host}, {"dut", run.info.dut},
                {"config", json::parse(run.info.config_json, nullptr, false)}, {"outcome", run.outcome},
                {"steps", run.steps}, {"power_cycles", run.power_cycles}, {"alarms", run.alarms},
                {"firmware", run.firmware}};
  if (out["run"]["config"].is_discarded()) out["run"]["config"] = run.info.config_json;
  json steps = json::array();
  TRY(store->ForEachStep(run_id, [&](StepResult&& step) {
    json j = StepToJson(step);
    // Every command with its bytes and timing, as the TPM saw them.
    json commands = json::array();
    for (const auto& c : step.trace) {
      commands.push_back({{"seq", c.sequence}, {"code", c.command_code}, {"name", TpmCommandName(c.command_code)},
                          {"response_code", c.response_code}, {"failed", c.failed},
                          {"duration_us", std::chrono::duration<double, std::micro>(c.duration).count()},
                          {"command", ToHex(c.command)}, {"response", ToHex(c.response)}});
    }
    j["commands"] = std::move(commands);
    steps.push_back(std::move(j));
    return Status::Ok();
  }));
  TRY_ASSIGN(std::optional<Enrollment> enrollment, store->LoadEnrollment(run_id));
  out["enrollments"] = json::array();
  if (enrollment) out["enrollments"].push_back(EnrollmentToJson(*enrollment));
  out["steps"] = std::move(steps);
  return out;
}

// The run.json of a stored run with every snapshot inline (tpmlab export
// --run-json full), written to a scratch folder and read back.
static Result<std::string> FullRunJson(const fs::path& db, int64_t run_id) {
  const fs::path scratch = fs::temp_directory_path() / ("tpmlab-bundle-" + std::to_string(::getpid()));
  struct RemoveScratch {
    fs::path dir;
    ~RemoveScratch() { std::error_code ec; fs::remove_all(dir, ec); }
  } remove_scratch{scratch};
  TRY_ASSIGN(auto store, Store::Open(db));
  TRY(WriteRunFiles(*store, run_id, scratch, RunJsonForm::kFull));
  std::ifstream in(scratch / "run.json", std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Status WriteBundle(const fs::path& run, const fs::path& out_file) {
  std::error_code ec;
  const fs::path run_dir = fs::is_directory(run, ec) ? run : run.parent_path();
  const fs::path run_json = run_dir / "run.json";
  std::ifstream in(run_json);
  if (!in) return Status::Parse("no run.json in " + run_dir.string() + " (is it a run folder?)");
  const json r = json::parse(in, nullptr, false);
  if (r.is_discarded() || !r.is_object()) return Status::Parse(run_json.string() + ": not JSON");

  const json inputs = r.value("inputs", json());
  if (!inputs.is_object() || !inputs.contains("scenario") || !inputs["scenario"].is_string()) {
    return Status::Parse(run_json.string() + ": no \"inputs\" (the run was recorded by a tpmlab that did not "
                         "keep its scenario and models); run it again to bundle it");
  }
  // A run on a real chip has no emulator state to start a replay from; its
  // bundle replays on a newly manufactured one.
  const std::string initial_state = inputs.value("initial_state", "");
  for (const std::string& p : {inputs["scenario"].get<std::string>(), initial_state}) {
    if (!p.empty() && !InsideRun(p)) {
      return Status::Parse(run_json.string() + ": inputs name '" + p + "', not a path inside the run");
    }
  }
  if (!initial_state.empty() && !fs::is_directory(run_dir / initial_state, ec)) {
    return Status::Parse(run_dir.string() + ": no " + initial_state + "/ (the chip state before the first command)");
  }

  std::vector<Member> members;
  members.push_back({"run.json", run_json, "", 0, ""});
  for (const char* optional : {"junit.xml", "enrollment.json"}) {
    if (fs::is_regular_file(run_dir / optional, ec)) members.push_back({optional, run_dir / optional, "", 0, ""});
  }
  TRY(AddTree(run_dir, "inputs", members));
  if (!initial_state.empty()) TRY(AddTree(run_dir, initial_state, members));
  TRY(AddTree(run_dir, "eventlogs", members));
  for (const auto& d : fs::directory_iterator(run_dir, ec)) {  // dut0/swtpm.log, dut0/swtpm_setup.log, ...
    if (!d.is_directory() || !d.path().filename().string().starts_with("dut")) continue;
    for (const auto& f : fs::directory_iterator(d.path(), ec)) {
      if (f.is_regular_file() && f.path().extension() == ".log") {
        members.push_back({fs::relative(f.path(), run_dir).generic_string(), f.path(), "", 0, ""});
      }
    }
  }
  std::vector<std::string> listed = {inputs["scenario"].get<std::string>()};
  for (const auto& f : inputs.value("files", json::array())) {
    if (f.is_string()) listed.push_back(f.get<std::string>());
  }
  // Each model reference must land on a copy in the bundle: a replay loads
  // nothing else.
  for (const auto& m : inputs.value("models", json::array())) {
    for (const char* key : {"named_in", "file"}) {
      const std::string p = m.is_object() ? m.value(key, "") : "";
      if (!InsideRun(p)) {
        return Status::Parse(run_json.string() + ": inputs.models names '" + p + "', not a path inside the run");
      }
      listed.push_back(p);
    }
  }
  for (const auto& want : listed) {
    if (std::none_of(members.begin(), members.end(), [&](const Member& m) { return m.name == want; })) {
      return Status::Parse(run_json.string() + ": lists input '" + want + "', which is not in the run folder");
    }
  }

  // The run's rows: the database run.json names, or the one beside it when
  // the folder was moved.
  fs::path db = r.value("database", "");
  if (!IsDatabaseUrl(db) && (db.empty() || !fs::exists(db, ec))) db = run_dir / "tpmlab.db";
  if (!IsDatabaseUrl(db) && !fs::exists(db, ec)) {
    return Status::Parse(run_json.string() + ": its database " + r.value("database", std::string("?")) +
                         " is gone, and there is no tpmlab.db beside it");
  }
  TRY_ASSIGN(json trace, ExportRunTrace(db, r.value("run_id", int64_t{0})));
  members.push_back({"trace.json", {}, trace.dump(1) + "\n", 0, ""});
  if (r.value("step_snapshots", "") == "stored") {
    // A compact run.json names snapshots in a database the bundle does not
    // carry: the bundle holds the run.json with every snapshot inline.
    TRY_ASSIGN(members.front().text, FullRunJson(db, r.value("run_id", int64_t{0})));
    members.front().source.clear();
  }

  std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.name < b.name; });
  json files = json::array();
  for (auto& m : members) {
    TRY(HashMember(m));
    files.push_back({{"path", m.name}, {"size", m.size}, {"sha256", m.sha256}});
  }
  const json manifest = {{"format", kBundleFormat},
                         {"version", kBundleVersion},
                         {"tpmlab_version", kTpmlabVersion},
                         {"scenario", r.value("scenario", "")},
                         {"scenario_file", inputs["scenario"]},
                         {"initial_state", initial_state},
                         {"seed", r.value("seed", uint64_t{0})},
                         {"run_status", r.value("status", "")},
                         {"created_at", NowUtc()},
                         {"files", files}};
  Member head{kBundleManifest, {}, manifest.dump(2) + "\n", 0, ""};
  TRY(HashMember(head));

  // Written beside the target and renamed: a bundle is whole or absent.
  const fs::path tmp = out_file.string() + ".part";
  std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
  archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  if (archive_write_open_filename(a.get(), tmp.c_str()) != ARCHIVE_OK) {
    return FromArchive(a.get(), "cannot write " + tmp.string());
  }
  Status status = WriteMember(a.get(), head, out_file);
  for (size_t i = 0; status.ok() && i < members.size(); ++i) status = WriteMember(a.get(), members[i], out_file);
  if (status.ok() && archive_write_close(a.get()) != ARCHIVE_OK) status = FromArchive(a.get(), "cannot write " + tmp.string());
  if (status.ok()) fs::rename(tmp, out_file, ec);
  if (status.ok() && ec) status = Status::Error(Layer::kStore, "cannot write " + out_file.string() + ": " + ec.message());
  if (!status.ok()) fs::remove(tmp, ec);
  return status;
}

Result<json> ReadBundleManifest(const fs::path& dir) {
  const fs::path file = dir / kBundleManifest;
  std::ifstream in(file);
  if (!in) return Status::Parse("not a tpmlab bundle: it has no " + std::string(kBundleManifest));
  json m = json::parse(in, nullptr, false);
  if (m.is_discarded() || !m.is_object()) return Status::Parse("member bundle.json: not JSON");
  if (m.value("format", "") != kBundleFormat) {
    return Status::Parse("member bundle.json: format is not \"" + std::string(kBundleFormat) + "\"");
  }
  if (!m["version"].is_number_integer() || m["version"].get<int>() > kBundleVersion) {
    return Status::Parse("member bundle.json: version " + m.value("version", json()).dump() +
                         " is newer than this tpmlab reads (" + std::to_string(kBundleVersion) + ")");
  }
  if (!m["files"].is_array()) return Status::Parse("member bundle.json: no files list");
  return m;
}

Result<fs::path> ExtractBundle(const fs::path& file, const fs::path& dir, const BundleLimits& limits) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return Status::Parse(file.string() + ": no such file");
  fs::create_directories(dir, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot create " + dir.string() + ": " + ec.message());
  if (!fs::is_empty(dir, ec)) return Status::Error(Layer::kStore, dir.string() + " is not empty");

  auto check = [&]() -> Status {
    TRY_ASSIGN(auto found, Extractor(file, dir, limits).Run());
    auto manifest = ReadBundleManifest(dir);
    if (!manifest.ok()) return manifest.status().Wrap(file.string());
    std::map<std::string, bool> listed;
    for (const auto& f : (*manifest)["files"]) {
      const std::string path = f.value("path", "");
      listed[path] = true;
      const auto it = found.find(path);
      if (it == found.end()) return Status::Parse(file.string() + ": member '" + path + "' is listed in bundle.json but missing");
      if (it->second.first != f.value("size", uint64_t{0}) || it->second.second != f.value("sha256", "")) {
        return Status::Parse(file.string() + ": member '" + path + "' is damaged: sha256 " + it->second.second +
                             " (" + std::to_string(it->second.first) + " bytes), bundle.json says " +
                             f.value("sha256", "?") + " (" + std::to_string(f.value("size", uint64_t{0})) + " bytes)");
      }
    }
    for (const auto& [path, info] : found) {
      if (path != kBundleManifest && !listed.count(path)) {
        return Status::Parse(file.string() + ": member '" + path + "' is not listed in bundle.json");
      }
    }
    return Status::Ok();
  };
  Status s = check();
  if (!s.ok()) {
    Clear(dir);  // nothing half-checked is left to be used
    return s;
  }
  return dir;
}

}  // namespace tpmlab
