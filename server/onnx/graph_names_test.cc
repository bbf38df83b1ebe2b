#include "server/onnx/graph_names.h"

#include <gtest/gtest.h>

namespace qcal::server {
namespace {

TEST(GraphNames, SuffixesTakenNamesIncludingThoseOfSubgraphs) {
  onnx::GraphProto graph;
  graph.add_input()->set_name("x");
  graph.add_initializer()->set_name("w");
  onnx::NodeProto* node = graph.add_node();
  node->set_name("if");
  node->add_input("x");
  node->add_output("y");
  onnx::AttributeProto* branch = node->add_attribute();
  branch->set_name("then_branch");
  onnx::NodeProto* inner = branch->mutable_g()->add_node();
  inner->set_name("inner");
  inner->add_output("z");
  graph.add_output()->set_name("y");

  GraphNames names(graph);
  for (const char* used : {"x", "w", "if", "y", "inner", "z"}) EXPECT_TRUE(names.Contains(used));
  EXPECT_FALSE(names.Contains("q"));
  EXPECT_EQ(names.Unique("q"), "q");
  EXPECT_EQ(names.Unique("q"), "q_1") << "a returned name is taken";
  EXPECT_EQ(names.Unique("z"), "z_1") << "subgraph names are taken";
  EXPECT_EQ(names.Unique("inner"), "inner_1");
  EXPECT_TRUE(names.Contains("q_1"));
}

TEST(GraphNames, SkipsSuffixedNamesAlreadyTaken) {
  onnx::GraphProto graph;
  for (const char* name : {"a", "a_1", "a_2"}) graph.add_node()->set_name(name);
  GraphNames names(graph);
  EXPECT_EQ(names.Unique("a"), "a_3");
}

}  // namespace
}  // namespace qcal::server
