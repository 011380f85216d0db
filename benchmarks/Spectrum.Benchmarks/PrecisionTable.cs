// `precision` subcommand: times float32/float64 Gram + eigvalsh against svdvals and measures each mode's score error.
//   dotnet run --project benchmarks/Spectrum.Benchmarks -c Release -- precision 4096x14336 2048x5632 gauss planted trained [reps=2] [svdbig]
// Produced the table beside SingularValueEngine.InitialPrecisionFor.
using System.Diagnostics;
using Spectrum.Analysis;
using TorchSharp;
using static TorchSharp.torch;

namespace Spectrum.Benchmarks;

internal static class PrecisionTable
{
    public static int Run(string[] args)
    {
        var shapes = new List<(long r, long c)>();
        var kinds = new List<string>();
        bool svdBig = false; int reps = 1;
        foreach (var a in args.Skip(1))
        {
            if (a.Contains('x')) { var p = a.Split('x'); shapes.Add((long.Parse(p[0]), long.Parse(p[1]))); }
            else if (a == "svdbig") svdBig = true;
            else if (a.StartsWith("reps=")) reps = int.Parse(a[5..]);
            else kinds.Add(a);
        }
        Console.WriteLine($"threads={torch.get_num_threads()}");
        var e32 = new SingularValueEngine(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float32));
        var e64 = new SingularValueEngine(new SingularValueEngineOptions(ForcePrecision: GramPrecision.Float64));
        var auto = new SingularValueEngine();
        { using var s = NewDisposeScope(); var w = randn(300, 500); e32.Compute(w); e64.Compute(w); linalg.svdvals(w); }
        double[] PureF32(Tensor w, long r, long c)
        {
            using var s = NewDisposeScope();
            var g = r <= c ? w.matmul(w.mT) : w.mT.matmul(w);
            var l = linalg.eigvalsh(g).to(ScalarType.Float64).data<double>().ToArray();
            return l.Select(x => Math.Sqrt(Math.Max(x, 0))).OrderByDescending(x => x).ToArray();
        }
        (T, double) Time<T>(Func<T> f)
        {
            T res = default!; double best = double.MaxValue;
            for (int i = 0; i < reps; i++) { var sw = Stopwatch.StartNew(); res = f(); best = Math.Min(best, sw.Elapsed.TotalSeconds); }
            return (res, best);
        }
        Console.WriteLine("| shape | matrix | pure f32 s | f32 Gram+f64 eig s | f64 s | svdvals s | err pure f32 | err Float32 | err Float64 | ref | guard est Float32 | auto | score | signal/n |");
        foreach (var (r, c) in shapes)
        foreach (var kind in kinds)
        {
            using var scope = NewDisposeScope();
            torch.manual_seed(1234);
            long n = Math.Min(r, c), k = Math.Max(r, c);
            Tensor w = TestMatrixFamilies.Make(kind, r, c);
            var (p32, tp) = Time(() => PureF32(w, r, c));
            var (r32, t32) = Time(() => e32.Compute(w));
            var (r64, t64) = Time(() => e64.Compute(w));
            double tsvd = double.NaN; double[] reference = r64.Descending; string refName = "f64 Gram";
            if (svdBig || n * n * k < 2e11)
            {
                var sw = Stopwatch.StartNew(); var sv = linalg.svdvals(w); tsvd = sw.Elapsed.TotalSeconds;
                reference = sv.to(ScalarType.Float64).data<double>().ToArray(); refName = "svdvals f32";
            }
            var (ra, ta) = Time(() => auto.Compute(w));
            var sRef = SpectrumScore.FromSingularValues(reference, r, c);
            double Rel(double[] s) => Math.Abs(SpectrumScore.FromSingularValues(s, r, c).Score - sRef.Score) / Math.Abs(sRef.Score);
            Console.WriteLine($"| {r}×{c} | {kind} | {tp:F2} | {t32:F2} | {t64:F2} | {tsvd:F2} | {Rel(p32):E1} | {Rel(r32.Descending):E1} | {Rel(r64.Descending):E1} | {refName} | {r32.EstimatedScoreRelativeError:E1} | {ra.Precision}{(ra.Escalated ? "↑" : "")} {ta:F2}s | {sRef.Score:G4} | {sRef.SignalCount}/{sRef.Count} |");
        }
        return 0;
    }
}
