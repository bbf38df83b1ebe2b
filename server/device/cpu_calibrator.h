// Calibrators in CPU memory: kernels::MaxCalibrator and kernels::Histogram behind the Calibrator
// interface (calibrator.h). The server's --device cpu, and its fallback for --device auto.
//
//   std::shared_ptr<const CalibratorBackend> cpu = CpuBackend();
#ifndef QCAL_SERVER_DEVICE_CPU_CALIBRATOR_H_
#define QCAL_SERVER_DEVICE_CPU_CALIBRATOR_H_

#include <memory>

#include "server/device/calibrator.h"

namespace qcal::server {

// One shared instance; it holds no state.
std::shared_ptr<const CalibratorBackend> CpuBackend();

}  // namespace qcal::server

#endif  // QCAL_SERVER_DEVICE_CPU_CALIBRATOR_H_
