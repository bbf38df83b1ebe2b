// Calibrating a whole model on a qcal-server: every TensorQuantizer of the model gets a
// RemoteCalibrator (remote_calibrator.h) named as pytorch-quantization names it, all in one
// RemoteSession, i.e. one model on the server. Target qcal_quant_remote.
//
//   auto client = qcal::Client::Create("127.0.0.1:50051");
//   auto session = qcal::quant::RemoteSession::Create(std::move(*client), "fashion_cnn");
//   qcal::quant::use_remote_calibrators(*model, session);    // declares every quantizer
//   qcal::quant::enable_calibration(*model);                  // model_quantizers.h
//   for (auto& batch : batches) model->forward(batch);        // streamed to the server
//   qcal::quant::disable_calibration(*model);
//   qcal::quant::load_calib_amax(*model, {.method = "entropy"});   // one ComputeAmax
//
// Call it before the first calibration batch: the session creates the server's model with the
// quantizers declared until then.
#ifndef QCAL_QUANT_MODULES_REMOTE_MODEL_H_
#define QCAL_QUANT_MODULES_REMOTE_MODEL_H_

#include <torch/nn/module.h>

#include <memory>

#include "quant/remote_session.h"

namespace qcal::quant {

// Replaces the calibrator of every quantizer that has one (model_quantizers.h's walk and names)
// by a RemoteCalibrator in `session`; returns how many. Errors (nothing replaced then):
// RemoteQuantizerSpec's (c10::NotImplementedError for a per-channel histogram, c10::ValueError for
// several channel axes) and Declare's (c10::Error once the server's model exists), naming the
// quantizer.
int use_remote_calibrators(torch::nn::Module& model, std::shared_ptr<RemoteSession> session);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_MODULES_REMOTE_MODEL_H_
