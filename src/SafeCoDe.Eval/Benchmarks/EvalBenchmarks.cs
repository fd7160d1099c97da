namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// The benchmarks this harness knows, by name: the one table of <see cref="IBenchmark"/> descriptors. Adding a
/// benchmark = its reader and descriptor under <c>Benchmarks/</c> + one line in <see cref="BuiltIn"/> (or a call to
/// <see cref="Register"/> at run time, e.g. from a test or another assembly).
/// </summary>
public static class EvalBenchmarks
{
    private static readonly IBenchmark[] BuiltIn =
    [
        new MssBench(), new MossBench(), new MmSafetyBench(), new FigStep(), new Hades(), new Msts(), new JsonlPrompts(),
        new Helpfulness.Mmmu(), new Helpfulness.MathVista(), new Helpfulness.MmVet(), new Helpfulness.MiaBench(),
    ];

    private static readonly Dictionary<string, IBenchmark> Table = BuiltIn.ToDictionary(b => b.Name, StringComparer.OrdinalIgnoreCase);
    private static readonly object Order = new();
    private static volatile IBenchmark[] _registered = [.. BuiltIn];

    /// <summary>Every registered benchmark's name: the built-in ones, then those added with <see cref="Register"/>.</summary>
    public static IReadOnlyList<string> Registered => _registered.Select(b => b.Name).ToArray();

    /// <summary>Every registered descriptor, in <see cref="Registered"/> order.</summary>
    public static IReadOnlyList<IBenchmark> All => _registered;

    /// <summary>Adds (or replaces) a benchmark at run time.</summary>
    public static void Register(IBenchmark benchmark)
    {
        ArgumentNullException.ThrowIfNull(benchmark);
        lock (Order)
        {
            Table[benchmark.Name] = benchmark;
            var list = _registered.ToList();
            int at = list.FindIndex(b => string.Equals(b.Name, benchmark.Name, StringComparison.OrdinalIgnoreCase));
            if (at >= 0) list[at] = benchmark; else list.Add(benchmark);
            _registered = [.. list];
        }
    }

    /// <summary>The benchmark called <paramref name="name"/> (case-insensitive), or null.</summary>
    public static IBenchmark? TryGet(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (Order) return Table.TryGetValue(name.Trim(), out var b) ? b : null;
    }

    /// <summary>The benchmark called <paramref name="name"/> (case-insensitive); throws <see cref="ArgumentException"/> listing the names otherwise.</summary>
    public static IBenchmark Get(string name) => TryGet(name)
        ?? throw new ArgumentException($"unknown benchmark '{name}'; known: {string.Join(", ", Registered)}", nameof(name));
}
