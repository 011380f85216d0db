#!/usr/bin/env python3
"""Independent reference for an end-to-end scan: a small sharded bf16 Llama-style checkpoint and its expected scan.

Writes tests/reference/fixtures/scan/:
  model/config.json, model/model-0000{1,2}-of-00002.safetensors, model/model.safetensors.index.json
  expected_snr_results.json   flat layout of the reference scanner: {module: {"snr": score, "type": type}}
  expected_selection.json     {"25": [modules...], "50": [...]} top percent per type
The safetensors files are written by hand (safetensors_io.py, struct + json) so the fixture does not depend on our C# writer;
scores follow the published method with torch.linalg.svdvals in float32, as the reference scanner does.

Run:   /usr/bin/python3 tests/reference/make_scan_fixture.py           (rewrite the fixture)
       /usr/bin/python3 tests/reference/make_scan_fixture.py --check   (regenerate in a temp folder and compare)
Needs Debian's python3-torch (1.13) and python3-numpy.
"""
import json, math, os, sys, tempfile, filecmp

import torch

from safetensors_io import write_safetensors

HIDDEN, INTERMEDIATE, LAYERS, HEADS, KV_HEADS, VOCAB = 64, 160, 4, 4, 2, 96
HEAD_DIM = HIDDEN // HEADS
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "scan")
SCORE_RTOL = 1e-5  # --check: regenerated scores vs committed ones (same library, same machine type)


def tensor_shapes():
    kv = KV_HEADS * HEAD_DIM
    shapes = [("model.embed_tokens.weight", [VOCAB, HIDDEN])]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", [HIDDEN]),
            (p + "self_attn.q_proj.weight", [HIDDEN, HIDDEN]),
            (p + "self_attn.k_proj.weight", [kv, HIDDEN]),
            (p + "self_attn.v_proj.weight", [kv, HIDDEN]),
            (p + "self_attn.o_proj.weight", [HIDDEN, HIDDEN]),
            (p + "post_attention_layernorm.weight", [HIDDEN]),
            (p + "mlp.gate_proj.weight", [INTERMEDIATE, HIDDEN]),
            (p + "mlp.up_proj.weight", [INTERMEDIATE, HIDDEN]),
            (p + "mlp.down_proj.weight", [HIDDEN, INTERMEDIATE]),
        ]
    shapes += [("model.norm.weight", [HIDDEN]), ("lm_head.weight", [VOCAB, HIDDEN])]
    return shapes


def make_tensor(index, name, shape):
    g = torch.Generator().manual_seed(1000 + index)
    if len(shape) == 1:
        return (1 + 0.05 * torch.randn(shape, generator=g)).to(torch.bfloat16)
    rows, cols = shape
    w = 0.02 * torch.randn(shape, generator=g)
    if ".layers." in name:
        # Planted signal: rank 1..6 and strength varying with the layer and module, so scores and selections differ.
        rank = 1 + index % 6
        strength = 1.2 + (index * 37 % 11) / 4
        edge = 0.02 * (math.sqrt(rows) + math.sqrt(cols))
        u = torch.randn(rows, rank, generator=g) / math.sqrt(rows)
        v = torch.randn(cols, rank, generator=g) / math.sqrt(cols)
        s = torch.linspace(strength, strength / 2, rank) * edge
        w = w + (u * s) @ v.T
    return w.to(torch.bfloat16)


def published_score(w):
    """The published Spectrum score, float32 like the reference: svdvals, IQR sigma, MP threshold, snr / S[0]."""
    s = torch.linalg.svdvals(w.to(torch.float32))
    q75, q25 = torch.quantile(s, 0.75), torch.quantile(s, 0.25)
    sigma = (q75 - q25) / 1.349
    n, m = w.shape
    beta = min(n, m) / max(n, m)
    threshold = sigma * (1 + math.sqrt(beta))
    signal = s[s > threshold].sum()
    noise_values = s[s <= threshold]
    noise = noise_values.sum() if noise_values.numel() > 0 else torch.tensor(1.0)
    return float(signal / noise / s[0])


def module_type(module):
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[i + 1:])
    return module


def generate(folder):
    model = os.path.join(folder, "model")
    os.makedirs(model, exist_ok=True)
    shapes = tensor_shapes()
    tensors = [(name, make_tensor(i, name, shape)) for i, (name, shape) in enumerate(shapes)]
    half = len(tensors) // 2
    shards = [tensors[:half], tensors[half:]]
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(model, file), shard)
        for name, t in shard:
            weight_map[name] = file
            total += t.numel() * 2
    with open(os.path.join(model, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
              "intermediate_size": INTERMEDIATE, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
              "num_key_value_heads": KV_HEADS, "vocab_size": VOCAB, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "max_position_embeddings": 256, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    with open(os.path.join(model, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    results = {}
    for name, t in tensors:
        if t.dim() == 2 and ".layers." in name and name.endswith(".weight"):
            module = name[: -len(".weight")]
            results[module] = {"snr": published_score(t), "type": module_type(module)}
    with open(os.path.join(folder, "expected_snr_results.json"), "w") as f:
        json.dump(results, f, indent=2)

    selection = {}
    for percent in (25, 50):
        chosen = []
        by_type = {}
        for module, r in results.items():
            by_type.setdefault(r["type"], []).append((module, r["snr"]))
        for typ, items in by_type.items():
            ranked = sorted(items, key=lambda x: -x[1])  # stable: ties keep file order
            chosen += [m for m, _ in ranked[: len(items) * percent // 100]]
        selection[str(percent)] = chosen
    with open(os.path.join(folder, "expected_selection.json"), "w") as f:
        json.dump(selection, f, indent=2)


def check():
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp)
        problems = []
        for root, _, files in os.walk(os.path.join(tmp, "model")):
            for file in files:
                fresh = os.path.join(root, file)
                committed = os.path.join(FIXTURE, os.path.relpath(fresh, tmp))
                if not os.path.exists(committed) or not filecmp.cmp(fresh, committed, shallow=False):
                    problems.append(f"{committed} differs from a fresh generation")
        fresh = json.load(open(os.path.join(tmp, "expected_snr_results.json")))
        committed = json.load(open(os.path.join(FIXTURE, "expected_snr_results.json")))
        if fresh.keys() != committed.keys():
            problems.append("expected_snr_results.json names a different set of modules")
        for module in fresh:
            a, b = fresh[module]["snr"], committed.get(module, {}).get("snr", float("nan"))
            if not abs(a - b) <= SCORE_RTOL * abs(a):
                problems.append(f"{module}: fresh score {a!r} vs committed {b!r} (rtol {SCORE_RTOL})")
        if json.load(open(os.path.join(tmp, "expected_selection.json"))) != json.load(open(os.path.join(FIXTURE, "expected_selection.json"))):
            problems.append("expected_selection.json differs")
        for p in problems[:20]:
            print("MISMATCH", p)
        print(f"scan fixture check: {'ok' if not problems else str(len(problems)) + ' problems'}")
        return 0 if not problems else 1


if __name__ == "__main__":
    torch.set_num_threads(1)
    if "--check" in sys.argv:
        sys.exit(check())
    generate(FIXTURE)
    print(f"wrote {FIXTURE}")
