#!/usr/bin/env bash
# A short QM9 training run on the shipped molecules, to see the NLL go down.
# The reference's recipe (main_qm9.py: argmax-variational dequantization,
# data-initialised ActNorm, Hutchinson trace with Gaussian noise, dopri5 at
# rtol = atol = 1e-4, ODE regularization 1e-3, AdamW AMSGrad, gradient
# clipping) with a smaller model and batch so that it runs in about 10-20
# minutes on 2 cores: field H = 32, L = 4 (reference 64, 6), dequantizer
# width 32, 3 layers (64, 4), batch 32 (128), lr 5e-4 (2e-4).
# Data: the EDM/cormorant QM9 test split (the only QM9 split shipped): its
# first 4000 molecules for training (125 steps an epoch, 3 epochs = 375
# steps), its last 300 for validation after every epoch (float64, Hutchinson
# at 1e-5). Measured at initialisation: 0.6 s a step (20 NFE per molecule);
# the NFE grow as the flow trains. The full reference model takes about 9.5 s
# a step at batch 128.
# Prints the mean training NLL over blocks of 25 steps and the validation NLL
# at the end (also in RUN/summary.txt).
#   tools/experiments/qm9_short.sh [EPOCHS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=${1:-3}
threads=${2:-0}
run=runs/qm9_short_e${epochs}
rm -rf "$run"
${ENF:-build/enf} train --system qm9 --n-data 4000 --val-samples 300 --nf 32 --layers 4 \
  --dequantizer-nf 32 --dequantizer-layers 3 --batch 32 --lr 5e-4 --epochs "$epochs" --threads "$threads" --out "$run"
python3 - "$run/metrics.jsonl" <<'EOF' | tee "$run/summary.txt"
import json, sys
steps, val = [], []
for line in open(sys.argv[1]):
    j = json.loads(line)
    (steps if j["type"] == "step" else val).append(j)
print("steps      mean training NLL   NFE per molecule (forward, backward)   seconds per step")
for k in range(0, len(steps), 25):
    b = steps[k:k + 25]
    nll = sum(s["nll"] for s in b) / len(b)
    nfe_f = sum(s["nfe_forward"] for s in b) / len(b) / 32
    nfe_b = sum(s["nfe_backward"] for s in b) / len(b) / 32
    sec = sum(s["seconds"] for s in b) / len(b)
    print(f"{b[0]['step']:4d}-{b[-1]['step']:4d}  {nll:17.2f}   {nfe_f:17.1f}, {nfe_b:.1f}   {sec:21.2f}")
for v in val:
    print(f"validation after epoch {v['epoch']}: NLL {v['nll']:.2f} ± {v['standard_error']:.2f}")
EOF
