// Operator test binaries: wait, after the last test, for the work cpprestsdk still has queued.
//
// A cancelled watch finishes closing its response stream in continuations scheduled after the
// test that cancelled it has returned. A test binary that exits before they run leaves what they
// hold unfreed, and LeakSanitizer fails the binary for it (seen in CI on the 410-relist test).
// The operator itself waits the same way before it exits (operator/src/main.cc).

#include <doctest/doctest.h>

#include <chrono>

#include "kube/rest_client.h"

namespace {

struct BackgroundWorkListener final : doctest::IReporter {
  explicit BackgroundWorkListener(const doctest::ContextOptions& /*options*/) {}

  void test_run_end(const doctest::TestRunStats& /*stats*/) override {
    sticky::op::kube::waitForBackgroundWork(std::chrono::milliseconds(250),
                                            std::chrono::seconds(10));
  }

  void report_query(const doctest::QueryData& /*data*/) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData& /*data*/) override {}
  void test_case_reenter(const doctest::TestCaseData& /*data*/) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& /*stats*/) override {}
  void test_case_exception(const doctest::TestCaseException& /*e*/) override {}
  void subcase_start(const doctest::SubcaseSignature& /*signature*/) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& /*data*/) override {}
  void log_message(const doctest::MessageData& /*data*/) override {}
  void test_case_skipped(const doctest::TestCaseData& /*data*/) override {}
};

}  // namespace

REGISTER_LISTENER("kube-background-work", 1, BackgroundWorkListener);
