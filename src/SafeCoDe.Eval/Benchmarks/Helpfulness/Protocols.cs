namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>The prompt protocols a helpfulness reader builds (<c>--prompts</c>): the benchmark's own evaluation code, or VLMEvalKit's.</summary>
internal static class Protocols
{
    public static readonly IReadOnlyList<string> All = [MmmuItem.Official, MmmuItem.VlmEvalKit];

    /// <summary>The protocol named (ignoring case), <c>official</c> when none is; an unknown name is a layout error listing both.</summary>
    public static string Check(string? name, string benchmark) =>
        name is null ? MmmuItem.Official
        : All.FirstOrDefault(p => string.Equals(p, name.Trim(), StringComparison.OrdinalIgnoreCase))
          ?? throw new BenchmarkLayoutException($"--prompts {name}: {benchmark} builds its prompts as {string.Join(" or ", All)}");
}
