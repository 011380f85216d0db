#!/usr/bin/env python3
"""Independent check of a model folder our trainer exported: read it the way Hugging Face loaders do, recompute its
logits with the plain-PyTorch reference forward of make_llama_fixture.py, compare with the logits our C# model gave.

Checks, each reported by name on failure:
  files     config.json; model.safetensors or model.safetensors.index.json whose weight_map covers every shard
  metadata  every safetensors header carries {"format": "pt"} (transformers < 4.48.2 fails on files without it)
  config    architectures/model_type are a Llama-family pair; torch_dtype names the stored dtype
  tensors   exactly the names the config implies (tied embeddings: no lm_head.weight), with the right shapes
  logits    reference forward on the decoded weights vs expected["logits"], max abs difference <= --atol
  generation  generation_config.json, where present, is a JSON object whose bos/eos ids (an id or a list) lie in the
            vocabulary
  transformers (only where `import transformers` works, e.g. on a GPU machine): AutoModelForCausalLM loads the folder
            without missing/unexpected keys and gives the same logits

Run:   /usr/bin/python3 tests/reference/check_exported_model.py MODEL_FOLDER EXPECTED.safetensors [--atol 1e-4]
       EXPECTED holds input_ids (I64, batch x seq) and logits (F32, batch x seq x vocab).
Exit 0 when every check passes, 1 with one line per problem otherwise. Needs Debian's python3-torch.
"""
import json, os, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_llama_fixture import reference_logits  # noqa: E402
from safetensors_io import read_header, read_safetensors  # noqa: E402

ARCHITECTURES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"}
STORED = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def weight_files(folder, problems):
    single, index = os.path.join(folder, "model.safetensors"), os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(single) == os.path.exists(index):
        problems.append(f"files: expected exactly one of model.safetensors and model.safetensors.index.json in {folder}")
        return []
    if os.path.exists(single):
        return [single]
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    shards = sorted(set(weight_map.values()))
    missing = [s for s in shards if not os.path.exists(os.path.join(folder, s))]
    if missing:
        problems.append(f"files: the index names shards that do not exist: {missing}")
    return [os.path.join(folder, s) for s in shards if s not in missing]


def expected_names(config):
    names = ["model.embed_tokens.weight"]
    bias = config.get("attention_bias", False) or config["model_type"] == "qwen2"
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj"):
            names.append(p + f"self_attn.{proj}.weight")
            if bias:
                names.append(p + f"self_attn.{proj}.bias")
        names += [p + "self_attn.o_proj.weight", p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight",
                  p + "mlp.down_proj.weight", p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
    names.append("model.norm.weight")
    if not config.get("tie_word_embeddings", False):
        names.append("lm_head.weight")
    return names


def case_of(config):
    """The reference forward's description of this architecture."""
    heads = config["num_attention_heads"]
    return dict(
        hidden=config["hidden_size"], layers=config["num_hidden_layers"], heads=heads,
        kv_heads=config.get("num_key_value_heads", heads),
        head_dim=config.get("head_dim") or config["hidden_size"] // heads, tie=config.get("tie_word_embeddings", False),
        eps=config["rms_norm_eps"], theta=config.get("rope_theta", 10000.0), rope_scaling=config.get("rope_scaling"))


def check(folder, expected_path, atol):
    problems = []
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        return [f"files: no config.json in {folder}"]
    with open(config_path) as f:
        config = json.load(f)
    if ARCHITECTURES.get(config.get("model_type")) not in config.get("architectures", []):
        problems.append(f"config: model_type {config.get('model_type')!r} with architectures {config.get('architectures')}")
    files = weight_files(folder, problems)
    weights = {}
    for path in files:
        with open(path, "rb") as f:
            metadata = read_header(f).get("__metadata__") or {}
        if metadata.get("format") != "pt":
            problems.append(f"metadata: {os.path.basename(path)} has __metadata__ {metadata}, expected format 'pt'")
        weights.update(read_safetensors(path))
    stored = STORED.get(config.get("torch_dtype"))
    wrong_dtype = [n for n, t in weights.items() if t.dtype != stored]
    if stored is None or wrong_dtype:
        problems.append(f"config: torch_dtype {config.get('torch_dtype')!r} but stored {sorted({str(t.dtype) for t in weights.values()})}")
    names = expected_names(config)
    if sorted(weights) != sorted(names):
        problems.append(f"tensors: missing {sorted(set(names) - set(weights))[:5]}, unexpected {sorted(set(weights) - set(names))[:5]}")
        return problems

    expected = read_safetensors(expected_path)
    ids, logits = expected["input_ids"], expected["logits"]
    decoded = {n: t.to(torch.float32) for n, t in weights.items()}
    positions = torch.arange(ids.shape[1], dtype=torch.int64).repeat(ids.shape[0], 1)
    ours = reference_logits(case_of(config), decoded, ids, positions)
    difference = (ours - logits).abs().max().item()
    if not difference <= atol:
        problems.append(f"logits: reference forward differs from the exported model's logits by {difference:.3g} > {atol}")

    generation_path = os.path.join(folder, "generation_config.json")
    if os.path.exists(generation_path):
        with open(generation_path) as f:
            generation = json.load(f)
        if not isinstance(generation, dict):
            problems.append(f"generation: {generation_path} is not a JSON object")
        else:
            for key in ("bos_token_id", "eos_token_id"):
                value = generation.get(key)
                ids = value if isinstance(value, list) else [] if value is None else [value]
                if not all(isinstance(i, int) and 0 <= i < config["vocab_size"] for i in ids):
                    problems.append(f"generation: {key} {value!r} is not an id (or list of ids) below vocab_size {config['vocab_size']}")

    try:
        import transformers  # noqa: F401  (absent on the development machine; present on the GPU machines)
    except ImportError:
        print("transformers: not installed here, skipped")
        return problems
    from transformers import AutoModelForCausalLM
    model, info = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32, output_loading_info=True)
    if info["missing_keys"] or info["unexpected_keys"]:
        problems.append(f"transformers: missing {info['missing_keys'][:5]}, unexpected {info['unexpected_keys'][:5]}")
    with torch.no_grad():
        theirs = model(input_ids=ids).logits
    difference = (theirs - logits).abs().max().item()
    if not difference <= atol:
        problems.append(f"transformers: logits differ from ours by {difference:.3g} > {atol}")
    if os.path.exists(generation_path):
        from transformers import GenerationConfig
        GenerationConfig.from_pretrained(folder)
    print(f"transformers {transformers.__version__}: loaded, max abs logit difference {difference:.3g}")
    return problems


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--atol"):
        print(__doc__)
        return 2
    atol = float(argv[3]) if len(argv) == 4 else 1e-4
    problems = check(argv[0], argv[1], atol)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{argv[0]}: files, metadata, config, tensors and logits agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
