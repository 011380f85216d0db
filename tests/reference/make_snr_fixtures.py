#!/usr/bin/python3
# Independent reference for the Spectrum SNR score: writes small test matrices and their expected spectra and scores.
#
# What it is: a plain numpy transcription of the published method (docs: /work/shared/reference/spectrum-method.md),
# written from the method description, not from the C# code, plus torch.linalg.svdvals in float32 (what the reference
# scanner uses) and float64. What it is not: a scanner, or a copy of the reference scanner's code.
#
# Run (Debian 12: python3-torch 1.13 + python3-numpy; use this interpreter explicitly):
#   /usr/bin/python3 tests/reference/make_snr_fixtures.py            # (re)write tests/reference/fixtures/snr/
#   /usr/bin/python3 tests/reference/make_snr_fixtures.py --check    # regenerate into a temp folder and compare
# --check exits 1 and prints the first mismatches when the committed fixtures no longer match what this script
# produces (tolerances below); CI runs it so the fixtures cannot rot.
#
# Format of fixtures/snr/: <name>.f32 = the matrix, float32 little-endian, row-major, no header;
# expected.json = {"format": 1, "generator": ..., "fixtures": [{name, file, rows, cols, description,
#   svdvals_float32: [...], svdvals_float64: [...], from_float32: {q25, q75, sigma, threshold, signal, noise,
#   signal_count, snr, score}, from_float64: {...same}}]}. Non-finite numbers are written as the strings "NaN",
#   "Infinity", "-Infinity" (JSON has no literal for them).
#
# Matrices come from numpy's legacy RandomState (its stream is frozen across numpy versions) and are built in
# float64, then rounded to float32 once, so regeneration is bit-stable; singular values depend on the LAPACK build,
# hence the tolerances.

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures", "snr")

# --check tolerances. Matrices: |a - b| <= 2 ulp of max|W| (regenerated from the same seeds; only BLAS summation order
# in the float64 construction can move a rounding). Singular values: |a - b| <= tol * S[0] (float32 svdvals differ
# between LAPACK builds by a few ulp of S[0]). Scores and intermediates: relative 1e-5 from float32 svdvals, 1e-9 from
# float64 svdvals (a flip across the threshold would show up as a much larger change and fail).
MATRIX_ULPS = 2
SVD_TOL = {"float32": 1e-5, "float64": 1e-10}
SCORE_RTOL = {"float32": 1e-5, "float64": 1e-9}


def quantile_linear(values, q):
    """numpy's default ('linear') quantile of a 1-D array, spelled out: position q·(n−1) between sorted neighbours."""
    a = np.sort(np.asarray(values, dtype=np.float64))
    if a.size == 0:
        return math.nan
    pos = q * (a.size - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, a.size - 1)
    return float(a[lo] + (pos - lo) * (a[hi] - a[lo]))


def published_score(s_desc, rows, cols):
    """The method, step by step, in float64 on the given singular values (descending)."""
    s = np.asarray(s_desc, dtype=np.float64)
    nan = math.nan
    if s.size == 0 or not np.all(np.isfinite(s)):
        return dict(q25=nan, q75=nan, sigma=nan, threshold=nan, signal=nan, noise=nan, signal_count=0, snr=nan, score=nan)
    q25, q75 = quantile_linear(s, 0.25), quantile_linear(s, 0.75)
    assert abs(q25 - float(np.quantile(s, 0.25))) <= 1e-12 * max(1.0, abs(q25)), "own quantile disagrees with numpy"
    assert abs(q75 - float(np.quantile(s, 0.75))) <= 1e-12 * max(1.0, abs(q75)), "own quantile disagrees with numpy"
    sigma = (q75 - q25) / 1.349
    beta = min(rows, cols) / max(rows, cols)
    threshold = sigma * (1.0 + math.sqrt(beta))
    above = s > threshold
    signal = float(s[above].sum())
    noise = float(s[~above].sum()) if (~above).any() else 1.0  # empty noise set: the reference uses 1
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = float(np.float64(signal) / np.float64(noise))
        score = float(np.float64(snr) / np.float64(s[0]))
    return dict(q25=q25, q75=q75, sigma=sigma, threshold=threshold, signal=signal, noise=noise,
                signal_count=int(above.sum()), snr=snr, score=score)


def orthonormal(rng, rows, cols):
    """rows×cols with orthonormal columns (rows ≥ cols) or rows (rows < cols), from QR of a Gaussian matrix."""
    if rows >= cols:
        q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
        return q * np.sign(np.diag(r))
    return orthonormal(rng, cols, rows).T


def with_spectrum(rng, rows, cols, spectrum):
    """U diag(spectrum) Vᵀ with random orthonormal U, V: a matrix whose singular values are exactly `spectrum`."""
    n = min(rows, cols)
    u = orthonormal(rng, rows, n)
    v = orthonormal(rng, cols, n)
    return (u * np.asarray(spectrum, dtype=np.float64)) @ v.T


def build_matrices():
    """(name, description, float64 matrix) for every fixture; each has its own seed so one can change alone."""
    out = []

    def add(name, seed, description, make):
        out.append((name, description, make(np.random.RandomState(seed))))

    add("gauss_64x192", 1, "Gaussian noise, wide", lambda r: r.standard_normal((64, 192)))
    add("gauss_192x64", 2, "Gaussian noise, tall", lambda r: r.standard_normal((192, 64)))
    add("gauss_128x128", 3, "Gaussian noise, square", lambda r: r.standard_normal((128, 128)))

    def planted(r, rows, cols, k, strength):
        noise = r.standard_normal((rows, cols))
        edge = math.sqrt(rows) + math.sqrt(cols)
        signal = with_spectrum(r, rows, cols, np.r_[strength * edge * np.linspace(1.0, 0.5, k), np.zeros(min(rows, cols) - k)])
        return signal + noise

    add("planted4_128x128", 4, "rank-4 signal at 20x..10x the noise edge + Gaussian noise", lambda r: planted(r, 128, 128, 4, 20))
    add("planted3_96x40", 5, "rank-3 signal at 20x..10x the noise edge + Gaussian noise, tall", lambda r: planted(r, 96, 40, 3, 20))
    add("heavy_96x160", 6, "power-law spectrum j^-1.2 (heavy-tailed), exact singular values",
        lambda r: with_spectrum(r, 96, 160, np.arange(1, 97, dtype=np.float64) ** -1.2))
    add("tentries_80x120", 7, "Student-t(3) entries (heavy-tailed entries)", lambda r: r.standard_t(3, size=(80, 120)))
    add("planted_small_64x192", 8, "rank-2 planted + noise, scaled by 1e-3",
        lambda r: 1e-3 * planted(r, 64, 192, 2, 20))
    add("planted_large_64x192", 8, "same matrix as planted_small_64x192 scaled by 1e3 instead", lambda r: 1e3 * planted(r, 64, 192, 2, 20))
    add("illcond_128x96", 9, "rank-8 (spectrum 1..0.3) + noise at 1e-3: trained-like, condition ~1e4",
        lambda r: with_spectrum(r, 128, 96, np.r_[np.linspace(1.0, 0.3, 8), np.zeros(88)]) + 1e-3 / math.sqrt(128) * r.standard_normal((128, 96)))
    add("thin_8x300", 10, "very thin: 8 singular values", lambda r: r.standard_normal((8, 300)))
    add("row_1x50", 11, "one row: a single singular value, score 1", lambda r: r.standard_normal((1, 50)))
    add("orthogonal_64x64", 12, "2.5 x orthogonal: all singular values equal, noise set empty (noise = 1)",
        lambda r: 2.5 * orthonormal(r, 64, 64))
    add("flat_40x200", 13, "orthonormal rows with spectrum uniform in [1, 1.2]: noise set empty",
        lambda r: with_spectrum(r, 40, 200, 1.0 + 0.2 * r.rand(40)))
    add("zeros_16x24", 14, "all zeros: score undefined (NaN)", lambda r: np.zeros((16, 24)))
    return out


def singular_values(w32, dtype):
    t = torch.from_numpy(w32.astype(np.float32)).to(dtype)
    return torch.linalg.svdvals(t).to(torch.float64).numpy()


def encode(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, dict):
        return {k: encode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [encode(v) for v in x]
    return x


def decode(x):
    if isinstance(x, str) and x in ("NaN", "Infinity", "-Infinity"):
        return float(x.replace("Infinity", "inf"))
    if isinstance(x, dict):
        return {k: decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [decode(v) for v in x]
    return x


def generate(folder):
    torch.set_num_threads(1)  # fixed thread count: the LAPACK path and its rounding stay the same run to run
    os.makedirs(folder, exist_ok=True)
    entries = []
    for name, description, w in build_matrices():
        w32 = np.ascontiguousarray(w, dtype="<f4")
        file = name + ".f32"
        w32.tofile(os.path.join(folder, file))
        rows, cols = w32.shape
        s32 = singular_values(w32, torch.float32)
        s64 = singular_values(w32, torch.float64)
        entries.append(dict(
            name=name, file=file, rows=rows, cols=cols, description=description,
            svdvals_float32=[float(v) for v in s32], svdvals_float64=[float(v) for v in s64],
            from_float32=published_score(s32, rows, cols), from_float64=published_score(s64, rows, cols)))
    doc = dict(format=1, generator="tests/reference/make_snr_fixtures.py",
               torch=torch.__version__, numpy=np.__version__, fixtures=entries)
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(encode(doc), f, indent=1)
        f.write("\n")


def close(a, b, rtol):
    if isinstance(a, float) and (math.isnan(a) or math.isnan(b)):
        return math.isnan(a) and math.isnan(b)
    if isinstance(a, float) and (math.isinf(a) or math.isinf(b)):
        return a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b)) or a == b


def check(committed, fresh):
    """Compares two fixture folders; returns a list of human-readable mismatches."""
    problems = []
    with open(os.path.join(committed, "expected.json")) as f:
        old = decode(json.load(f))
    with open(os.path.join(fresh, "expected.json")) as f:
        new = decode(json.load(f))
    old_by_name = {e["name"]: e for e in old["fixtures"]}
    for e in new["fixtures"]:
        name = e["name"]
        o = old_by_name.pop(name, None)
        if o is None:
            problems.append(f"{name}: missing from the committed expected.json (run without --check to regenerate)")
            continue
        for key in ("file", "rows", "cols"):
            if o[key] != e[key]:
                problems.append(f"{name}: {key} {o[key]!r} committed, {e[key]!r} now")
        a = np.fromfile(os.path.join(committed, e["file"]), dtype="<f4")
        b = np.fromfile(os.path.join(fresh, e["file"]), dtype="<f4")
        scale = float(np.abs(b).max()) if b.size else 0.0
        if a.shape != b.shape:
            problems.append(f"{name}: matrix has {a.size} values committed, {b.size} now")
        elif np.any(np.abs(a - b) > MATRIX_ULPS * np.spacing(np.float32(scale))):
            i = int(np.argmax(np.abs(a - b)))
            problems.append(f"{name}: matrix value {i} is {a[i]!r} committed, {b[i]!r} now")
        for precision in ("float32", "float64"):
            sa, sb = np.array(o["svdvals_" + precision]), np.array(e["svdvals_" + precision])
            top = float(sb[0]) if sb.size else 0.0
            bad = np.nonzero(np.abs(sa - sb) > SVD_TOL[precision] * top)[0] if sa.shape == sb.shape else [0]
            for i in list(bad)[:3]:
                problems.append(f"{name}: svdvals_{precision}[{i}] {sa[i] if i < sa.size else None} committed, "
                                f"{sb[i]} now (tolerance {SVD_TOL[precision]} * S[0])")
            for key, value in e["from_" + precision].items():
                if not close(float(o["from_" + precision][key]), float(value), SCORE_RTOL[precision]):
                    problems.append(f"{name}: from_{precision}.{key} {o['from_' + precision][key]} committed, {value} now "
                                    f"(relative tolerance {SCORE_RTOL[precision]})")
    for name in old_by_name:
        problems.append(f"{name}: committed but no longer generated")
    return problems


def main():
    parser = argparse.ArgumentParser(description="Write or check the SNR reference fixtures.")
    parser.add_argument("--check", action="store_true", help="regenerate into a temp folder and compare with the committed fixtures")
    parser.add_argument("--out", default=FIXTURES, help="folder to write (default: %(default)s)")
    args = parser.parse_args()
    if not args.check:
        generate(args.out)
        print(f"wrote {args.out}")
        return 0
    if not os.path.exists(os.path.join(FIXTURES, "expected.json")):
        print(f"no committed fixtures in {FIXTURES}; run without --check first", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp)
        problems = check(FIXTURES, tmp)
    if problems:
        print(f"{len(problems)} mismatches between committed and regenerated fixtures; first ones:", file=sys.stderr)
        for p in problems[:20]:
            print("  " + p, file=sys.stderr)
        return 1
    print("fixtures match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
