#include "server/onnx/graph_order.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(GraphOrderTest, AcceptsTorchExports) {
  for (const char* name : {"cnn_bn.onnx", "resnet_block.onnx", "reuse.onnx"}) {
    EXPECT_TRUE(CheckGraphOrder(testing::LoadModel(name).graph()).ok()) << name;
  }
}

TEST(GraphOrderTest, RefusesAnUnsortedGraph) {
  onnx::GraphProto graph = testing::LoadModel("cnn_bn.onnx").graph();
  graph.mutable_node()->SwapElements(0, 1);  // Relu before the Conv it reads
  EXPECT_THAT(CheckGraphOrder(graph).message(),
              AllOf(HasSubstr("Relu node '/Relu'"), HasSubstr("'/conv1/Conv_output_0'"),
                    HasSubstr("before it is produced")));
}

TEST(GraphOrderTest, RefusesATensorProducedTwice) {
  onnx::GraphProto graph = testing::LoadModel("cnn_bn.onnx").graph();
  graph.mutable_node(1)->set_output(0, graph.node(0).output(0));
  EXPECT_THAT(CheckGraphOrder(graph).message(), HasSubstr("defined twice"));
}

TEST(GraphOrderTest, RefusesAMissingGraphOutput) {
  onnx::GraphProto graph = testing::LoadModel("cnn_bn.onnx").graph();
  graph.mutable_output(0)->set_name("nowhere");
  EXPECT_THAT(CheckGraphOrder(graph).message(), HasSubstr("graph output 'nowhere'"));
}

}  // namespace
}  // namespace qcal::server
