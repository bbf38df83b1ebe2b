// RemoteCalibrator: a calibrator whose data goes to a qcal-server instead of staying in the
// process. collect() streams each batch to the quantizer of the same name in a RemoteSession's
// model; compute_amax() asks the server, which runs the same kernels/ as MaxCalibrator and
// HistogramCalibrator, so local and remote calibration give the same amax. Target
// qcal_quant_remote (quant/ itself has no gRPC dependency).
//
//   auto session = qcal::quant::RemoteSession::Create(client, "fashion_cnn");
//   qcal::quant::UseRemoteCalibrator(*quantizer, session, "conv1._input_quantizer");
//   quantizer->disable_quant(); quantizer->enable_calib();
//   quantizer(x);                                       // Record (copies, returns at once)
//   quantizer->load_calib_amax({.method = "entropy"});  // ComputeAmax on the server
//
// The server-side quantizer is declared from the descriptor (RemoteQuantizerSpec): num_bits,
// unsigned, axis (one kept axis; the server keeps no tuple of several), and a max or a
// histogram calibrator (2048 bins) as calib_method says. With RemoteSession::Options::aggregate,
// collect() counts the batch on the trainer (CPU tensors by the kernels, CUDA tensors by ATen ops
// on their GPU) and partial states go to the server instead (remote_session.h).
// Errors: as RemoteSession's; compute_amax of a histogram quantizer without a method is a
// c10::ValueError, as locally; reset() is a c10::NotImplementedError (the server resets whole
// models: RemoteSession::Reset()); a batch whose amax shape differs from the earlier ones' is a
// c10::Error before anything is sent.
#ifndef QCAL_QUANT_REMOTE_CALIBRATOR_H_
#define QCAL_QUANT_REMOTE_CALIBRATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "quant/calibrator.h"
#include "quant/remote_session.h"

namespace qcal::quant {

class TensorQuantizerImpl;

// The server's descriptor of quantizer `name` for `desc`. c10::ValueError for a tuple of
// several axes or a per-channel histogram (c10::NotImplementedError, as locally).
v1::QuantizerSpec RemoteQuantizerSpec(const std::string& name, const QuantDescriptor& desc);

class RemoteCalibrator : public Calibrator {
 public:
  // Declares RemoteQuantizerSpec(quantizer, desc) in `session`.
  RemoteCalibrator(std::shared_ptr<RemoteSession> session, std::string quantizer,
                   const QuantDescriptor& desc);

  void collect(const at::Tensor& inputs) override;
  void reset() override;
  std::optional<at::Tensor> compute_amax(const CalibAmaxArgs& args = {}) override;

  std::string name() const override { return "RemoteCalibrator"; }
  // "RemoteCalibrator(model=fashion_cnn quantizer=conv1._input_quantizer calibrator=histogram)".
  std::string str() const override;
  std::string repr() const override;

  const std::string& quantizer() const { return quantizer_; }
  const std::shared_ptr<RemoteSession>& session() const { return session_; }

 private:
  const std::shared_ptr<RemoteSession> session_;
  const std::string quantizer_;
  const v1::QuantizerSpec spec_;
  // Shape of the amax of the batches sent so far; unset before the first.
  std::optional<std::vector<int64_t>> amax_shape_;
};

// Gives `quantizer` a RemoteCalibrator named `name` ("<module path>._input_quantizer") for its
// descriptor, replacing the local one.
void UseRemoteCalibrator(TensorQuantizerImpl& quantizer, std::shared_ptr<RemoteSession> session,
                         const std::string& name);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_REMOTE_CALIBRATOR_H_
