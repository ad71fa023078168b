// Reading tpmlab's YAML files (scenarios, firmware models, benches) with
// errors that name file:line:column of the node at fault. Nothing here knows
// what the files mean; the loaders above it do.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "drivers/status.h"

namespace tpmlab {

// Where something came from ("power-cycle.yaml:12:5").
struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when built in code
  int column = 0;
  std::string ToString() const;
  // The same place as Status data (file only when line is 0).
  Location AsLocation() const;
  // "file:line:column: message" of `layer`, with the place as data too. A
  // place without a line (a step built in code, named by a label) is left
  // in the message only.
  Status Error(Layer layer, const std::string& message) const;
};

class YamlReader {
 public:
  // `layer` is what errors are reported as (a scenario file is kScenario).
  explicit YamlReader(std::string file, Layer layer = Layer::kScenario)
      : file_(std::move(file)), layer_(layer) {}

  /// Parses the text; a syntax error names the line and column.
  Result<YAML::Node> Parse(const std::string& text) const;
  /// Reads and parses a file.
  static Result<std::string> ReadText(const std::filesystem::path& file, Layer layer);

  SourceLocation Where(const YAML::Node& n) const;
  Status Error(const YAML::Node& n, const std::string& message) const;
  Status Error(const std::string& message) const;  // the file as a whole
  // What a yaml-cpp exception says, as this file's error at its mark.
  Status Thrown(const YAML::Exception& e) const;

  // Runs `read` (which returns a Result or Status); a yaml-cpp exception it
  // throws (a node read as what it is not, e.g. a list as a mapping's key)
  // becomes this file's error at that node instead of escaping.
  template <typename Read>
  auto Catching(Read&& read) const -> decltype(read()) {
    try {
      return read();
    } catch (const YAML::Exception& e) {
      return Thrown(e);
    }
  }

  /// `map` must be a mapping whose keys are all in `allowed`, each once.
  Status Keys(const YAML::Node& map, const std::string& what, const std::set<std::string>& allowed) const;

  template <typename T>
  Result<T> Scalar(const YAML::Node& n, const std::string& what, const char* type) const {
    if (!n.IsScalar()) return Error(n, what + " must be " + type);
    T value;
    if (!YAML::convert<T>::decode(n, value)) {
      return Error(n, what + " must be " + type + ", not '" + n.Scalar() + "'");
    }
    return value;
  }
  Result<std::string> String(const YAML::Node& n, const std::string& what) const {
    return Scalar<std::string>(n, what, "a string");
  }
  Result<int64_t> Int(const YAML::Node& n, const std::string& what) const {
    return Scalar<int64_t>(n, what, "an integer");
  }
  Result<uint64_t> Unsigned(const YAML::Node& n, const std::string& what) const {
    return Scalar<uint64_t>(n, what, "a non-negative integer");
  }
  Result<bool> Bool(const YAML::Node& n, const std::string& what) const {
    return Scalar<bool>(n, what, "true or false");
  }
  Result<std::vector<std::string>> StringList(const YAML::Node& n, const std::string& what) const;

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  Layer layer_;
};

}  // namespace tpmlab
