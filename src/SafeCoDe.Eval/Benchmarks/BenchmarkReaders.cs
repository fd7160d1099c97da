namespace SafeCoDe.Eval.Benchmarks;

/// <summary>The registered benchmarks' readers by command-line name (see <see cref="EvalBenchmarks"/>).</summary>
public static class BenchmarkReaders
{
    /// <summary>The names <see cref="Get"/> accepts, in a fixed order.</summary>
    public static IReadOnlyList<string> Names => EvalBenchmarks.Registered;

    /// <summary>The reader called <paramref name="name"/> (case-insensitive); throws <see cref="ArgumentException"/> listing the names otherwise.</summary>
    public static IBenchmarkReader Get(string name) => EvalBenchmarks.Get(name).Reader;
}
