#include "harness/run_files.h"

#include <fstream>
#include <set>

#include "run.h"

namespace tpmlab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The deepest folder holding all of `files`.
fs::path CommonFolder(const std::vector<fs::path>& files) {
  fs::path common = files.front().parent_path();
  for (const auto& f : files) {
    while (!common.empty() && std::mismatch(common.begin(), common.end(), f.begin(), f.end()).first != common.end()) {
      common = common.parent_path();
    }
  }
  return common;
}

std::string XmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 allows no other control characters.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Seconds(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", ms / 1000.0);
  return buf;
}

}  // namespace

Status WriteFileAtomically(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return Status::Error(Layer::kStore, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, file, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot write " + file.string() + ": " + ec.message());
  return Status::Ok();
}

Result<json> SaveRunInputs(const Scenario& scenario, const fs::path& out_dir) {
  json inputs = {{"scenario", nullptr}, {"files", json::array()}};
  if (scenario.file.empty()) return inputs;  // built in code: there is no file to keep
  std::error_code ec;
  const fs::path scenario_file = fs::weakly_canonical(fs::absolute(scenario.file), ec);
  std::vector<fs::path> files = {scenario_file};
  for (const auto& s : scenario.sources) {
    fs::path p = fs::weakly_canonical(fs::absolute(s), ec);
    if (std::find(files.begin(), files.end(), p) == files.end()) files.push_back(p);
  }
  const fs::path root = CommonFolder(files);
  const fs::path dir = out_dir / "inputs";
  fs::remove_all(dir, ec);
  for (const auto& f : files) {
    const fs::path relative = f.lexically_relative(root);
    const fs::path to = dir / relative;
    fs::create_directories(to.parent_path(), ec);
    if (f == scenario_file && !scenario.text.empty()) {
      // The text that ran, which the file may no longer hold.
      TRY(WriteFileAtomically(to, scenario.text));
    } else {
      fs::copy_file(f, to, fs::copy_options::overwrite_existing, ec);
      if (ec) return Status::Error(Layer::kStore, "cannot copy " + f.string() + " to " + to.string() + ": " + ec.message());
    }
    inputs["files"].push_back(("inputs" / relative).string());
  }
  inputs["scenario"] = inputs["files"].front();
  // Each model name and the copy it resolved to, so a replay loads these
  // copies by the same names and nothing from the host it runs on.
  auto copy_of = [&](const std::string& path) {
    return ("inputs" / fs::weakly_canonical(fs::absolute(path), ec).lexically_relative(root)).string();
  };
  inputs["models"] = json::array();
  for (const auto& r : scenario.model_references) {
    inputs["models"].push_back({{"named_in", copy_of(r.named_in)}, {"name", r.name}, {"file", copy_of(r.file)}});
  }
  // The file says one count; the run used this one (`tpmlab run --cycles`).
  if (scenario.cycles) inputs["cycles"] = *scenario.cycles;
  return inputs;
}

JunitWriter::JunitWriter(fs::path file) : file_(std::move(file)), spool_path_(file_.string() + ".cases.tmp") {
  spool_.open(spool_path_, std::ios::binary | std::ios::trunc);
}

JunitWriter::~JunitWriter() {
  std::error_code ec;
  fs::remove(spool_path_, ec);
}

std::string JunitWriter::CaseXml(const std::string& suite, const Case& c) {
  std::string x = "    <testcase classname=\"" + suite + "\" name=\"" + XmlEscape(c.name) + "\" time=\"" +
                  Seconds(c.ms) + "\"";
  if (c.failure.empty()) return x + "/>\n";
  const char* tag = c.error ? "error" : "failure";
  const std::string first_line = c.failure.substr(0, c.failure.find('\n'));
  return x + ">\n      <" + tag + " message=\"" + XmlEscape(first_line) + "\">" + XmlEscape(c.failure) + "</" +
         tag + ">\n    </testcase>\n";
}

void JunitWriter::Count(const Case& c) {
  ++tests_;
  if (!c.failure.empty()) (c.error ? errors_ : failures_)++;
}

void JunitWriter::AddStepCase(const std::string& suite, const Case& c) {
  Count(c);
  spool_ << CaseXml(XmlEscape(suite), c);
}

Status JunitWriter::Finish(const std::string& suite_name, const json& properties, const Case& run_case,
                           const std::vector<Case>& expectation_cases) {
  spool_.close();
  if (!spool_) return Status::Error(Layer::kStore, "cannot write " + spool_path_.string());
  Count(run_case);
  for (const auto& c : expectation_cases) Count(c);
  const std::string suite = XmlEscape(suite_name);
  const std::string total = Seconds(run_case.ms);
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += "<testsuites name=\"tpmlab\" tests=\"" + std::to_string(tests_) + "\" failures=\"" +
       std::to_string(failures_) + "\" errors=\"" + std::to_string(errors_) + "\" time=\"" + total + "\">\n";
  x += "  <testsuite name=\"" + suite + "\" tests=\"" + std::to_string(tests_) + "\" failures=\"" +
       std::to_string(failures_) + "\" errors=\"" + std::to_string(errors_) + "\" skipped=\"0\" time=\"" + total +
       "\">\n";
  x += "    <properties>\n";
  for (const auto& [key, value] : properties.items()) {
    const std::string v = value.is_string() ? value.get<std::string>() : value.dump();
    x += "      <property name=\"" + XmlEscape(key) + "\" value=\"" + XmlEscape(v) + "\"/>\n";
  }
  x += "    </properties>\n";
  x += CaseXml(suite, run_case);
  for (const auto& c : expectation_cases) x += CaseXml(suite, c);
  const fs::path tmp = file_.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    std::ifstream cases(spool_path_, std::ios::binary);
    out << x;
    if (cases.peek() != std::ifstream::traits_type::eof()) out << cases.rdbuf();
    out << "  </testsuite>\n</testsuites>\n";
    if (!out) return Status::Error(Layer::kStore, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, file_, ec);
  if (ec) return Status::Error(Layer::kStore, "cannot write " + file_.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace tpmlab
