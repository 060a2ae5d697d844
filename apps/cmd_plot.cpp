// rwkv7 plot --run PROJ_DIR [--out F.png]
// Draws loss (with its moving average and the validation loss), lr and tokens/s from
// PROJ_DIR/metrics.jsonl into a PNG with gnuplot (Debian's gnuplot-nox).
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "cli.h"
#include "commands.h"

namespace rwkv7::cmd {

int plot(int argc, char** argv) {
  const cli::Args args = cli::parse(argc, argv, {"run", "out"});
  if (args.help) {
    std::printf("usage: rwkv7 plot --run PROJ_DIR [--out PROJ_DIR/loss.png]\n"
                "  loss (and validation loss), lr and tokens/s per step from metrics.jsonl, via gnuplot\n");
    return 0;
  }
  const std::string dir = args.require("run");
  const std::string out = args.get("out", dir + "/loss.png");
  std::ifstream in(dir + "/metrics.jsonl");
  if (!in) throw std::runtime_error(dir + "/metrics.jsonl: cannot open (is this a run's proj_dir?)");
  const std::string train_tsv = dir + "/.plot-train.tsv", val_tsv = dir + "/.plot-val.tsv";
  std::ofstream train(train_tsv), val(val_tsv);
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
      train << fmt::format("{}\t{}\t{}\t{}\t{}\n", n["step"].as<int64_t>(), loss, ema / weight, n["lr"].as<double>(),
                           n["tokens_per_s"].IsNull() ? 0.0 : n["tokens_per_s"].as<double>() / 1000);
      ++steps;
    } else if (n["val_loss"] && !n["val_loss"].IsNull()) {
      val << fmt::format("{}\t{}\n", n["val_step"].as<int64_t>(), n["val_loss"].as<double>());
      ++vals;
    }
  }
  train.close();
  val.close();
  if (steps == 0) throw std::runtime_error(dir + "/metrics.jsonl: no steps to plot yet");
  const std::string script = dir + "/.plot.gp";
  std::ofstream gp(script);
  gp << "set terminal png size 1000,900\n"
     << "set output '" << out << "'\n"
     << "set multiplot layout 3,1 title 'rwkv7: " << dir << "'\n"
     << "set grid\nset xlabel 'step'\nset key top right\n"
     << "set ylabel 'loss'\n"
     << "plot '" << train_tsv << "' using 1:2 with lines lc rgb '#b0c4de' title 'loss', "
     << "'' using 1:3 with lines lw 2 lc rgb '#1f4e79' title 'moving average'"
     << (vals ? ", '" + val_tsv + "' using 1:2 with linespoints pt 7 lc rgb '#c0392b' title 'validation'" : "")
     << "\n"
     << "set ylabel 'lr'\nplot '" << train_tsv << "' using 1:4 with lines lw 2 title 'lr'\n"
     << "set ylabel 'k tokens/s'\nplot '" << train_tsv << "' using 1:5 with lines title 'k tokens/s'\n"
     << "unset multiplot\n";
  gp.close();
  const int rc = std::system(("gnuplot '" + script + "' 2>&1").c_str());
  std::remove(train_tsv.c_str());
  std::remove(val_tsv.c_str());
  std::remove(script.c_str());
  if (rc != 0) throw std::runtime_error("gnuplot failed (install gnuplot-nox)");
  std::printf("wrote %s (%lld steps)\n", out.c_str(), static_cast<long long>(steps));
  return 0;
}

}  // namespace rwkv7::cmd
