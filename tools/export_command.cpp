// enf export: a trained model without its training state, as a model is
// shipped or shared (the conformer model in datasets/models is one).
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

const CommandSpec kExport{
    "export",
    "Write a model without its training state: what sharing or shipping a model needs.",
    "A checkpoint of enf train (best/ or last/) holds, beside the weights every command\n"
    "uses (the EMA average when the run kept one), the state that resumes training exactly:\n"
    "the optimizer's moments, the raw training weights, the clipping history, the step\n"
    "counters. enf export writes the weights, the model's configuration and the run's\n"
    "provenance (training options, data, and the step, time and validation NLL it was\n"
    "saved at, under extra.exported_from) without that state: a fifth of the size, and\n"
    "the same model for enf sample, score, eval and conformers (the weights are copied\n"
    "bit for bit). It cannot be resumed.\n"
    "\nexample:\n  enf export --model runs/conformers/best --out models/conformers",
    {
        {"model", "CKPT", "", "checkpoint directory to export (a run's best/ or last/)"},
        {"out", "DIR", "", "checkpoint directory to write"},
        force_option(),
    }};

}  // namespace

int run_export(const std::vector<std::string>& args) {
  ParsedOptions opt(kExport, args);
  if (opt.help()) return std::fputs(usage(kExport).c_str(), stdout), 0;
  if (opt.str("model").empty() || opt.str("out").empty()) throw UsageError("--model and --out are required");
  const std::string model = resolve_model(opt.str("model")), out = opt.str("out");
  check_checkpoint_output(out, "model", model, opt.flag("force"));
  Checkpoint c = load_model(model);
  nlohmann::json from = {{"checkpoint", opt.str("model")}};
  if (c.extra.contains("training_state")) {
    const auto& st = c.extra["training_state"];
    for (const char* key : {"global_step", "epoch", "seconds", "best_val_nll"})
      if (st.contains(key)) from[key] = st[key];
    c.extra.erase("training_state");
  }
  c.extra["exported_from"] = from;
  c.state.clear();
  save_checkpoint(out, c);
  std::printf("exported %s (%s, %zu parameters) without its training state to %s\n", opt.str("model").c_str(),
              c.system.empty() ? (c.molecule ? "molecules" : "particles") : c.system.c_str(), c.params.values.size(),
              out.c_str());
  return 0;
}

}  // namespace enf::cli
