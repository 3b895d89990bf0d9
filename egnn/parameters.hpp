// Named parameter tensors stored in one flat buffer.
//
// Every tensor keeps the reference implementation's PyTorch state_dict name
// ("egnn.gcl_0.edge_mlp.0.weight", ...) and shape (Linear weights [out, in]),
// so checkpoints convert by name. Gradients use the same layout, which is what
// the optimizer sees: one flat vector.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace enf {

struct TensorInfo {
  std::string name;
  std::vector<int> shape;
  std::size_t offset = 0;  // into the flat buffer
  std::size_t size = 0;    // product of shape
};

// The names, shapes and offsets of a model's tensors, in registration order.
class ParameterLayout {
 public:
  // Appends a tensor; returns its offset. Throws on a duplicate name.
  std::size_t add(const std::string& name, std::vector<int> shape);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  std::size_t total_size() const { return total_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Throws std::out_of_range naming the tensor when it is missing.
  const TensorInfo& at(const std::string& name) const;

 private:
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;
  std::size_t total_ = 0;
};

// A flat, 64-byte aligned buffer: Eigen's vectorised kernels peel unaligned
// heads, so with an arbitrary malloc address the rounding of a result could
// depend on where the buffer happens to live (and a run would not be
// reproducible across processes).
template <class T>
using AlignedVector = std::vector<T, Eigen::aligned_allocator<T>>;

// A flat parameter (or gradient) buffer with its layout.
template <class T>
struct Parameters {
  ParameterLayout layout;
  AlignedVector<T> values;

  explicit Parameters(ParameterLayout l = {}) : layout(std::move(l)), values(layout.total_size(), T(0)) {}

  std::span<T> tensor(const std::string& name) {
    const auto& info = layout.at(name);
    return {values.data() + info.offset, info.size};
  }
  std::span<const T> tensor(const std::string& name) const {
    const auto& info = layout.at(name);
    return {values.data() + info.offset, info.size};
  }

  // Converts between scalar types (float <-> double) keeping the layout.
  template <class U>
  Parameters<U> cast() const {
    Parameters<U> out(layout);
    for (std::size_t i = 0; i < values.size(); ++i) out.values[i] = static_cast<U>(values[i]);
    return out;
  }
};

}  // namespace enf
