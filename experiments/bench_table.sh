#!/usr/bin/env bash
# The README's performance table: `mmkt bench` run 3 times (each figure already the median of
# 5 timings); prints the median of the 3 runs and their range, because timings on a shared VM
# drift between runs. Usage: bash experiments/bench_table.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
out=runs/bench_table
for r in $(seq 1 "$rounds"); do
  build/release/bin/mmkt --log-level warn bench --out $out/round_$r > /dev/null
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, n = sys.argv[1], int(sys.argv[2])
runs = [json.load(open(f"{out}/round_{r}/bench.json")) for r in range(1, n + 1)]
def value(r, key):
    v = r[key]
    return v if isinstance(v, (int, float)) else v["median"]
rows = [
    ("matmul_1024_gflops", "matmul 1024 x 1024 x 1024 (peak)", "GFLOP/s", 1),
    ("matmul_100x784x512_gflops", "matmul 100 x 784 x 512 (the step's largest shape)", "GFLOP/s", 1),
    ("train_mnist", "JMVAE-kl training, MNIST paper architecture, batch 100", "samples/s", 0),
    ("train_mnist_gflops", "  its GFLOP/s (6 x batch x Linear multiply-adds / step time)", "GFLOP/s", 1),
    ("train_mnist_share", "  as a share of the 1024^3 matmul peak of the same run", "%", 0),
    ("train_mnist_reference_adam", "the same step with libtorch's Adam + zero_grad() (ablation, same process)", "samples/s", 0),
    ("train_mnist_1_thread", "the same step on 1 intra-op thread", "samples/s", 0),
    ("shared_input_separate_ms", "first layers of q(z|x) and the joint image branch, fwd + bwd: two 784 -> 512 matmuls", "ms", 3),
    ("shared_input_fused_ms", "the same fused into one 784 -> 1024 matmul", "ms", 3),
    ("train_shapes", "JMVAE-kl + triplet training, 64x64 conv + GRU text (shapes), batch 100", "samples/s", 0),
    ("train_shapes_libtorch_deconv", "  the same with libtorch's ConvTranspose2d (ablation, same process)", "samples/s", 0),
    ("train_shapes_recipe", "the shapes-levels recipe (16-channel convs + GRU text), batch 100", "samples/s", 0),
    ("train_shapes_recipe_conv_text", "  the same with conv text and a word tokenizer", "samples/s", 0),
    ("train_fashion", "JMVAE-kl + triplet training, Fashion-MNIST MLP + GRU text, batch 100", "samples/s", 0),
    ("train_fashion_conv_text", "  the same with conv text and a word tokenizer", "samples/s", 0),
    ("eval_embed_mnist", "evaluation: posterior means of both modalities (MNIST test set)", "items/s", 0),
    ("likelihood_k1000_per_100_items", "K = 1000 log p(image,label), 100 items", "s", 2),
    ("query_text_to_image", "text -> image query over 70,000 items (tokenize, encode, score, top-10)", "ms", 3),
    ("query_encode", "  of which tokenize + text encoder", "ms", 3),
    ("query_search", "  of which cosine scores + top-10", "ms", 3),
    ("pipeline_mnist", "data pipeline, MNIST (dynamic binarization)", "samples/s", 0),
    ("pipeline_mnist_ratio", "  as a multiple of the MNIST training step's rate", "x", 0),
    ("pipeline_fashion", "data pipeline, Fashion-MNIST + tokenized captions", "samples/s", 0),
    ("pipeline_fashion_ratio", "  as a multiple of the Fashion training step's rate", "x", 0),
]
for r in runs:
    r["train_mnist_gflops"] = r["train_mnist"]["gflops"]
    r["train_mnist_share"] = 100 * r["train_mnist"]["share_of_matmul_peak"]
    r["pipeline_mnist_ratio"] = r["pipeline_mnist"]["ratio_to_training"]
    r["pipeline_fashion_ratio"] = r["pipeline_fashion"]["ratio_to_training"]
    r["query_encode"] = r["query_text_to_image"]["encode_median_ms"]
    r["query_search"] = r["query_text_to_image"]["search_median_ms"]
m = runs[0]["machine"]
print(f"{m['hardware_threads']} hardware threads, {m['threads']} intra-op threads, BLAS {m['blas']}, "
      f"device {m['device']}; median of {n} runs of `mmkt bench` (each figure itself the median of "
      f"{m['repeats']} timings), with the range over the runs.\n")
print("| figure | median | range over runs | unit |")
print("| --- | ---: | ---: | --- |")
for key, label, unit, d in rows:
    vals = [value(r, key) for r in runs if key in r]
    if not vals:
        continue
    print(f"| {label} | {statistics.median(vals):.{d}f} | {min(vals):.{d}f} - {max(vals):.{d}f} | {unit} |")
PY
