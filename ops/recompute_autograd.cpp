#include "recompute_autograd.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/stack.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>
#include <vector>

namespace rwkv7_ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool is_float(const at::Tensor& t) { return t.defined() && at::isFloatingType(t.scalar_type()); }

// The op's arguments as the boxed call took them; its Tensor arguments also go to apply() as a
// TensorList, so that autograd sees them as the node's inputs.
class RecomputeFunction : public torch::autograd::Function<RecomputeFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, at::TensorList tensors, const std::vector<c10::IValue>& args,
                               const c10::OperatorHandle* op) {
    at::AutoDispatchBelowADInplaceOrView guard;
    torch::jit::Stack stack(args.begin(), args.end());
    op->callBoxed(&stack);
    variable_list outputs;
    for (const c10::IValue& v : stack) outputs.push_back(v.toTensor());
    ctx->saved_data["args"] = c10::ivalue::Tuple::create(args);  // inputs only: no reference cycle
    ctx->saved_data["op"] = op->schema().name();
    ctx->saved_data["n_tensors"] = int64_t(tensors.size());
    return outputs;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const std::string name = ctx->saved_data["op"].toStringRef() + "_backward";
    const c10::OperatorHandle backward_op = c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), "");
    const auto args = ctx->saved_data["args"].toTupleRef().elements();
    torch::jit::Stack stack;
    std::vector<bool> float_tensor;  // which Tensor arguments get a gradient
    for (const c10::IValue& v : args) {
      stack.push_back(v);
      if (v.isTensor()) float_tensor.push_back(is_float(v.toTensor()));
    }
    for (const at::Tensor& g : grad_outputs) stack.push_back(g.contiguous());  // zeros when unused
    backward_op.callBoxed(&stack);
    variable_list grads;
    size_t next = 0;
    for (const bool gets_grad : float_tensor) grads.push_back(gets_grad ? stack.at(next++).toTensor() : at::Tensor());
    TORCH_CHECK(next == stack.size(), name, " returned ", stack.size(), " gradients for ", next,
                " floating-point Tensor arguments");
    grads.push_back(at::Tensor());  // args
    grads.push_back(at::Tensor());  // op
    return grads;
  }
};

void recompute_autograd_kernel(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const size_t n_args = op.schema().arguments().size();
  std::vector<c10::IValue> args(stack->end() - n_args, stack->end());
  std::vector<at::Tensor> tensors;
  bool needs_grad = false;
  for (const c10::IValue& v : args)
    if (v.isTensor()) {
      tensors.push_back(v.toTensor());
      needs_grad = needs_grad || (is_float(v.toTensor()) && v.toTensor().requires_grad());
    }
  if (!at::GradMode::is_enabled() || !needs_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    op.callBoxed(stack);
    return;
  }
  torch::jit::drop(*stack, n_args);
  for (at::Tensor& out : RecomputeFunction::apply(at::TensorList(tensors), args, &op)) stack->push_back(out);
}

}  // namespace

torch::CppFunction recompute_autograd() {
  return torch::CppFunction::makeFromBoxedFunction<&recompute_autograd_kernel>();
}

}  // namespace rwkv7_ops
