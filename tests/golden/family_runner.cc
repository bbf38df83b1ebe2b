#include "tests/golden/family_runner.h"

#include <algorithm>
#include <cstdio>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/golden/golden_dir.h"

namespace qcal::golden {

void RunFamily(const FamilyRun& family, const std::string& repo_root) {
  const auto dir = GoldenDirFromEnvironment(repo_root);
  ASSERT_TRUE(dir.ok()) << dir.status();
  const auto doc = LoadGoldenFile(*dir, family.file);
  ASSERT_TRUE(doc.ok()) << doc.status();

  auto find = [&](const std::string& name) -> const Deviation* {
    if (family.deviations == nullptr) return nullptr;
    for (const Deviation& d : *family.deviations) {
      if (d.family == family.family && d.name == name) return &d;
    }
    return nullptr;
  };

  int total = 0;
  int passed = 0;
  int not_run = 0;
  std::vector<std::string> deviations;
  for (const Json& golden_case : doc->at("cases")) {
    const std::string name = golden_case.at("name").get<std::string>();
    const Deviation* deviation = find(name);
    std::optional<CaseReport> report;
    try {
      report = deviation != nullptr ? std::optional<CaseReport>(deviation->check(golden_case))
                                    : family.run(golden_case);
    } catch (const std::exception& e) {
      report = CaseReport();
      report->Fail(absl::StrCat("exception: ", e.what()));
    }
    if (!report.has_value()) {
      ++not_run;
      continue;
    }
    ++total;
    if (deviation != nullptr) deviations.push_back(name);
    if (report->ok()) {
      ++passed;
    } else {
      ADD_FAILURE() << family.suite << " " << family.family << " case " << name << ": "
                    << absl::StrJoin(report->failures(), "; ");
    }
  }
  if (family.deviations != nullptr) {
    for (const Deviation& d : *family.deviations) {
      if (d.family == family.family &&
          std::find(deviations.begin(), deviations.end(), d.name) == deviations.end()) {
        ADD_FAILURE() << "deviation " << d.name << " names no case of " << family.file;
      }
    }
  }
  std::string line =
      absl::StrCat(family.suite, " ", family.family, ": ", passed, "/", total, " cases passed (",
                   deviations.size(), deviations.size() == 1 ? " deviation" : " deviations");
  if (!deviations.empty()) absl::StrAppend(&line, ": ", absl::StrJoin(deviations, ", "));
  if (not_run > 0) absl::StrAppend(&line, "; ", not_run, " ", family.not_run_note);
  std::printf("%s)\n", line.c_str());
  std::fflush(stdout);
  EXPECT_GT(total, 0);
  EXPECT_EQ(passed, total);
}

}  // namespace qcal::golden
