// `calibrate` subcommand: dumps Gram eigenvalues (f32/f32, f32/f64, f64/f64, f64/f32) of test matrices for calibrating the guard.
//   dotnet run --project benchmarks/Spectrum.Benchmarks -c Release -- calibrate gauss:4096x4096 trained:2048x5632:7 ...
// Writes <tmp>/spectrum-calibration/*.f64; benchmarks/calibration/guard.py compares the guard's bound with the real errors.
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Benchmarks;

internal static class GuardCalibration
{
    public static int Run(string[] args)
    {
        var outDir = Path.Combine(Path.GetTempPath(), "spectrum-calibration");  Directory.CreateDirectory(outDir);
        foreach (var a in args.Skip(1))
        {
            var parts = a.Split(':'); var kind = parts[0]; var p = parts[1].Split('x');
            long r = long.Parse(p[0]), c = long.Parse(p[1]); long n = Math.Min(r, c);
            int seed = parts.Length > 2 ? int.Parse(parts[2]) : 1234;
            using var scope = NewDisposeScope();
            torch.manual_seed(seed);
            Tensor w = TestMatrixFamilies.Make(kind, r, c);
            Tensor Gram(Tensor x) => r <= c ? x.matmul(x.mT) : x.mT.matmul(x);
            var g32 = Gram(w.to(ScalarType.Float32));
            var g64 = Gram(w.to(ScalarType.Float64));
            var e32 = linalg.eigvalsh(g32).to(ScalarType.Float64);
            var e3264 = linalg.eigvalsh(g32.to(ScalarType.Float64));
            var e64 = linalg.eigvalsh(g64);
            var e6432 = linalg.eigvalsh(g64.to(ScalarType.Float32)).to(ScalarType.Float64);
            var all = stack(new[] { e32, e3264, e64, e6432 });
            File.WriteAllBytes($"{outDir}/{kind}_{r}x{c}_{seed}.f64", all.contiguous().bytes.ToArray());
            var dG = g32.to(ScalarType.Float64) - g64;
            double frob = dG.norm().item<double>();
            double dmax = (e3264 - e64).abs().max().item<double>();
            var idx = randperm(n).narrow(0, 0, Math.Min(64, n));
            var sub = dG.index_select(0, idx).index_select(1, idx);
            var eye = torch.eye(sub.shape[0], dtype: ScalarType.Float64);
            double diagMs = (sub * eye).pow(2).sum().item<double>() / sub.shape[0];
            double offMs = (sub * (1 - eye)).pow(2).sum().item<double>() / Math.Max(1, sub.shape[0] * (sub.shape[0] - 1));
            double frobEst = Math.Sqrt(n * diagMs + n * (n - 1.0) * offMs);
            double diagFull = dG.diagonal().pow(2).sum().item<double>();
            File.AppendAllText(Path.Combine(outDir, "frob.txt"), $"{kind} {r}x{c} frob={frob:E3} frobEst={frobEst:E3} diagShare={Math.Sqrt(diagFull)/frob:F3} dmax={dmax:E3} ratio_n={dmax/(frob/n):F2} ratio_sqrtn={dmax/(frob/Math.Sqrt(n)):F3}\n");
            Console.WriteLine($"{kind} {r}x{c} done");
        }
        return 0;
    }
}
