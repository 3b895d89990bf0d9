#!/usr/bin/env python3
"""Data-parallel enf training beyond one machine (issue 16): a model of the
step time and scaling efficiency at K = 1 ... 256 ranks, from the compute time
measured here (tools/experiments/mpi_scaling.sh, `enf bench step --mpi`), the
gradient size P and typical interconnects. Standard library only.

  python3 tools/experiments/mpi_model.py [--measured DIR] [--threads-per-rank T]

How a step is shared (egnn/distributed_sum.hpp): the B samples fall into
G = min(B, 16) contiguous groups; ranks own contiguous runs of groups, their
threads take the groups one at a time; then ONE allgather carries every owned
group's P doubles to every rank, which adds the G buffers in group order (bit
for bit the weights of one process, for any K). So per step:

  step(K) = serial + compute(K) + exchange(K)
  serial     the weights' cast, the optimizer, the batch preparation: every
             rank does it (measured: one process's step less its gradient time)
  compute    the busiest rank's groups (list-scheduled on its T threads) x
             samples per group x the measured seconds per sample and core
  exchange   allgather of G x P doubles: ring, (K-1) alpha + R / beta, R the
             bytes the busiest receiver gets ((G - its groups) x P x 8), plus
             R / copy (the Communicator copies what it receives twice), plus
             3 small collectives (the allgather's sizes, the per-step stop and
             clock agreement: 2 allgathers) at ceil(log2 K) alpha each.

One rank per node (the node's link carries that rank's traffic alone), perfect
balance of equal-sized groups (the adaptive ODE solves of maximum-likelihood
steps vary per sample; the measured K = 2 imbalance is shown with the
measurements), no overlap of communication and compute (there is none).
"""
import argparse
import glob
import json
import math
import os
import statistics

G_MAX = 16  # kGradientGroups
KS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
# (name, bandwidth bytes/s, MPI latency s): nominal link rates as the issue
# gives them; latencies of MPI over TCP (Ethernet) and over verbs (InfiniBand).
NETWORKS = [
    ("10 GbE", 1.25e9, 50e-6),
    ("25 GbE", 3.1e9, 20e-6),
    ("IB EDR 100 Gb/s", 12e9, 2e-6),
    ("IB HDR 200 Gb/s", 24e9, 1e-6),
]
# The Communicator's handling of received bytes: a fresh zeroed buffer, the
# receive, a copy per rank, a copy into the group buffers. Measured here (a
# loaded 2-core VM, fresh pages): ~0.5-1 GB/s of received bytes; a bare-metal
# node several GB/s; receiving into kept buffers would remove most of it.
COPY = [2e9]
RECORD_BYTES = 64  # a sample's record (SampleLoss) travels with its group


class Workload:
    def __init__(self, name, batch, parameters, per_sample, serial, source):
        self.name, self.B, self.P = name, batch, parameters
        self.per_sample = per_sample  # compute seconds per sample on one core
        self.serial = serial  # seconds per step every rank spends outside the gradient
        self.source = source


def group_sizes(B, G):
    return [B * (g + 1) // G - B * g // G for g in range(G)]


def owners(B, G, K):
    """assign_groups (egnn/distributed_sum.cpp) with a sample's cost 1: the
    contiguous split of the groups into at most K runs whose largest load is
    smallest (ties: the latest cut, so ranks left without work are the last)."""
    sizes = group_sizes(B, G)
    Kr = min(K, G)
    prefix = [0]
    for s in sizes:
        prefix.append(prefix[-1] + s)
    inf = float("inf")
    best = [[inf] * (G + 1) for _ in range(Kr + 1)]
    cut = [[0] * (G + 1) for _ in range(Kr + 1)]
    best[0][0] = 0
    for k in range(1, Kr + 1):
        for g in range(G + 1):
            for c in range(g + 1):
                load = max(best[k - 1][c], prefix[g] - prefix[c])
                if load <= best[k][g]:
                    best[k][g], cut[k][g] = load, c
    out, g = [0] * G, G
    for k in range(Kr, 0, -1):
        c = cut[k][g]
        for i in range(c, g):
            out[i] = k - 1
        g = c
    return out


def busiest(B, K, T, groups=G_MAX):
    """Samples on the critical path (groups list-scheduled on T threads) and
    the fewest groups any rank owns, for G = min(B, groups) groups on K ranks."""
    G = min(B, groups)
    sizes, own = group_sizes(B, G), owners(B, G, K)
    worst, fewest = 0, G
    for r in range(K):
        mine = [sizes[g] for g in range(G) if own[g] == r]
        fewest = min(fewest, len(mine))
        threads = [0] * T
        for s in mine:  # schedule(dynamic, 1): the next group to the first free thread
            threads[threads.index(min(threads))] += s
        worst = max(worst, max(threads))
    return worst, fewest


def allgather_seconds(w, B, K, net, groups=G_MAX):
    if K == 1:
        return 0.0
    _, bw, lat = net
    G = min(B, groups)
    _, fewest = busiest(B, K, 1, groups)
    received = (G - fewest) * (w.P * 8) + B * RECORD_BYTES
    small = 3 * math.ceil(math.log2(K)) * lat
    return (K - 1) * lat + received / bw + received / COPY[0] + small


def allreduce_seconds(P, K, net, words=1):
    """Ring allreduce of P values of `words` 8-byte words (reduce-scatter + allgather)."""
    if K == 1:
        return 0.0
    _, bw, lat = net
    return 2 * (K - 1) * lat + 2 * (1 - 1 / K) * words * P * 8 / bw


def step_seconds(w, B, K, T, net, groups=G_MAX):
    samples, _ = busiest(B, K, T, groups)
    compute = samples * w.per_sample
    return w.serial + compute, allgather_seconds(w, B, K, net, groups)


def exact_step_seconds(w, B, K, T, net):
    """The alternative without groups: each rank sums its ceil(B / K) samples
    exactly (fixed point, two 64-bit words per value), one ring allreduce of
    integers (associative: bits independent of K and order), one small
    allreduce of the exponent range first."""
    per_rank = math.ceil(B / min(K, B))
    compute = math.ceil(per_rank / T) * w.per_sample
    return w.serial + compute + allreduce_seconds(w.P, K, net, words=2) + 2 * math.ceil(math.log2(max(K, 2))) * net[2]


def fmt_s(x, unit=""):
    return f"{x:.3g}{unit}" if x >= 0.001 else f"{x * 1e3:.2g} ms"


def strong_table(w, T):
    t1 = w.serial + w.B * w.per_sample
    head = "| K | busiest rank: samples | compute s | " + " | ".join(
        f"{n[0]}: s / eff." for n in NETWORKS) + " | exact allreduce, HDR: s / eff. |"
    lines = [head, "|" + "---:|" * (4 + len(NETWORKS))]
    for K in KS:
        samples, _ = busiest(w.B, K, T)
        cells = []
        for net in NETWORKS:
            c, x = step_seconds(w, w.B, K, T, net)
            cells.append(f"{fmt_s(c + x)} / {100 * t1 / (K * (c + x)):.0f}%")
        e = exact_step_seconds(w, w.B, K, T, NETWORKS[-1])
        lines.append(f"| {K} | {samples} | {fmt_s(w.serial + samples * w.per_sample)} | " + " | ".join(cells) +
                     f" | {fmt_s(e)} / {100 * t1 / (K * e):.0f}% |")
    return lines


def weak_table(w, T):
    t1 = w.serial + w.B * w.per_sample
    head = "| K | global batch | busiest rank: samples | " + " | ".join(
        f"{n[0]}: s / eff." for n in NETWORKS) + " |"
    lines = [head, "|" + "---:|" * (3 + len(NETWORKS))]
    for K in KS:
        B = w.B * K
        samples, _ = busiest(B, K, T)
        cells = []
        for net in NETWORKS:
            c, x = step_seconds(w, B, K, T, net)
            cells.append(f"{fmt_s(c + x)} / {100 * t1 / (c + x):.0f}%")
        lines.append(f"| {K} | {B} | {samples} | " + " | ".join(cells) + " |")
    return lines


def cap_table(w, T):
    """Strong scaling with the cap lifted: G = 64 groups, G = B (a buffer per
    sample), or the exact (fixed-point) allreduce without groups."""
    t1 = w.serial + w.B * w.per_sample
    nets = (NETWORKS[0], NETWORKS[-1])
    head = "| K | " + " | ".join(f"{n[0]}: G = 16 / G = 64 / G = B / exact allreduce" for n in nets) + " |"
    lines = [head, "|" + "---:|" * (1 + len(nets))]
    for K in KS:
        cells = []
        for net in nets:
            effs = [t1 / (K * sum(step_seconds(w, w.B, K, T, net, g))) for g in (16, 64, w.B)]
            effs.append(t1 / (K * exact_step_seconds(w, w.B, K, T, net)))
            cells.append(" / ".join(f"{100 * e:.0f}%" for e in effs))
        lines.append(f"| {K} | " + " | ".join(cells) + " |")
    return lines


def compact_table(workloads, T):
    """Strong-scaling efficiency of every workload, 10 GbE / IB HDR."""
    lines = ["| K | " + " | ".join(f"{w.name} (P = {w.P // 1000} k, B = {w.B})" for w in workloads) + " |",
             "|" + "---:|" * (1 + len(workloads))]
    for K in KS:
        cells = []
        for w in workloads:
            t1 = w.serial + w.B * w.per_sample
            effs = [t1 / (K * sum(step_seconds(w, w.B, K, T, net))) for net in (NETWORKS[0], NETWORKS[-1])]
            cells.append(" / ".join(f"{100 * e:.0f}%" for e in effs))
        lines.append(f"| {K} | " + " | ".join(cells) + " |")
    return lines


def stops(w, T):
    """Per network: the K of the shortest step (beyond it, more ranks are
    slower) and the largest K at >= 50 % strong-scaling efficiency."""
    t1 = w.serial + w.B * w.per_sample
    out = []
    for net in NETWORKS:
        times = {K: sum(step_seconds(w, w.B, K, T, net)) for K in KS}
        best = min(KS, key=lambda K: times[K])
        half = max([K for K in KS if t1 / (K * times[K]) >= 0.5], default=1)
        out.append(f"{net[0]}: fastest at K = {best} ({fmt_s(times[best], ' s')}, {t1 / times[best]:.1f}x), "
                   f"efficiency >= 50 % up to K = {half}")
    return out


# ---- measurements (mpi_scaling.sh) ---------------------------------------------------

def load_measured(directory):
    """{system: {kind: [json, ...]}} for kind t1, t2, k2 (rounds) and k2tcp."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.basename(path)[:-5]
        parts = name.split("_")
        if len(parts) < 2:
            continue
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        runs.setdefault(parts[0], {}).setdefault(parts[1], []).append(data)
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def step_of(run, objective):
    for s in run["steps"]:
        if s["objective"].startswith(objective):
            return s
    raise KeyError(objective)


def measured_tables(runs):
    lines = ["## Measured on this machine (median over rounds; see run.txt for the load)", "",
             "| system, step | P | 1 process x 1 thread, s | 1 process x 2 threads, s (speed-up) | "
             "2 ranks x 1 thread, s (speed-up, efficiency) | in-job K = 1 reference, s | "
             "K = 2: imbalance, s | K = 2: exchange in step, s | TCP loopback: 2 ranks, s (efficiency) | bit-identical |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    workloads = []
    for system in sorted(runs):
        r = runs[system]
        if not all(k in r for k in ("t1", "t2", "k2")):
            continue
        for objective, short in (("maximum likelihood", "ML"), ("flow matching", "FM")):
            t1 = med([step_of(j, objective)["seconds"] for j in r["t1"]])
            busy1 = med([step_of(j, objective)["busy_seconds_per_rank"][0] for j in r["t1"]])
            t2 = med([step_of(j, objective)["seconds"] for j in r["t2"]])
            k2 = [step_of(j, objective) for j in r["k2"]]
            tk = med([s["seconds"] for s in k2])
            ref = med([s["reference_seconds"] for s in k2])
            eff = med([s["efficiency"] for s in k2])
            imb = med([s["imbalance_seconds"] for s in k2])
            exs = med([s["exchange_seconds_in_step"] for s in k2])
            same = all(j["weights_identical_to_one_process"] for j in r["k2"])
            tcp = "—"
            if "k2tcp" in r:
                tcp_steps = [step_of(j, objective) for j in r["k2tcp"]]
                tcp = (f"{med([s['seconds'] for s in tcp_steps]):.4f} "
                       f"({100 * med([s['efficiency'] for s in tcp_steps]):.0f}%)")
            P, B = r["t1"][0]["parameters"], r["t1"][0]["batch"]
            lines.append(f"| {system} {short} | {P} | {t1:.4f} | {t2:.4f} ({t1 / t2:.2f}x) | "
                         f"{tk:.4f} ({t1 / tk:.2f}x, {eff * 100:.0f}%) | {ref:.4f} | {imb:.4f} | {exs:.4f} | {tcp} | "
                         f"{'yes' if same else 'NO'} |")
            workloads.append(Workload(f"{system.upper()} {short}", B, P, busy1 / B, max(t1 - busy1, 0.0),
                                      f"measured: 1 process x 1 thread, {t1:.4f} s per step of batch {B}"))
    lines.append("")
    ex = []
    for system in sorted(runs):
        for kind, label in (("k2", "shared memory"), ("k2tcp", "TCP loopback")):
            for j in runs[system].get(kind, []):
                for e in j.get("exchanges", []):
                    ex.append((label, e["what"], e["bytes_received_max"], e["seconds"]))
    if ex:
        lines += ["| exchange, 2 ranks (median over runs) | transport | MB received | ms | GB/s |",
                  "|---|---|---:|---:|---:|"]
        keys = []
        for label, what, b, _ in ex:
            if (label, what, b) not in keys:
                keys.append((label, what, b))
        for label, what, b in keys:
            s = med([x[3] for x in ex if (x[0], x[1], x[2]) == (label, what, b)])
            lines.append(f"| {what} | {label} | {b / 1e6:.3f} | {s * 1e3:.3f} | {b / s / 1e9:.2f} |")
        lines.append("")
    return lines, workloads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measured", help="results of mpi_scaling.sh (tools/experiments/results/mpi_scaling)")
    ap.add_argument("--threads-per-rank", type=int, default=1, help="threads of each rank (default 1)")
    ap.add_argument("--copy-gbps", type=float, default=2.0, help="GB/s at which received bytes are copied (default 2)")
    ap.add_argument("--qm9-ml-step", type=float, default=9.5, help="QM9 ML step, s (batch 128, H = 64, L = 6)")
    ap.add_argument("--qm9-fm-step", type=float, default=1.3,
                    help="QM9 flow-matching step, s (batch 128; README: 456 steps in a 10-minute probe)")
    ap.add_argument("--qm9-cores", type=int, default=2, help="cores those QM9 steps ran on")
    ap.add_argument("--qm9-parameters", type=int, default=294000, help="QM9 model's P")
    args = ap.parse_args()
    T = max(1, args.threads_per_rank)
    COPY[0] = args.copy_gbps * 1e9

    out, workloads = [], []
    if args.measured:
        lines, workloads = measured_tables(load_measured(args.measured))
        out += lines
    # QM9 (not in `enf bench step`): the README's step times; thread scaling taken as perfect.
    c = args.qm9_cores
    workloads.append(Workload("QM9 ML", 128, args.qm9_parameters, args.qm9_ml_step * c / 128, 0.01,
                              f"README: {args.qm9_ml_step} s per step of batch 128 on {c} cores"))
    workloads.append(Workload("QM9 FM", 128, args.qm9_parameters, args.qm9_fm_step * c / 128, 0.01,
                              f"{args.qm9_fm_step} s per step of batch 128 on {c} cores"))

    out += [f"## Model: K ranks of {T} thread{'s' if T > 1 else ''}, one per node", "",
            "Networks (bandwidth, MPI latency): " + "; ".join(
                f"{n} {bw / 1e9:.3g} GB/s, {lat * 1e6:.0f} us" for n, bw, lat in NETWORKS) +
            f"; received bytes also copied at {COPY[0] / 1e9:.3g} GB/s.", "",
            f"Strong scaling efficiency T1 / (K TK), {NETWORKS[0][0]} / {NETWORKS[-1][0]}:", ""]
    out += compact_table(workloads, T) + [""]
    for w in workloads:
        t1 = w.serial + w.B * w.per_sample
        out += [f"### {w.name}: P = {w.P}, batch {w.B}, {w.per_sample * 1e3:.3g} ms per sample and core, "
                f"serial {fmt_s(w.serial, ' s')} per step; K = 1: {fmt_s(t1, ' s')} per step",
                "", f"({w.source}.) Exchange per step: {min(w.B, G_MAX)} x P doubles = "
                f"{min(w.B, G_MAX) * w.P * 8 / 1e6:.2f} MB in all.", "",
                f"Strong scaling (global batch {w.B}):", ""]
        out += strong_table(w, T)
        out += ["", f"Weak scaling ({w.B} samples per rank; G stays 16):", ""]
        out += weak_table(w, T)
        out += ["", "Where scaling stops: " + "; ".join(stops(w, T)) + ".", ""]
        if w.name.endswith("ML"):
            out += [f"Lifting the 16-group cap (strong scaling efficiency; G = B: {w.B} buffers of P doubles "
                    f"= {w.B * w.P * 8 / 1e6:.0f} MB per rank and per exchange):", ""]
            out += cap_table(w, T) + [""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
