#include "server/tables/amax_table_json.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace qcal::server {
namespace {

// The double whose shortest decimal form is the shortest one of `value` as float32, so the JSON
// says 2.64 rather than 2.640000104904175 and still reads back as the same float32.
double ShortestDouble(float value) {
  char buf[32];
  const auto printed = std::to_chars(buf, buf + sizeof(buf), value);
  double out = 0;
  std::from_chars(buf, printed.ptr, out);
  return out;
}

}  // namespace

std::string AmaxTableToJson(const AmaxTable& table) {
  nlohmann::ordered_json quantizers = nlohmann::ordered_json::object();
  for (const auto& [name, entry] : table.quantizers) {
    nlohmann::ordered_json amax;
    if (entry.axis.has_value()) {
      amax = nlohmann::ordered_json::array();
      for (float value : entry.amax) amax.push_back(ShortestDouble(value));
    } else {
      amax = entry.amax.empty() ? nlohmann::ordered_json()
                                : nlohmann::ordered_json(ShortestDouble(entry.amax.front()));
    }
    quantizers[name] = {
        {"amax", std::move(amax)},
        {"num_bits", entry.num_bits},
        {"unsigned", entry.is_unsigned},
        {"axis",
         entry.axis.has_value() ? nlohmann::ordered_json(*entry.axis) : nlohmann::ordered_json()},
        {"method", entry.method},
        {"batches", entry.batches},
        {"elements", entry.elements},
        {"nonfinite", entry.nonfinite},
        {"format", std::string(kernels::QuantFormatName(entry.format))},
    };
  }
  const nlohmann::ordered_json root = {
      {"model", table.model},
      {"method", table.method},
      {"quantizers", std::move(quantizers)},
  };
  return root.dump(2);
}

}  // namespace qcal::server
