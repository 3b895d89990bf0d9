#include "datasets/molecule.hpp"

#include <cctype>

namespace enf {

namespace {
// IUPAC symbols, index Z − 1.
constexpr std::array<const char*, 118> kSymbols = {
    "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl",
    "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se",
    "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb",
    "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
    "Tm", "Yb", "Lu", "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At",
    "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No",
    "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

bool same_ignoring_case(const std::string& a, const char* b) {
  std::size_t i = 0;
  for (; i < a.size() && b[i]; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return i == a.size() && !b[i];
}
}  // namespace

int qm9_type_index(int z) {
  for (std::size_t k = 0; k < kQm9AtomicNumbers.size(); ++k)
    if (kQm9AtomicNumbers[k] == z) return int(k);
  return -1;
}

std::string element_symbol(int z) {
  if (z >= 1 && z <= int(kSymbols.size())) return kSymbols[std::size_t(z - 1)];
  // append, not "Z" + std::to_string(z): GCC 12 warns falsely (-Wrestrict, PR 105329) on the latter.
  std::string out = "Z";
  out.append(std::to_string(z));
  return out;
}

int atomic_number(const std::string& symbol) {
  if (symbol.empty() || symbol.size() > 2) return 0;
  for (std::size_t k = 0; k < kSymbols.size(); ++k)
    if (same_ignoring_case(symbol, kSymbols[k])) return int(k) + 1;
  return 0;
}

}  // namespace enf
