// enf import: a model trained with the reference PyTorch code as an enf
// checkpoint.
#include <cstdio>
#include <string>
#include <vector>

#include "datasets/registry.hpp"
#include "engine/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/options.hpp"
#include "tools/outputs.hpp"

namespace enf::cli {

namespace {

const CommandSpec kImport{
    "import",
    "Import a model trained with the reference PyTorch implementation into an enf checkpoint.",
    "DIR holds flow.safetensors (the reference's state_dict, tensor names as PyTorch writes\n"
    "them) and args.json (its command-line arguments). Supported: the egnn_dynamics flows\n"
    "of main_dw4_lj13.py (DW4, LJ13) and of main_qm9.py (QM9: ActNorm + FFJORD in\n"
    "flow.safetensors, the dequantizer's network in DIR/dequantizer.safetensors; p(N) is\n"
    "the reference's 100 000-molecule QM9 histogram).\n"
    "DIR may also be the name of a model shipped with enf: qm9-pretrained, the official\n"
    "pretrained E-NF QM9 model ('enf data list').\n"
    "\nexamples:\n  enf import --reference qm9-pretrained --out models/qm9\n"
    "  enf import --reference path/to/en_flows/outputs/dw4_run --out models/dw4",
    {
        {"reference", "DIR|NAME", "", "directory with flow.safetensors and args.json, or qm9-pretrained"},
        {"out", "CKPT", "", "checkpoint directory to write"},
        force_option(),
    }};

}  // namespace

int run_import(const std::vector<std::string>& args) {
  ParsedOptions opt(kImport, args);
  if (opt.help()) return std::fputs(usage(kImport).c_str(), stdout), 0;
  if (opt.str("reference").empty() || opt.str("out").empty()) throw UsageError("--reference and --out are required");
  const std::string reference = resolve_model(opt.str("reference")), out = opt.str("out");
  check_checkpoint_output(out, "reference", reference, opt.flag("force"));  // before the import's work
  const Checkpoint c = import_reference(reference);
  save_checkpoint(opt.str("out"), c);
  std::printf("imported %s (%s, H=%d, L=%d, %zu parameters) to %s\n", opt.str("reference").c_str(),
              c.system.empty() ? (c.molecule ? "molecules" : "particles") : c.system.c_str(), c.field.hidden,
              c.field.layers, c.params.values.size(), opt.str("out").c_str());
  return 0;
}

}  // namespace enf::cli
