// Which floating-point type the Gram matrix and its eigenvalues are computed in.
namespace Spectrum.Analysis;

/// <summary>Working precision of the Gram-matrix eigenvalue path of <see cref="SingularValueEngine"/>.</summary>
public enum GramPrecision
{
    /// <summary>About twice as fast; loses the small singular values of square-ish matrices (squared condition number).</summary>
    Float32,

    /// <summary>Accurate to well below the float32 svdvals reference for every shape.</summary>
    Float64,
}
