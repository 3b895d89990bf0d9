#include "egnn/parameters.hpp"

#include <stdexcept>

namespace enf {

std::size_t ParameterLayout::add(const std::string& name, std::vector<int> shape) {
  if (index_.count(name)) throw std::invalid_argument("parameter '" + name + "' registered twice");
  std::size_t size = 1;
  for (int s : shape) {
    if (s <= 0) throw std::invalid_argument("parameter '" + name + "' has a non-positive dimension");
    size *= static_cast<std::size_t>(s);
  }
  TensorInfo info{name, std::move(shape), total_, size};
  index_[name] = tensors_.size();
  tensors_.push_back(std::move(info));
  total_ += size;
  return tensors_.back().offset;
}

const TensorInfo& ParameterLayout::at(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw std::out_of_range("no parameter named '" + name + "'");
  return tensors_[it->second];
}

}  // namespace enf
