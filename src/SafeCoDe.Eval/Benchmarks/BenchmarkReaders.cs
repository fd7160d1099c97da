namespace SafeCoDe.Eval.Benchmarks;

/// <summary>The benchmark readers by command-line name.</summary>
public static class BenchmarkReaders
{
    private static readonly IBenchmarkReader[] All =
    [
        new MssBenchReader(), new MossBenchReader(), new MmSafetyBenchReader(), new FigStepReader(),
        new HadesReader(), new MstsReader(), new JsonlReader(),
    ];

    /// <summary>The names <see cref="Get"/> accepts, in a fixed order.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(r => r.Name).ToArray();

    /// <summary>The reader called <paramref name="name"/> (case-insensitive); throws <see cref="ArgumentException"/> listing the names otherwise.</summary>
    public static IBenchmarkReader Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(r => string.Equals(r.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown benchmark '{name}'; known: {string.Join(", ", Names)}", nameof(name));
    }
}
