// The FP8 E4M3 branches of the mse and entropy searches (amax_search.h, SearchOptions::format
// == kFp8E4M3), which MseAmax, MseErrors, EntropyAmax and KlDivergences call; the CUDA twins
// call them too (kernels/cuda/amax_search.h). num_bits and is_unsigned are ignored.
//
// mse: candidate center c_i (MseSearchCenters' centers, start_bin, start_bin + stride, ... < L)
// is tried as amax with step s = c_i / 448 in float32; every occupied bin's center c is
// fake-quantized as FakeTensorQuant does for FP8 (E4M3(c / s) * s; 0 where c_i <= 2^-24) and
// the error is sum_k w_k (fake(c_k) - c_k)^2 in double (the difference taken in double), added
// in bin order, divided by L. The first minimum wins, as the int search. There is no reference
// implementation to match bit for bit. Histograms of at most kFp8MseDirectBins occupied bins
// (every 2048-bin one) are scored exactly that way, one bin at a time: O(candidates x occupied
// bins). Larger ones (a reference histogram grows to 2^20 bins) are scored by runs: bins whose
// centers E4M3 rounds to one value share one fake value a, so a run costs
// S2 - a (2 S1 - a W) from double-double prefix sums of w, w c, w c^2, and a candidate costs
// about O(runs) (fp8_runs.h), runs <= 127 (E4M3's non-negative finite values). Those errors agree
// with the one-bin-at-a-time sum to about 1e-12 relative (a run's sums are rounded to double before
// they cancel), so between candidates closer than that the choice may differ from it.
//
// entropy: the int method (TensorRT's KL calibration as pytorch-quantization's
// _compute_amax_entropy) with its quantization groups replaced by E4M3's. For candidate edge i,
// p is the first i bins (h[0] := h[1], everything beyond folded into bin i-1, as the int
// search); bin j < i is mapped, as the int search maps bins by index, through its center in
// units of the candidate amax: code(j) = RoundToFp8E4M3(float((j + 0.5) * 448 / i)) (qcal's
// histograms have uniform bins from 0, so this is E4M3(center_j / (edges[i] / 448))); bins with
// one code form one group (contiguous, since rounding is monotonic), and q spreads each group's
// count evenly over its occupied bins. D_i = KL(p || q) with the int search's rules (+inf where
// bin i-1 is empty but mass lies beyond, NaN where nothing lies below i; the last NaN, else the
// last minimum, wins). Group ends are found from a guess, galloping and bisecting on the monotonic
// code (fp8_runs.h), so a candidate costs about O(groups) after O(L) prefix sums, groups <= 127
// (E4M3's non-negative finite values).
//
// Measured on a shared 2-core machine (start_bin 128, stride 1): 2048 bins take milliseconds;
// 2^17 bins about 1.8 s per search, 2^20 (a reference histogram's default limit) about 15 s
// (about 6 s of CPU), both polling SearchOptions::cancelled as the int searches do.
#ifndef QCAL_KERNELS_FP8_SEARCH_H_
#define QCAL_KERNELS_FP8_SEARCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/amax_search.h"

namespace qcal::kernels::internal {

// MseErrors for FP8: errors as MseAmax (num_bits not checked).
absl::StatusOr<std::vector<double>> Fp8MseErrors(std::span<const uint64_t> counts,
                                                 std::span<const float> edges,
                                                 const SearchOptions& options);
// Up to this many occupied bins a histogram's candidates are scored one bin at a time.
inline constexpr int64_t kFp8MseDirectBins = 8192;

absl::StatusOr<AmaxChoice> Fp8MseAmax(std::span<const uint64_t> counts,
                                      std::span<const float> edges, const SearchOptions& options,
                                      int64_t direct_bins = kFp8MseDirectBins);

// Fp8MseErrors with another limit for one-bin-at-a-time scoring (tests force runs with 0).
absl::StatusOr<std::vector<double>> Fp8MseErrorsWith(std::span<const uint64_t> counts,
                                                     std::span<const float> edges,
                                                     const SearchOptions& options,
                                                     int64_t direct_bins);

// KlDivergences for FP8: errors as EntropyAmax (num_bits not checked).
absl::StatusOr<std::vector<double>> Fp8KlDivergences(std::span<const uint64_t> counts,
                                                     const SearchOptions& options);

}  // namespace qcal::kernels::internal

#endif  // QCAL_KERNELS_FP8_SEARCH_H_
