#include "kernels/histogram_edges.h"

#include <vector>

#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

TEST(HistogramEdgesTest, LinspaceWithAPowerOfTwoStepIsExact) {
  const std::vector<float> edges = LinspaceEdges(2.0f, 2048);
  ASSERT_EQ(edges.size(), 2049u);
  for (size_t k = 0; k < edges.size(); ++k) EXPECT_EQ(edges[k], static_cast<float>(k) / 1024.0f);
}

TEST(HistogramEdgesTest, LinspaceReproducesTorchRounding) {
  // torch.linspace(0, 7.1700315, 129) (PyTorch 1.13, CPU) differs from k * step in the last
  // vector block: edge 127 is 0x1.c74c0ap+2, the plain product gives 0x1.c74c08p+2.
  const float max = 0x1.cae1ccp+2f;
  const std::vector<float> edges = LinspaceEdges(max, 128);
  ASSERT_EQ(edges.size(), 129u);
  EXPECT_EQ(edges[0], 0.0f);
  EXPECT_EQ(edges[1], max / 128.0f);
  EXPECT_EQ(edges[127], 0x1.c74c0ap+2f);
  EXPECT_NE(edges[127], 127.0f * (max / 128.0f));
  EXPECT_EQ(edges[128], max);
}

TEST(HistogramEdgesTest, ArangeReproducesTorchRounding) {
  // torch.arange(0, 5.2152 + w, w) with w = 0x1.11523ap-9: 2502 edges; edge 25 is
  // 0x1.ab107cp-5 where float(25 * w) is 0x1.ab107ap-5 (vector lanes add j * w to a float base).
  const float width = 0x1.11523ap-9f;
  const std::vector<float> edges = ArangeEdges(width, 2502);
  ASSERT_EQ(edges.size(), 2502u);
  EXPECT_EQ(edges[0], 0.0f);
  EXPECT_EQ(edges[1], width);
  EXPECT_EQ(edges[25], 0x1.ab107cp-5f);
  EXPECT_EQ(edges[2501], 0x1.4dc70ap+2f);  // the scalar tail: float(2501 * w)
}

}  // namespace
}  // namespace qcal::kernels
