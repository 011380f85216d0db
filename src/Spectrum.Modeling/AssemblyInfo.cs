// Assembly-level attributes: lets the test project observe internals (e.g. checkpoint recomputation counts); nothing else.
using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Spectrum.Modeling.Tests")]
