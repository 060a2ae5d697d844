// One function per subcommand (each in its own cmd_*.cpp). argv excludes the command name.
#pragma once

namespace rwkv7::cmd {
int logits(int argc, char** argv);
int convert(int argc, char** argv);
int prepare(int argc, char** argv);
int train(int argc, char** argv);
int bench(int argc, char** argv);
int tokenize(int argc, char** argv);
int generate(int argc, char** argv);
int plot(int argc, char** argv);
int eval(int argc, char** argv);
int merge(int argc, char** argv);
}  // namespace rwkv7::cmd
