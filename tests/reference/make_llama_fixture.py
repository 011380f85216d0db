#!/usr/bin/env python3
"""Independent reference for the Llama-family forward pass: three tiny checkpoints and the logits they must produce.

Not a port of our C# model: the forward below is written from the published architecture (pre-norm decoder,
RMSNorm, rotary embeddings rotating dimension i with dimension i + head_dim/2, grouped-query attention with a causal
mask, SwiGLU MLP) with deliberately different mechanics (per-head loops, explicit masks, the original Meta
per-frequency loop for Llama 3.1 RoPE scaling in float64). It is not a trainer and not a speed reference.

Writes tests/reference/fixtures/llama/<case>/:
  model/config.json + weights     safetensors written by hand (safetensors_io.py, struct + json), independent of our C# writer
  expected.safetensors            input_ids (I64) and logits (F32), plus position_ids / logits_at_positions where
                                  a case also checks explicit positions, and greedy_prompt / greedy_ids: the ids greedy
                                  decoding appends to the prompt, each the argmax of a full forward over everything so
                                  far (no cache), with the winning margin checked so float noise cannot flip a choice
Cases:
  llama3_bf16_sharded   Llama 3 style: untied head, rope_scaling "llama3", BF16, two shards plus an index
  qwen2_bias_f32        Qwen2 style: q/k/v biases, explicit head_dim != hidden/heads, F32, one file
  tied_f16              SmolLM style: tied embeddings (no lm_head tensor), F16, one file
Logits are computed in float32 from the decoded (stored-precision) weights.

Run:   /usr/bin/python3 tests/reference/make_llama_fixture.py           (rewrite the fixtures)
       /usr/bin/python3 tests/reference/make_llama_fixture.py --check   (regenerate in a temp folder and compare)
Needs Debian's python3-torch (1.13) and python3-numpy.
"""
import filecmp, json, math, os, sys, tempfile

import torch

from safetensors_io import read_safetensors, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "llama")
LOGIT_ATOL = 1e-5  # --check: regenerated vs committed logits; another CPU may sum in another order (C# tests use 1e-4)

# Explicit positions must change relative distances to matter (RoPE attention depends only on them): row 0 packs two
# documents (positions restart), row 1 is strided far beyond original_max_position_embeddings.
PACKED_AND_STRIDED = [list(range(5)) + list(range(6)), list(range(1000, 1033, 3))]

CASES = {
    "llama3_bf16_sharded": dict(
        model_type="llama", architecture="LlamaForCausalLM", hidden=64, intermediate=160, layers=2, heads=4,
        kv_heads=2, head_dim=16, vocab=100, tie=False, qkv_bias=False, dtype="BF16", eps=1e-5, theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64},
        max_positions=2048, shards=2, positions=PACKED_AND_STRIDED, seed=11),
    "qwen2_bias_f32": dict(
        model_type="qwen2", architecture="Qwen2ForCausalLM", hidden=48, intermediate=96, layers=2, heads=4,
        kv_heads=2, head_dim=16, vocab=90, tie=False, qkv_bias=True, dtype="F32", eps=1e-6, theta=1000000.0,
        rope_scaling=None, max_positions=4096, shards=1, positions=None, seed=22),
    "tied_f16": dict(
        model_type="llama", architecture="LlamaForCausalLM", hidden=48, intermediate=128, layers=2, heads=6,
        kv_heads=2, head_dim=8, vocab=80, tie=True, qkv_bias=False, dtype="F16", eps=1e-5, theta=10000.0,
        rope_scaling=None, max_positions=2048, shards=1, positions=None, seed=33),
}
BATCH, SEQ = 2, 11
GREEDY_PROMPT, GREEDY_NEW = 5, 12
GREEDY_MIN_MARGIN = 1e-3  # top-1 minus top-2 logit at every greedy step: 10x the C# logit tolerance
STORAGE = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
TORCH_DTYPE_NAME = {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}


# ----------------------------------------------------------------------------------------------- weights and files

def make_weights(case):
    """Random weights at the case's storage precision, in Hugging Face naming. Scales are chosen so attention is
    peaked (scores of order 1-10) and RoPE and the causal mask visibly change the logits."""
    g = torch.Generator().manual_seed(case["seed"])
    h, d, inter, vocab = case["hidden"], case["head_dim"], case["intermediate"], case["vocab"]
    q_width, kv_width = case["heads"] * d, case["kv_heads"] * d

    def matrix(rows, cols, gain=1.0):
        return gain * torch.randn(rows, cols, generator=g) / math.sqrt(cols)

    def norm(width):
        return 1.0 + 0.1 * torch.randn(width, generator=g)

    weights = [("model.embed_tokens.weight", torch.randn(vocab, h, generator=g))]
    for i in range(case["layers"]):
        p = f"model.layers.{i}."
        weights.append((p + "input_layernorm.weight", norm(h)))
        weights.append((p + "self_attn.q_proj.weight", matrix(q_width, h, 2.0)))
        if case["qkv_bias"]:
            weights.append((p + "self_attn.q_proj.bias", 0.2 * torch.randn(q_width, generator=g)))
        weights.append((p + "self_attn.k_proj.weight", matrix(kv_width, h, 2.0)))
        if case["qkv_bias"]:
            weights.append((p + "self_attn.k_proj.bias", 0.2 * torch.randn(kv_width, generator=g)))
        weights.append((p + "self_attn.v_proj.weight", matrix(kv_width, h)))
        if case["qkv_bias"]:
            weights.append((p + "self_attn.v_proj.bias", 0.2 * torch.randn(kv_width, generator=g)))
        weights.append((p + "self_attn.o_proj.weight", matrix(h, q_width)))
        weights.append((p + "post_attention_layernorm.weight", norm(h)))
        weights.append((p + "mlp.gate_proj.weight", matrix(inter, h)))
        weights.append((p + "mlp.up_proj.weight", matrix(inter, h)))
        weights.append((p + "mlp.down_proj.weight", matrix(h, inter)))
    weights.append(("model.norm.weight", norm(h)))
    if not case["tie"]:
        weights.append(("lm_head.weight", matrix(vocab, h)))
    return [(name, w.to(STORAGE[case["dtype"]])) for name, w in weights]


def write_model(folder, case, weights):
    os.makedirs(folder, exist_ok=True)
    if case["shards"] == 1:
        write_safetensors(os.path.join(folder, "model.safetensors"), weights, metadata={"format": "pt"})
    else:
        per_shard = math.ceil(len(weights) / case["shards"])
        weight_map, total = {}, 0
        for k in range(case["shards"]):
            shard = weights[k * per_shard:(k + 1) * per_shard]
            file = f"model-{k + 1:05d}-of-{case['shards']:05d}.safetensors"
            write_safetensors(os.path.join(folder, file), shard, metadata={"format": "pt"})
            for name, t in shard:
                weight_map[name] = file
                total += t.numel() * t.element_size()
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
            f.write("\n")
    config = {
        "architectures": [case["architecture"]], "model_type": case["model_type"],
        "hidden_size": case["hidden"], "intermediate_size": case["intermediate"],
        "num_hidden_layers": case["layers"], "num_attention_heads": case["heads"],
        "num_key_value_heads": case["kv_heads"], "head_dim": case["head_dim"], "vocab_size": case["vocab"],
        "hidden_act": "silu", "rms_norm_eps": case["eps"], "rope_theta": case["theta"],
        "rope_scaling": case["rope_scaling"], "max_position_embeddings": case["max_positions"],
        "tie_word_embeddings": case["tie"], "torch_dtype": TORCH_DTYPE_NAME[case["dtype"]],
        "bos_token_id": 1, "eos_token_id": 2,
    }
    if case["model_type"] == "qwen2":
        config.update({"use_sliding_window": False, "sliding_window": None, "max_window_layers": case["layers"]})
    else:
        config.update({"attention_bias": case["qkv_bias"], "mlp_bias": False})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


# --------------------------------------------------------------------------------------------- reference forward

def inverse_frequencies(case):
    """theta^(-2i/d) for i < d/2, then (Llama 3.1) Meta's per-frequency rule: keep short wavelengths, divide long
    ones by `factor`, blend linearly in between. Computed in float64, rounded once to float32."""
    d, theta = case["head_dim"], case["theta"]
    freqs = [theta ** (-(2 * i) / d) for i in range(d // 2)]
    scaling = case["rope_scaling"]
    if scaling is not None:
        assert scaling["rope_type"] == "llama3"
        factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_context = scaling["original_max_position_embeddings"]
        scaled = []
        for f in freqs:
            wavelength = 2 * math.pi / f
            if wavelength < old_context / high:
                scaled.append(f)
            elif wavelength > old_context / low:
                scaled.append(f / factor)
            else:
                smooth = (old_context / wavelength - low) / (high - low)
                scaled.append((1 - smooth) * f / factor + smooth * f)
        freqs = scaled
    return torch.tensor(freqs, dtype=torch.float64).to(torch.float32)


def rms_norm(x, weight, eps):
    return weight * (x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps))


def rotate(x, positions, inv_freq):
    """x is (seq, d) for one head; dimension i rotates with dimension i + d/2 by angle position * inv_freq[i]."""
    half = x.shape[-1] // 2
    angle = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # (seq, d/2)
    c, s = torch.cos(angle), torch.sin(angle)
    first, second = x[:, :half], x[:, half:]
    return torch.cat([first * c - second * s, second * c + first * s], dim=-1)


def reference_logits(case, w, ids, positions):
    """ids and positions are (batch, seq) int64; returns (batch, seq, vocab) float32."""
    d, heads, kv_heads = case["head_dim"], case["heads"], case["kv_heads"]
    group = heads // kv_heads
    inv_freq = inverse_frequencies(case)
    out = []
    for b in range(ids.shape[0]):
        seq = ids.shape[1]
        x = w["model.embed_tokens.weight"][ids[b]]  # (seq, hidden)
        mask = torch.full((seq, seq), float("-inf")).triu(1)  # position t sees 0..t
        for i in range(case["layers"]):
            p = f"model.layers.{i}."

            def proj(name, v):
                y = v @ w[p + name + ".weight"].T
                bias = w.get(p + name + ".bias")
                return y if bias is None else y + bias

            normed = rms_norm(x, w[p + "input_layernorm.weight"], case["eps"])
            q, k, v = proj("self_attn.q_proj", normed), proj("self_attn.k_proj", normed), proj("self_attn.v_proj", normed)
            head_outputs = []
            for hd in range(heads):
                kv = hd // group  # query heads share key/value heads in consecutive groups
                qh = rotate(q[:, hd * d:(hd + 1) * d], positions[b], inv_freq)
                kh = rotate(k[:, kv * d:(kv + 1) * d], positions[b], inv_freq)
                vh = v[:, kv * d:(kv + 1) * d]
                scores = qh @ kh.T / math.sqrt(d) + mask
                head_outputs.append(torch.softmax(scores, dim=-1) @ vh)
            x = x + proj("self_attn.o_proj", torch.cat(head_outputs, dim=-1))
            normed = rms_norm(x, w[p + "post_attention_layernorm.weight"], case["eps"])
            gate, up = proj("mlp.gate_proj", normed), proj("mlp.up_proj", normed)
            x = x + proj("mlp.down_proj", gate * torch.sigmoid(gate) * up)
        x = rms_norm(x, w["model.norm.weight"], case["eps"])
        head = w["model.embed_tokens.weight"] if case["tie"] else w["lm_head.weight"]
        out.append(x @ head.T)
    return torch.stack(out)


def generate_case(folder, name, case):
    weights = make_weights(case)
    write_model(os.path.join(folder, "model"), case, weights)
    decoded = {n: t.to(torch.float32) for n, t in weights}
    g = torch.Generator().manual_seed(case["seed"] + 1000)
    ids = torch.randint(0, case["vocab"], (BATCH, SEQ), generator=g, dtype=torch.int64)
    ids[0, 0], ids[1, -1] = 0, case["vocab"] - 1  # the first and last rows of the embedding
    default_positions = torch.arange(SEQ, dtype=torch.int64).repeat(BATCH, 1)
    expected = [("input_ids", ids), ("logits", reference_logits(case, decoded, ids, default_positions))]
    if case["positions"] is not None:
        positions = torch.tensor(case["positions"], dtype=torch.int64)
        expected += [("position_ids", positions),
                     ("logits_at_positions", reference_logits(case, decoded, ids, positions))]
    prompt = ids[0, :GREEDY_PROMPT]
    expected += [("greedy_prompt", prompt), ("greedy_ids", greedy(case, decoded, prompt, name))]
    write_safetensors(os.path.join(folder, "expected.safetensors"), expected, metadata={"format": "pt"})


def greedy(case, w, prompt, name):
    """Greedy decoding the slow, obvious way: a full forward over prompt + generated each step, argmax of the last row."""
    sequence = prompt.tolist()
    generated = []
    for step in range(GREEDY_NEW):
        ids = torch.tensor([sequence], dtype=torch.int64)
        logits = reference_logits(case, w, ids, torch.arange(len(sequence), dtype=torch.int64)[None, :])[0, -1]
        top2 = torch.topk(logits, 2).values
        margin = (top2[0] - top2[1]).item()
        if margin < GREEDY_MIN_MARGIN:
            raise SystemExit(f"{name}: greedy step {step} wins by only {margin:.2g}; pick another prompt")
        chosen = int(torch.argmax(logits).item())
        generated.append(chosen)
        sequence.append(chosen)
    return torch.tensor(generated, dtype=torch.int64)


def generate(root):
    for name, case in CASES.items():
        generate_case(os.path.join(root, name), name, case)


def check():
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp)
        for name in CASES:
            fresh_model, committed_model = os.path.join(tmp, name, "model"), os.path.join(FIXTURE, name, "model")
            fresh_files = sorted(os.listdir(fresh_model))
            committed_files = sorted(os.listdir(committed_model)) if os.path.isdir(committed_model) else []
            if fresh_files != committed_files:
                problems.append(f"{committed_model}: holds {committed_files}, a fresh generation holds {fresh_files}")
            for file in fresh_files:
                committed = os.path.join(committed_model, file)
                if os.path.exists(committed) and not filecmp.cmp(os.path.join(fresh_model, file), committed, shallow=False):
                    problems.append(f"{committed} differs from a fresh generation")
            committed_expected = os.path.join(FIXTURE, name, "expected.safetensors")
            if not os.path.exists(committed_expected):
                problems.append(f"{committed_expected} is missing")
                continue
            fresh, committed = read_safetensors(os.path.join(tmp, name, "expected.safetensors")), read_safetensors(committed_expected)
            if fresh.keys() != committed.keys():
                problems.append(f"{committed_expected}: tensors {sorted(committed)} vs fresh {sorted(fresh)}")
                continue
            for key in fresh:
                a, b = fresh[key], committed[key]
                if a.shape != b.shape:
                    problems.append(f"{committed_expected}: {key} shape {list(b.shape)} vs fresh {list(a.shape)}")
                elif a.dtype == torch.int64 and not torch.equal(a, b):
                    problems.append(f"{committed_expected}: {key} differs")
                elif a.dtype == torch.float32 and not (a - b).abs().max().item() <= LOGIT_ATOL:
                    problems.append(f"{committed_expected}: {key} max abs difference {(a - b).abs().max().item():.3g} > {LOGIT_ATOL}")
    for p in problems[:20]:
        print("MISMATCH", p)
    print(f"llama fixture check: {'ok' if not problems else str(len(problems)) + ' problems'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    torch.set_num_threads(1)
    if "--check" in sys.argv:
        sys.exit(check())
    generate(FIXTURE)
    print(f"wrote {FIXTURE}")
