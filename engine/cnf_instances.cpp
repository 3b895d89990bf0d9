// Cnf compiled once for the fields the program uses (cnf.hpp declares these
// instantiations extern, so no other file compiles the orchestration again).
#include "egnn/vector_field.hpp"
#include "engine/cnf.hpp"
#include "engine/cnf_adjoint_impl.hpp"
#include "engine/cnf_discrete_impl.hpp"
#include "engine/cnf_forward_impl.hpp"

namespace enf {

template class Cnf<VectorField<float>>;
template class Cnf<VectorField<double>>;

}  // namespace enf
