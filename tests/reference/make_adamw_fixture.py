#!/usr/bin/env python3
"""Independent reference for our AdamW: PyTorch's torch.optim.AdamW (single-tensor, foreach=False) on closed-form data.

Writes tests/reference/fixtures/adamw/adamw_reference.json. Inputs are closed-form, computed in float64 and rounded to
float32, so the C# test builds the same numbers without a shared random generator:
  weight[i]          = float32(cos(0.11 * i) * 0.8)                       (i = flat index)
  grad at step t[i]  = float32(sin(0.37 * i + 1.3 * t) * (0.5 + 0.1 * t)), t = 1..steps; every 13th element is 0
Two parameters: "matrix" (301 x 229, decays; large enough for the kernel's multi-threaded path, with an odd tail) and
"vector" (37, no decay, as biases and norm gains). After the last step the file holds, per parameter, the float32 bits
of weight, exp_avg and exp_avg_sq at every 97th flat index and the last one, and their float64 sums over all elements.

Run:   /usr/bin/python3 tests/reference/make_adamw_fixture.py           (rewrite the fixture)
       /usr/bin/python3 tests/reference/make_adamw_fixture.py --check   (regenerate in memory and compare with the file)
Needs Debian's python3-torch (1.13).
"""
import math, os, struct

import torch

from fixture_io import write_or_check

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "adamw", "adamw_reference.json")
OPTIONS = {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}
STEPS = 5
SHAPES = {"matrix": [301, 229], "vector": [37]}
STRIDE = 97


def bits(values):
    return ["%08x" % struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in values]


def initial(n):
    return torch.tensor([math.cos(0.11 * i) * 0.8 for i in range(n)], dtype=torch.float64).float()


def gradient(n, t):
    values = [0.0 if i % 13 == 0 else math.sin(0.37 * i + 1.3 * t) * (0.5 + 0.1 * t) for i in range(n)]
    return torch.tensor(values, dtype=torch.float64).float()


def compute():
    params = {}
    for name, shape in SHAPES.items():
        n = math.prod(shape)
        params[name] = torch.nn.Parameter(initial(n).view(shape).clone())
    groups = [
        {"params": [params["matrix"]], "weight_decay": OPTIONS["weight_decay"]},
        {"params": [params["vector"]], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=OPTIONS["lr"], betas=OPTIONS["betas"], eps=OPTIONS["eps"], foreach=False)
    for t in range(1, STEPS + 1):
        for name, p in params.items():
            p.grad = gradient(p.numel(), t).view(p.shape)
        optimizer.step()
    result = {"options": {"lr": OPTIONS["lr"], "beta1": OPTIONS["betas"][0], "beta2": OPTIONS["betas"][1],
                          "eps": OPTIONS["eps"], "weight_decay": OPTIONS["weight_decay"]},
              "steps": STEPS, "stride": STRIDE, "torch": torch.__version__.split("+")[0], "parameters": {}}
    for name, p in params.items():
        state = optimizer.state[p]
        flat = {"weight": p.detach().reshape(-1), "exp_avg": state["exp_avg"].reshape(-1),
                "exp_avg_sq": state["exp_avg_sq"].reshape(-1)}
        n = p.numel()
        indices = list(range(0, n, STRIDE)) + ([n - 1] if (n - 1) % STRIDE else [])
        entry = {"shape": SHAPES[name]}
        for key, values in flat.items():
            entry[key] = bits(values[indices].tolist())
            entry[key + "_sum"] = float(values.double().sum())
        result["parameters"][name] = entry
    return result


def main():
    write_or_check(FIXTURE, compute(), "adamw", ignore=("torch",))


if __name__ == "__main__":
    main()
