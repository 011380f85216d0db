#!/usr/bin/env python3
"""Independent reference for sampling's next-token distribution: transformers' generate with do_sample, written out.

transformers applies its logits warpers in this order (generation_config temperature, top_k, top_p):
  temperature  scores / T
  top-k        every score below the k-th largest becomes -inf (scores equal to it stay); k = 0 or k >= vocab: no-op
  top-p        sort ascending, cumulative softmax; scores whose cumulative probability is <= 1 - p become -inf, the
               largest always stays; p = 1: no-op
then draws from softmax(scores). Written here in plain float64 Python (sorted lists, explicit sums), not with the
tensor operations our C# uses, so a shared mistake is unlikely. Cases avoid values where float32 and float64 could
disagree about a cut (a cumulative probability within 1e-4 of 1 - p), and tied scores on both sides of a top-p cut
(transformers sorts with an unstable sort, so which of them goes is not defined).

Writes tests/reference/fixtures/sampling/warpers.json: per case the logits (float32-representable), the settings and
the probabilities. The C# test compares within 1e-6.

Run:   /usr/bin/python3 tests/reference/make_sampling_fixture.py           (rewrite the fixture)
       /usr/bin/python3 tests/reference/make_sampling_fixture.py --check   (recompute and compare with the file)
"""
import math, os, random, struct

from fixture_io import write_or_check

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "sampling", "warpers.json")
VOCAB = 40


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def softmax(scores):
    top = max(s for s in scores if s != -math.inf)
    weights = [0.0 if s == -math.inf else math.exp(s - top) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def warp(logits, temperature, top_k, top_p):
    scores = [x / temperature for x in logits]
    if 0 < top_k < len(scores):
        kth = sorted(scores, reverse=True)[top_k - 1]
        scores = [s if s >= kth else -math.inf for s in scores]
    if top_p < 1:
        probabilities = softmax(scores)
        ascending = sorted(range(len(scores)), key=lambda i: scores[i])
        cumulative, drop = 0.0, set()
        for rank, i in enumerate(ascending):
            cumulative += probabilities[i]
            if abs(cumulative - (1 - top_p)) < 1e-4:
                raise SystemExit(f"cumulative probability {cumulative} too close to the cut {1 - top_p}; change the case")
            if cumulative <= 1 - top_p and rank < len(scores) - 1:
                drop.add(i)
        scores = [-math.inf if i in drop else s for i, s in enumerate(scores)]
    return softmax(scores)


def cases():
    rng = random.Random(20261128)
    spread = [f32(rng.gauss(0, 3)) for _ in range(VOCAB)]
    peaked = [f32(rng.gauss(0, 1)) for _ in range(VOCAB)]
    peaked[7] = f32(9.5)
    # Equal values straddling the k-th place: top-k keeps all of them.
    tied = [f32(v) for v in [2.0, 1.0, 1.0, 1.0, 0.5] + [f32(-0.25 * i) for i in range(VOCAB - 5)]]
    settings = [
        ("plain", spread, 1.0, 0, 1.0),
        ("cooler", spread, 0.7, 0, 1.0),
        ("hotter top-k 5", spread, 1.3, 5, 1.0),
        ("top-p 0.9", spread, 1.0, 0, 0.9),
        ("all three", spread, 0.6, 10, 0.8),
        ("top-k 1 is greedy", spread, 1.0, 1, 1.0),
        ("tiny top-p keeps the best", spread, 1.0, 0, 0.01),
        ("top-k beyond vocab", spread, 2.0, 100, 0.95),
        ("peaked top-p 0.5", peaked, 1.0, 0, 0.5),
        ("ties at the k-th", tied, 1.0, 2, 1.0),
        # The cut falls past all three tied tokens: which of them an unstable sort puts first cannot matter.
        ("ties and top-p", tied, 0.9, 3, 0.4),
    ]
    return [dict(name=name, logits=logits, temperature=t, top_k=k, top_p=p, probabilities=warp(logits, t, k, p))
            for name, logits, t, k, p in settings]


if __name__ == "__main__":
    write_or_check(FIXTURE, {"vocab": VOCAB, "cases": cases()}, "sampling")
