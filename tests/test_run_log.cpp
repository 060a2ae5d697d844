// RunLog and Progress on their own: the lines of train_log.txt (the seed's format, which
// scripts read) and of metrics.jsonl (one JSON object a line, which tests/python and plots
// read), parsed back field by field; timestamps are matched by shape, never by value.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "golden.h"
#include "rwkv7/io/fs.h"
#include "rwkv7/train/metrics.h"

namespace rwkv7 {
namespace {

using testing::scratch_dir;

// The file's lines; fails the test unless the file exists and its last line is complete.
std::vector<std::string> lines_of(const std::string& path) {
  EXPECT_TRUE(fs::is_regular_file(path)) << path;
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  if (text.empty()) {
    ADD_FAILURE() << path << ": empty";
    return {};
  }
  EXPECT_EQ(text.back(), '\n') << path << ": the last line is incomplete";
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// printf's rendering, independent of the fmt calls in metrics.cpp
std::string printf_fixed(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, x);
  return buf;
}

// "2025-04-24 02:23:42.481256" (local time) within ten minutes of now
void expect_recent_python_datetime(const std::string& s) {
  std::tm tm{};
  int micro = -1;
  ASSERT_EQ(std::sscanf(s.c_str(), "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                        &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &micro), 7) << s;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  EXPECT_LE(std::fabs(std::difftime(std::mktime(&tm), std::time(nullptr))), 600.0) << s;
  EXPECT_TRUE(micro >= 0 && micro < 1000000) << s;
}

// The keys of a JSON object line, in order (the values here hold no '"key": ' pattern).
std::vector<std::string> keys_of(const std::string& line) {
  static const std::regex key(R"re("([a-z_]+)": )re");
  std::vector<std::string> out;
  for (std::sregex_iterator it(line.begin(), line.end(), key), end; it != end; ++it) out.push_back((*it)[1]);
  return out;
}

TEST(RunLog, BothFilesInTheirDocumentedFormats) {
  const std::string dir = scratch_dir("run-log");
  const double inf = std::numeric_limits<double>::infinity();
  // values whose shortest forms are long: 17 significant digits must bring each back exactly
  const StepMetrics good{41, 3, std::exp(1.0), 6e-4, 0.1 + 0.2, 123456789012, 1234.5, 1.0 / 3, false};
  const StepMetrics bad{42, 3, std::nan(""), 6e-4, inf, 123459999999, 1000, 20, true};
  const std::string detail = "a \"quoted\" word\nand a backslash \\";
  {
    RunLog log(dir);
    log.new_run("ctx_len 64\nlr_init 0.0006\n");  // as the trainer passes it: lines ending in \n
    log.step(good);
    log.step(bad);
    log.epoch(3, 2.5, 6e-4, 1);
    log.validation(40, 3, 1.25);
    log.event("warning", detail);
  }

  const std::vector<std::string> train_log = lines_of(dir + "/train_log.txt");
  ASSERT_EQ(train_log.size(), 7u);
  EXPECT_TRUE(std::regex_match(train_log[0], std::regex(R"(NEW RUN \d{4}-\d\d-\d\d-\d\d-\d\d-\d\d)"))) << train_log[0];
  EXPECT_EQ(train_log[1], "ctx_len 64");
  EXPECT_EQ(train_log[2], "lr_init 0.0006");
  // epoch mean_loss exp(mean_loss) lr datetime epoch_in_run: 6, 4 and 8 decimals
  std::smatch m;
  ASSERT_TRUE(std::regex_match(train_log[3], m, std::regex(R"((\S+) (\S+) (\S+) (\S+) (\S+ \S+) (\S+))"))) << train_log[3];
  EXPECT_EQ(m[1].str(), "3");
  EXPECT_EQ(m[2].str(), "2.500000");
  EXPECT_EQ(m[3].str(), printf_fixed(std::exp(2.5), 4));  // 12.1825
  EXPECT_EQ(m[4].str(), "0.00060000");
  EXPECT_TRUE(std::regex_match(m[5].str(), std::regex(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})"))) << m[5].str();
  expect_recent_python_datetime(m[5].str());
  EXPECT_EQ(m[6].str(), "1");
  EXPECT_EQ(train_log[4], "validation step 40 epoch 3 loss 1.250000");
  EXPECT_EQ(train_log[5], "warning: a \"quoted\" word");  // the log keeps the detail as it is
  EXPECT_EQ(train_log[6], "and a backslash \\");

  const std::vector<std::string> metrics = lines_of(dir + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 4u);  // the event's detail has a newline: escaped, one line still
  const std::vector<std::string> step_keys{"step", "epoch", "loss", "lr", "grad_norm", "tokens",
                                           "tokens_per_s", "step_ms", "skipped"};
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(metrics[i].rfind("{\"step\": ", 0), 0u) << metrics[i];  // readers select on this prefix
    EXPECT_EQ(keys_of(metrics[i]), step_keys) << metrics[i];
  }
  YAML::Node n = YAML::Load(metrics[0]);  // JSON is YAML
  EXPECT_EQ(n["step"].as<int64_t>(), 41);
  EXPECT_EQ(n["epoch"].as<int64_t>(), 3);
  EXPECT_EQ(n["loss"].as<double>(), std::exp(1.0));
  EXPECT_EQ(n["lr"].as<double>(), 6e-4);
  EXPECT_EQ(n["grad_norm"].as<double>(), 0.1 + 0.2);
  EXPECT_EQ(n["tokens"].as<int64_t>(), 123456789012);
  EXPECT_EQ(n["tokens_per_s"].as<double>(), 1234.5);
  EXPECT_EQ(n["step_ms"].as<double>(), 1.0 / 3);
  EXPECT_FALSE(n["skipped"].as<bool>());
  // not finite -> null (JSON has no NaN or Infinity)
  n = YAML::Load(metrics[1]);
  EXPECT_EQ(n["step"].as<int64_t>(), 42);
  EXPECT_TRUE(n["loss"].IsNull()) << metrics[1];
  EXPECT_TRUE(n["grad_norm"].IsNull()) << metrics[1];
  EXPECT_EQ(n["tokens"].as<int64_t>(), 123459999999);
  EXPECT_TRUE(n["skipped"].as<bool>());

  EXPECT_EQ(metrics[2], "{\"val_step\": 40, \"epoch\": 3, \"val_loss\": 1.25}");
  n = YAML::Load(metrics[3]);
  EXPECT_EQ(n["event"].as<std::string>(), "warning");
  EXPECT_EQ(n["detail"].as<std::string>(), detail);  // quotes, backslash and newline escaped

  // a second RunLog (a resumed run) appends after what is there
  {
    RunLog again(dir);
    again.event("resumed", "from rwkv-0.pth");
  }
  const std::vector<std::string> train_log2 = lines_of(dir + "/train_log.txt");
  const std::vector<std::string> metrics2 = lines_of(dir + "/metrics.jsonl");
  ASSERT_EQ(train_log2.size(), 8u);
  EXPECT_EQ(train_log2[0], train_log[0]);
  EXPECT_EQ(train_log2[7], "resumed: from rwkv-0.pth");
  ASSERT_EQ(metrics2.size(), 5u);
  EXPECT_EQ(metrics2[4], "{\"event\": \"resumed\", \"detail\": \"from rwkv-0.pth\"}");
}

// Not on a terminal (gtest's capture is a file): one plain line every `every` steps.
TEST(Progress, PlainLinesEveryNSteps) {
  ::testing::internal::CaptureStdout();
  {
    Progress progress(100, 2);
    StepMetrics m{40, 3, 2.5, 6e-4, 0.5, 1000, 1234.5, 10, false, 0.412, 1.5};
    for (int64_t done = 1; done <= 4; ++done) {
      m.step = 40 + done;
      m.skipped = done == 4;
      progress.update(m, done);
    }
    progress.finish_line();
    Progress silent(-1, 1);  // total < 0: another rank's, shows nothing
    silent.update(m, 1);
    silent.finish_line();
  }
  const std::string out = ::testing::internal::GetCapturedStdout();
  std::vector<std::string> lines;
  std::stringstream ss(out);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(
      R"(epoch 3 step 42 loss 2\.5000 lr 6\.000e-04 1\.2 kt/s MFU 41\.2% mem 1\.50 GiB left \d\d:\d\d:\d\d)"))) << lines[0];
  EXPECT_TRUE(std::regex_match(lines[1], std::regex(
      R"(epoch 3 step 44 loss 2\.5000 lr 6\.000e-04 1\.2 kt/s MFU 41\.2% mem 1\.50 GiB left \d\d:\d\d:\d\d \(skipped\))"))) << lines[1];
}

}  // namespace
}  // namespace rwkv7
