// Fine-tuning a released model as RWKV-PEFT (JL-er/RWKV-PEFT) does it: what is added to the base
// model, what is trained, and what a fine-tuning checkpoint holds.
//
//   train_type: state  each layer's time_state [H, N, N] (the WKV state every sequence starts
//                      from, S[value][key]), zeros; nothing else is trained
//   peft: lora         lora_A [r, in] ~ U(+-1/sqrt(in)) (kaiming_uniform a = sqrt 5), lora_B [out, r] = 0,
//                      y = W x + alpha/r B A dropout(x); plus the base tensors named by train_parts
//   peft: disha        (bone) disha [r, out] = 0, y = W x + (sum over blocks of x.view(in/r, r)) disha
//   peft: pissa        A = sqrt(S) V^T, B = U sqrt(S) from a rank-r randomized SVD of W, and W <- W - B A,
//                      y = W x + B A x (no scale, no dropout)
// on att.receptance/key/value/output and ffn.key/value of every block. The base weights are frozen:
// no gradient, no optimizer state. A checkpoint (rwkv-<n>.pth) holds the trained tensors only, under
// RWKV-PEFT's names (blocks.<i>.att.time_state, <module>.lora_A / lora_B / disha, the ln tensors).
#pragma once
#include <cstdint>
#include <string>

#include "rwkv7/io/checkpoint.h"
#include "rwkv7/model/model.h"
#include "rwkv7/peft/peft_options.h"
#include "rwkv7/util/config_error.h"

namespace rwkv7 {

// Adds the fine-tuning tensors cfg asks for to `model` (the loaded base, fp32 on the CPU),
// initialised as above; `seed` drives LoRA's A and PiSSA's SVD. PiSSA's starting (B0, A0) are
// returned as "<module>.init_lora_A/B" (what merging a PiSSA adapter needs), else empty; with
// `pissa_start` (such a dict, or RWKV-PEFT's init_pissa.pth whose keys start with "model.") they
// are taken from there instead of an SVD.
StateDict add_adapters(RWKV& model, const PeftOptions& cfg, uint64_t seed, const StateDict* pissa_start = nullptr,
                       const std::string& pissa_start_path = "");

// Whether fine-tuning by cfg trains the parameter called `name`.
bool is_trained(const std::string& name, const PeftOptions& cfg);

// requires_grad on exactly the trained parameters; returns how many elements are trained.
int64_t freeze_all_but_trained(RWKV& model, const PeftOptions& cfg);

// The trained tensors, in the model's order: what rwkv-<n>.pth of a fine-tuning run holds.
StateDict trained_tensors(const RWKV& model, const PeftOptions& cfg);

// Copies an adapter file (lora_load, or a run's rwkv-<n>.pth on resume) into the model. Every
// tensor in it must be one the run trains, with the model's shape; every trained tensor must be
// there. Throws CheckpointError naming `path` and the first tensor at fault.
void load_trained_tensors(RWKV& model, const StateDict& adapter, const PeftOptions& cfg, const std::string& path);

}  // namespace rwkv7
