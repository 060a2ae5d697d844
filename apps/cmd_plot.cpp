// rwkv7 plot --run PROJ_DIR [--out F.png]
// Draws loss (with its moving average and the validation loss), lr and tokens/s from
// PROJ_DIR/metrics.jsonl into a PNG with gnuplot (Debian's gnuplot-nox).
//
// A PNG is there whole or not at all: gnuplot draws F.png.tmp beside it, which is checked (PNG
// signature through the IEND chunk: on a full disk gnuplot exits 0 with an empty or cut file),
// fsynced and renamed to F.png. gnuplot's data and script are written, each write checked, to a
// private folder under $TMPDIR (/tmp), so nothing else lands in the run's folder (which may be
// read-only, or another user's). Every temporary is removed however the command ends; a failure
// is one line on stderr and exit 1, the previous F.png, if any, left as it was.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli.h"
#include "commands.h"
#include "rwkv7/io/fs.h"

namespace rwkv7::cmd {

namespace {

// 'text' for sh -c
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// 'text' for gnuplot (a single quote inside is doubled)
std::string gnuplot_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// The temporaries of one plot, removed when it ends, whichever way it ends.
struct Temporaries {
  std::string dir;  // private folder: gnuplot's data and script
  std::string png;  // the PNG being drawn, beside its final name (cleared once renamed there)
  Temporaries() = default;
  Temporaries(const Temporaries&) = delete;
  Temporaries& operator=(const Temporaries&) = delete;
  ~Temporaries() {
    if (!png.empty()) ::unlink(png.c_str());
    if (!dir.empty()) fs::remove_all(dir);
  }
};

// A new folder of our own under $TMPDIR (default /tmp).
std::string make_private_folder() {
  const char* env = std::getenv("TMPDIR");
  const std::string base = env && *env ? env : "/tmp";
  const std::string pattern = base + "/rwkv7-plot-XXXXXX";
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) {
    const int err = errno;
    throw std::runtime_error(base + ": cannot create a temporary folder for gnuplot (" + std::strerror(err) +
                             "; set TMPDIR to a writable folder)");
  }
  return std::string(name.data());
}

// gnuplot on `script`: its exit status (as pclose returns it); what it printed, stdout and
// stderr together, in `said`.
int run_gnuplot(const std::string& script, std::string& said) {
  FILE* p = ::popen(("gnuplot " + shell_quote(script) + " 2>&1").c_str(), "r");
  if (p == nullptr) {
    const int err = errno;
    throw std::runtime_error(std::string("cannot start gnuplot (") + std::strerror(err) + ")");
  }
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) said.append(buf, n);
  return ::pclose(p);
}

// The lines of `text` that hold something printable, each cut to 300 characters.
std::vector<std::string> printable_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::string cur;
  auto flush = [&] {
    while (!cur.empty() && cur.back() == ' ') cur.pop_back();
    if (!cur.empty()) lines.push_back(cur.substr(0, 300));
    cur.clear();
  };
  for (const char c : text) {
    if (c == '\n') {
      flush();
    } else {
      const unsigned char u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) cur += c;
      else if (c == '\t' || c == '\r') cur += ' ';
    }
  }
  flush();
  return lines;
}

// Whether `path` holds a whole PNG: its signature first and its IEND chunk last.
bool whole_png(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  static const char signature[8] = {'\x89', 'P', 'N', 'G', '\r', '\n', '\x1a', '\n'};
  static const char iend[12] = {'\0', '\0', '\0', '\0', 'I', 'E', 'N', 'D', '\xae', '\x42', '\x60', '\x82'};
  return data.size() >= 8 + 12 && data.compare(0, 8, signature, 8) == 0 &&
         data.compare(data.size() - 12, 12, iend, 12) == 0;
}

// fsync `path` (reported as a write failure of `out`)
void sync_file(const std::string& path, const std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
  }
  if (err != 0)
    throw std::runtime_error(out + ": write failed (" + std::strerror(err) +
                             "); the previous file, if any, is unchanged");
}

}  // namespace

int plot(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"run", "out"});
  if (args.help) {
    std::printf("usage: rwkv7 plot --run PROJ_DIR [--out PROJ_DIR/loss.png]\n"
                "  loss (and validation loss), lr and tokens/s per step from metrics.jsonl, via gnuplot\n"
                "  (its data and script go to a temporary folder under $TMPDIR; the PNG is written whole or not at all)\n");
    return 0;
  }
  const std::string dir = args.require("run");
  const std::string out = args.get("out", dir + "/loss.png");
  if (out.empty()) throw cli::UsageError("--out needs a file name");
  std::ifstream in(dir + "/metrics.jsonl");
  if (!in) throw std::runtime_error(dir + "/metrics.jsonl: cannot open (is this a run's proj_dir?)");
  std::string train, val;  // gnuplot's data, tab-separated
  double ema = 0, weight = 0;  // bias-corrected moving average (as Adam's moments)
  int64_t steps = 0, vals = 0;
  for (std::string line; std::getline(in, line);) {
    YAML::Node n;
    try {
      n = YAML::Load(line);
    } catch (const YAML::Exception&) {
      continue;  // a line cut by a kill: skip it
    }
    if (n["step"] && n["loss"] && !n["loss"].IsNull()) {
      const double loss = n["loss"].as<double>();
      ema = 0.95 * ema + 0.05 * loss;
      weight = 0.95 * weight + 0.05;
      train += fmt::format("{}\t{}\t{}\t{}\t{}\n", n["step"].as<int64_t>(), loss, ema / weight, n["lr"].as<double>(),
                           n["tokens_per_s"].IsNull() ? 0.0 : n["tokens_per_s"].as<double>() / 1000);
      ++steps;
    } else if (n["val_loss"] && !n["val_loss"].IsNull()) {
      val += fmt::format("{}\t{}\n", n["val_step"].as<int64_t>(), n["val_loss"].as<double>());
      ++vals;
    }
  }
  if (in.bad()) throw std::runtime_error(dir + "/metrics.jsonl: read failed");
  if (steps == 0) throw std::runtime_error(dir + "/metrics.jsonl: no steps to plot yet");

  Temporaries tmp;
  tmp.dir = make_private_folder();
  const std::string train_tsv = tmp.dir + "/train.tsv", val_tsv = tmp.dir + "/val.tsv", script = tmp.dir + "/plot.gp";
  fs::write_file_atomically(train_tsv, train);  // each throws "<path>: write failed (...)"
  if (vals) fs::write_file_atomically(val_tsv, val);

  // gnuplot draws beside the final name; made here first, so that an unwritable folder is told
  // as such rather than as a gnuplot error
  const std::string png_tmp = out + ".tmp";
  {
    const int fd = ::open(png_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      throw std::runtime_error(out + ": cannot write (" + std::strerror(err) + ")");
    }
    tmp.png = png_tmp;
    ::close(fd);
  }

  const std::string gp =
      "set terminal png size 1000,900\n"
      "set output " + gnuplot_quote(png_tmp) + "\n"
      "set multiplot layout 3,1 title " + gnuplot_quote("rwkv7: " + dir) + "\n"
      "set grid\nset xlabel 'step'\nset key top right\n"
      "set ylabel 'loss'\n"
      "plot " + gnuplot_quote(train_tsv) + " using 1:2 with lines lc rgb '#b0c4de' title 'loss', "
      "'' using 1:3 with lines lw 2 lc rgb '#1f4e79' title 'moving average'" +
      (vals ? ", " + gnuplot_quote(val_tsv) + " using 1:2 with linespoints pt 7 lc rgb '#c0392b' title 'validation'"
            : std::string()) +
      "\n"
      "set ylabel 'lr'\nplot " + gnuplot_quote(train_tsv) + " using 1:4 with lines lw 2 title 'lr'\n"
      "set ylabel 'k tokens/s'\nplot " + gnuplot_quote(train_tsv) + " using 1:5 with lines title 'k tokens/s'\n"
      "unset multiplot\n"
      "unset output\n";
  fs::write_file_atomically(script, gp);

  std::string said;
  const int rc = run_gnuplot(script, said);
  const std::vector<std::string> lines = printable_lines(said);
  if (rc != 0)
    throw std::runtime_error("gnuplot failed" + (lines.empty() ? std::string() : ": " + lines.back()) +
                             " (is gnuplot-nox installed?); " + out + " not written");
  for (const std::string& l : lines) std::fprintf(stderr, "warning: gnuplot: %s\n", l.c_str());
  if (!whole_png(png_tmp))
    throw std::runtime_error(out + ": write failed (gnuplot's PNG came out incomplete: is the disk full?); "
                             "the previous file, if any, is unchanged");
  sync_file(png_tmp, out);
  if (std::rename(png_tmp.c_str(), out.c_str()) != 0) {
    const int err = errno;
    throw std::runtime_error(out + ": write failed (" + std::strerror(err) + "); the previous file, if any, is unchanged");
  }
  tmp.png.clear();  // it is `out` now
  fs::sync_parent_directory(out);
  std::printf("wrote %s (%lld steps)\n", out.c_str(), static_cast<long long>(steps));
  return 0;
}

}  // namespace rwkv7::cmd
