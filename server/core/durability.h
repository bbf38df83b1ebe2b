#ifndef QCAL_SERVER_CORE_DURABILITY_H_
#define QCAL_SERVER_CORE_DURABILITY_H_

#include <string>

#include "absl/status/status.h"

namespace qcal::server {
class Model;
// Where models' state is made durable: storage's data dir implements it; none (nullptr in
// CoreOptions) means in memory only, durable == applied.
class Durability {
 public:
  virtual ~Durability() = default;
  // Writes `model`'s state now if it changed since its last write, and returns once it is on
  // disk; on success the implementation calls model.MarkDurable(sessions of the snapshot it
  // wrote). UNAVAILABLE naming the file and the reason when the write fails; the previous file
  // stays.
  virtual absl::Status Commit(Model& model) = 0;
  // The model was deleted: remove its file (durably).
  virtual absl::Status Forget(const std::string& model_name) = 0;
  // Before a model of this name is created (CreateModel, LoadState): FAILED_PRECONDITION when
  // the name's file was refused at start and is still there, which the new model's first write
  // would replace (it is kept for the operator to fix or move away).
  virtual absl::Status CheckNewModel(const std::string& model_name) = 0;
};
}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_DURABILITY_H_
