#include "rwkv7/io/pickle.h"


#include <c10/util/Exception.h>

#include <cstring>
#include <map>
#include <stdexcept>

namespace rwkv7 {
namespace {

using Kind = PickleValue::Kind;

PickleRef make(Kind kind) {
  auto v = std::make_shared<PickleValue>();
  v->kind = kind;
  return v;
}

// torch.<Name>Storage -> dtype (the legacy typed-storage names torch.save still writes).
bool storage_dtype(const std::string& global, at::ScalarType* out) {
  static const std::map<std::string, at::ScalarType> table = {
      {"torch.DoubleStorage", at::kDouble}, {"torch.FloatStorage", at::kFloat},
      {"torch.HalfStorage", at::kHalf},     {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},   {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},     {"torch.BoolStorage", at::kBool},
      {"torch.UntypedStorage", at::kByte}};
  auto it = table.find(global);
  if (it == table.end()) return false;
  *out = it->second;
  return true;
}

const char* storage_name(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return "DoubleStorage";
    case at::kFloat: return "FloatStorage";
    case at::kHalf: return "HalfStorage";
    case at::kBFloat16: return "BFloat16Storage";
    case at::kLong: return "LongStorage";
    case at::kInt: return "IntStorage";
    case at::kShort: return "ShortStorage";
    case at::kChar: return "CharStorage";
    case at::kByte: return "ByteStorage";
    case at::kBool: return "BoolStorage";
    default: throw std::runtime_error(std::string("cannot save dtype ") + c10::toString(t));
  }
}

class Unpickler {
 public:
  Unpickler(const std::string& bytes, const StorageLoader& loader)
      : data_(bytes), loader_(loader) {}

  PickleRef run() {
    while (true) {
      const size_t at = pos_;
      const uint8_t op = byte();
      if (op == '.') {  // STOP
        if (stack_.size() != 1) fail(at, "stack not of size 1 at STOP");
        return stack_.back();
      }
      // The groups take disjoint sets of opcodes; each returns false for one it does not take.
      if (!scalar_op(op, at) && !container_op(op, at) && !memo_op(op, at) && !object_op(op, at))
        fail(at, "unsupported pickle opcode 0x" + hex(op));
    }
  }

 private:
  // PROTO, FRAME and the opcodes that push a None, bool, int, float or string.
  bool scalar_op(uint8_t op, size_t at) {
    switch (op) {
      case 0x80: byte(); break;       // PROTO
      case 0x95: take(8); break;      // FRAME
      case 'N': push(make(Kind::None)); break;
      case 0x88: case 0x89: {
        auto v = make(Kind::Bool);
        v->boolean = op == 0x88;
        push(v);
        break;
      }
      case 'K': push_int(u8()); break;
      case 'M': push_int(le(2)); break;
      case 'J': push_int(static_cast<int32_t>(le(4))); break;
      case 0x8a: {  // LONG1: n bytes, little-endian two's complement
        const size_t n = u8();
        if (n > 8) fail(at, "integer wider than 64 bits");
        uint64_t x = le(n);
        if (n > 0 && n < 8 && (x >> (8 * n - 1)) & 1) x |= ~uint64_t(0) << (8 * n);
        push_int(static_cast<int64_t>(x));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        uint64_t x = 0;
        for (char c : take(8)) x = (x << 8) | static_cast<uint8_t>(c);
        auto v = make(Kind::Float);
        std::memcpy(&v->real, &x, 8);
        push(v);
        break;
      }
      case 'X': push_string(take(le(4))); break;
      case 0x8c: push_string(take(u8())); break;
      case 0x8d: push_string(take(le(8))); break;
      default: return false;
    }
    return true;
  }

  // MARK and the opcodes that build or fill a tuple, list or dict.
  bool container_op(uint8_t op, size_t at) {
    switch (op) {
      case '(': marks_.push_back(stack_.size()); break;
      case '}': push(make(Kind::Dict)); break;
      case ']': push(make(Kind::List)); break;
      case ')': push(make(Kind::Tuple)); break;
      case 't': {
        auto t = make(Kind::Tuple);
        t->items = pop_to_mark(at);
        push(t);
        break;
      }
      case 0x85: case 0x86: case 0x87: {
        auto t = make(Kind::Tuple);
        t->items.resize(op - 0x84);
        for (size_t i = t->items.size(); i-- > 0;) t->items[i] = pop(at);
        push(t);
        break;
      }
      case 's': {
        auto value = pop(at), key = pop(at);
        set_item(at, top(at), key, value);
        break;
      }
      case 'u': {
        auto items = pop_to_mark(at);
        if (items.size() % 2) fail(at, "SETITEMS with an odd number of items");
        auto d = top(at);
        for (size_t i = 0; i < items.size(); i += 2) set_item(at, d, items[i], items[i + 1]);
        break;
      }
      case 'a': {
        auto value = pop(at);
        auto l = top(at);
        if (l->kind != Kind::List) fail(at, "APPEND to a non-list");
        l->items.push_back(value);
        break;
      }
      case 'e': {
        auto items = pop_to_mark(at);
        auto l = top(at);
        if (l->kind != Kind::List) fail(at, "APPENDS to a non-list");
        l->items.insert(l->items.end(), items.begin(), items.end());
        break;
      }
      default: return false;
    }
    return true;
  }

  // BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET.
  bool memo_op(uint8_t op, size_t at) {
    switch (op) {
      case 'q': memo_put(u8(), at); break;
      case 'r': memo_put(le(4), at); break;
      case 0x94: memo_put(memo_.size(), at); break;
      case 'h': memo_get(u8(), at); break;
      case 'j': memo_get(le(4), at); break;
      default: return false;
    }
    return true;
  }

  // GLOBAL, STACK_GLOBAL, BINPERSID, REDUCE, NEWOBJ (refused) and BUILD.
  bool object_op(uint8_t op, size_t at) {
    switch (op) {
      case 'c': {
        std::string module = line(), name = line();
        auto g = make(Kind::Global);
        g->text = module + "." + name;
        push(g);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop(at), module = pop(at);
        if (name->kind != Kind::String || module->kind != Kind::String)
          fail(at, "STACK_GLOBAL needs two strings");
        auto g = make(Kind::Global);
        g->text = module->text + "." + name->text;
        push(g);
        break;
      }
      case 'Q': push(persistent_load(at, pop(at))); break;
      case 'R': {
        auto args = pop(at), callable = pop(at);
        push(reduce(at, callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args), how Python objects (a whole nn.Module) are pickled
        pop(at);
        auto cls = pop(at);
        fail(at, "it holds a pickled Python object (" + (cls->kind == Kind::Global ? cls->text : std::string("?")) +
                     "), not a state_dict of tensors: a whole model saved with torch.save(model, ...)? In "
                     "Python, load it and save torch.save(model.state_dict(), path)");
      }
      case 'b': {  // BUILD: OrderedDict's _metadata and the like carry nothing we need
        pop(at);
        auto obj = top(at);
        if (obj->kind != Kind::Dict && obj->kind != Kind::Tensor)
          fail(at, "BUILD on an unsupported object");
        break;
      }
      default: return false;
    }
    return true;
  }

  [[noreturn]] void fail(size_t at, const std::string& what) const {
    throw std::runtime_error("data.pkl byte " + std::to_string(at) + ": " + what);
  }
  static std::string hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return {d[b >> 4], d[b & 15]};
  }
  std::string take(uint64_t n) {
    if (n > data_.size() - pos_) fail(pos_, "truncated (needs " + std::to_string(n) + " bytes)");
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  uint8_t byte() {
    if (pos_ >= data_.size()) fail(pos_, "truncated (no STOP)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t u8() { return byte(); }
  uint64_t le(size_t n) {
    uint64_t x = 0;
    const std::string s = take(n);
    for (size_t i = n; i-- > 0;) x = (x << 8) | static_cast<uint8_t>(s[i]);
    return x;
  }
  std::string line() {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string::npos) fail(pos_, "unterminated GLOBAL");
    std::string s = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  void push(PickleRef v) {
    if (stack_.size() > (1u << 20)) fail(pos_, "pickle stack too deep");
    stack_.push_back(std::move(v));
  }
  void push_int(int64_t x) {
    auto v = make(Kind::Int);
    v->integer = x;
    push(v);
  }
  void push_string(std::string s) {
    auto v = make(Kind::String);
    v->text = std::move(s);
    push(v);
  }
  PickleRef pop(size_t at) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail(at, "stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleRef top(size_t at) {
    if (stack_.empty()) fail(at, "stack underflow");
    return stack_.back();
  }
  std::vector<PickleRef> pop_to_mark(size_t at) {
    if (marks_.empty()) fail(at, "no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) fail(at, "bad MARK");
    std::vector<PickleRef> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t key, size_t at) {
    if (key > (1u << 20)) fail(at, "memo key too large");
    if (memo_.size() <= key) memo_.resize(key + 1);
    memo_[key] = top(at);
  }
  void memo_get(uint64_t key, size_t at) {
    if (key >= memo_.size() || !memo_[key]) fail(at, "memo key " + std::to_string(key) + " unset");
    push(memo_[key]);
  }
  void set_item(size_t at, const PickleRef& d, PickleRef key, PickleRef value) {
    if (d->kind != Kind::Dict) fail(at, "SETITEM on a non-dict");
    d->dict.emplace_back(std::move(key), std::move(value));
  }
  static bool is_int(const PickleRef& v) { return v->kind == Kind::Int; }

  PickleRef persistent_load(size_t at, const PickleRef& pid) {
    // ('storage', torch.<T>Storage, key, location, numel)
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 ||
        pid->items[0]->kind != Kind::String || pid->items[0]->text != "storage" ||
        pid->items[1]->kind != Kind::Global || pid->items[2]->kind != Kind::String ||
        !is_int(pid->items[4]))
      fail(at, "unsupported persistent id (expected a torch storage)");
    auto s = make(Kind::Storage);
    if (!storage_dtype(pid->items[1]->text, &s->dtype))
      fail(at, "unsupported storage type " + pid->items[1]->text);
    s->text = pid->items[2]->text;
    s->integer = pid->items[4]->integer;
    if (s->integer < 0) fail(at, "negative storage size");
    auto cached = storages_.find(s->text);
    if (cached != storages_.end()) {
      s->tensor = cached->second;
    } else {
      s->tensor = loader_(s->text, s->dtype, s->integer);
      storages_[s->text] = s->tensor;
    }
    return s;
  }

  std::vector<int64_t> int_tuple(size_t at, const PickleRef& t, const char* what) {
    if (t->kind != Kind::Tuple) fail(at, std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (auto& x : t->items) {
      if (!is_int(x) || x->integer < 0) fail(at, std::string(what) + " holds a bad value");
      out.push_back(x->integer);
    }
    return out;
  }

  PickleRef reduce(size_t at, const PickleRef& callable, const PickleRef& args) {
    if (callable->kind != Kind::Global || args->kind != Kind::Tuple)
      fail(at, "REDUCE needs a global and a tuple");
    const std::string& name = callable->text;
    if (name == "collections.OrderedDict") return make(Kind::Dict);
    if (name == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != Kind::Tensor)
        fail(at, "_rebuild_parameter without a tensor");
      return args->items[0];
    }
    if (name != "torch._utils._rebuild_tensor_v2")
      fail(at, "it holds a pickled Python object (" + name + "), not a state_dict of tensors: a whole "
               "model saved with torch.save(model, ...)? In Python, load it and save "
               "torch.save(model.state_dict(), path)");
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    const auto& a = args->items;
    if (a.size() < 4 || a[0]->kind != Kind::Storage || !is_int(a[1]))
      fail(at, "malformed _rebuild_tensor_v2 arguments");
    const at::Tensor& storage = a[0]->tensor;
    const int64_t offset = a[1]->integer;
    const auto size = int_tuple(at, a[2], "tensor size");
    const auto stride = int_tuple(at, a[3], "tensor stride");
    if (size.size() != stride.size()) fail(at, "tensor size and stride differ in rank");
    // The view must lie inside its storage: offset + sum((size_i - 1) * stride_i) < numel.
    bool empty = false;
    __int128 last = offset;
    for (size_t i = 0; i < size.size(); ++i) {
      if (size[i] == 0) empty = true;
      else last += static_cast<__int128>(size[i] - 1) * stride[i];
    }
    if (offset < 0 || (!empty && last >= storage.numel()))
      fail(at, "tensor view runs past its storage of " + std::to_string(storage.numel()) +
                   " elements");
    auto t = make(Kind::Tensor);
    t->tensor = empty ? at::Tensor(storage.new_empty(size))
                      : storage.as_strided(size, stride, offset);
    return t;
  }

  const std::string& data_;
  const StorageLoader& loader_;
  size_t pos_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::vector<PickleRef> memo_;
  std::map<std::string, at::Tensor> storages_;
};

class Pickler {
 public:
  void op(char c) { out_.push_back(c); }
  void uint_le(uint64_t x, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
  }
  void integer(int64_t x) {
    if (x >= 0 && x < 256) { op('K'); uint_le(x, 1); }
    else if (x >= 0 && x < 65536) { op('M'); uint_le(x, 2); }
    else if (x >= INT32_MIN && x <= INT32_MAX) { op('J'); uint_le(static_cast<uint32_t>(x), 4); }
    else { op('\x8a'); uint_le(8, 1); uint_le(static_cast<uint64_t>(x), 8); }
  }
  void string(const std::string& s) {
    op('X');
    uint_le(s.size(), 4);
    out_ += s;
  }
  void global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
  }
  void int_tuple(at::IntArrayRef xs) {
    op('(');
    for (int64_t x : xs) integer(x);
    op('t');
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

}  // namespace

PickleRef unpickle(const std::string& bytes, const StorageLoader& load_storage) {
  try {
    return Unpickler(bytes, load_storage).run();
  } catch (const c10::Error& e) {  // e.g. a tensor shape LibTorch refuses
    throw std::runtime_error(std::string("data.pkl: ") + e.what_without_backtrace());
  }
}

std::string pickle_tensor_dict(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  Pickler p;
  p.op('\x80');
  p.uint_le(2, 1);  // protocol 2, as torch.save
  p.op('}');
  p.op('(');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i].second;
    p.string(tensors[i].first);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op('(');
    p.op('(');  // persistent id: ('storage', torch.<T>Storage, key, 'cpu', numel)
    p.string("storage");
    p.global("torch", storage_name(t.scalar_type()));
    p.string(std::to_string(i));
    p.string("cpu");
    p.integer(t.numel());
    p.op('t');
    p.op('Q');
    p.integer(0);  // storage offset
    p.int_tuple(t.sizes());
    p.int_tuple(t.strides());
    p.op('\x89');  // requires_grad False
    p.global("collections", "OrderedDict");
    p.op(')');
    p.op('R');  // backward hooks: OrderedDict()
    p.op('t');
    p.op('R');
  }
  p.op('u');
  p.op('.');
  return p.bytes();
}

}  // namespace rwkv7
