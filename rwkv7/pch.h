// Precompiled header for the library, apps and tests: the heavy LibTorch headers we use,
// compiled once per build instead of once per file. (Never <torch/torch.h>: it pulls in
// everything and costs ~30 s per file on the CI machine.)
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/csrc/autograd/custom_function.h>
#include <fmt/format.h>
