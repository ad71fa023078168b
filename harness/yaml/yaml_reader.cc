#include "harness/yaml_reader.h"

#include <fstream>
#include <sstream>

namespace tpmlab {

std::string SourceLocation::ToString() const {
  if (line == 0) return file.empty() ? "<code>" : file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Result<YAML::Node> YamlReader::Parse(const std::string& text) const {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::Error(layer_, file_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                                     std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

Result<std::string> YamlReader::ReadText(const std::filesystem::path& file, Layer layer) {
  std::ifstream in(file);
  if (!in) return Status::Error(layer, file.string() + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

SourceLocation YamlReader::Where(const YAML::Node& n) const {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return {file_, 0, 0};
  return {file_, m.line + 1, m.column + 1};
}

Status YamlReader::Error(const YAML::Node& n, const std::string& message) const {
  return Status::Error(layer_, Where(n).ToString() + ": " + message);
}

Status YamlReader::Error(const std::string& message) const {
  return Status::Error(layer_, file_ + ": " + message);
}

Status YamlReader::Keys(const YAML::Node& map, const std::string& what,
                        const std::set<std::string>& allowed) const {
  if (!map.IsMap()) return Error(map, what + " must be a mapping");
  std::set<std::string> seen;
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    // yaml-cpp keeps the first of two equal keys and drops the second.
    if (!seen.insert(key).second) return Error(kv.first, "duplicate key '" + key + "' in " + what);
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Error(kv.first, "unknown key '" + key + "' in " + what + " (expected one of: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> YamlReader::StringList(const YAML::Node& n, const std::string& what) const {
  if (!n.IsSequence()) return Error(n, what + " must be a list");
  std::vector<std::string> out;
  for (const auto& item : n) {
    TRY_ASSIGN(std::string s, String(item, "an entry of " + what));
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tpmlab
