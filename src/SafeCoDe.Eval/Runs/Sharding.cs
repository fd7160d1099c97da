using System.Globalization;
using System.Text;

namespace SafeCoDe.Eval.Runs;

/// <summary>
/// One shard of an evaluation: sample ids are split by a stable hash (FNV-1a 64 of the UTF-8 id, mod
/// <see cref="Count"/>), so the split never depends on order, machine or .NET version.
/// </summary>
public sealed record ShardSpec(int Index, int Count)
{
    /// <summary>True when the sample id belongs to this shard.</summary>
    public bool Contains(string id) => Count <= 1 || Of(id, Count) == Index;

    /// <summary>The shard (0-based) an id falls into among <paramref name="count"/>.</summary>
    public static int Of(string id, int count)
    {
        ulong h = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(id)) { h ^= b; h *= 1099511628211UL; }
        return (int)(h % (ulong)count);
    }

    /// <summary>"i/n".</summary>
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>
    /// Parses "i/n" (0 ≤ i &lt; n) or "auto": Slurm arrays (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of
    /// SLURM_ARRAY_TASK_COUNT), else Kubernetes indexed Jobs (JOB_COMPLETION_INDEX of <paramref name="count"/>,
    /// from --shard-count or SAFECODE_SHARD_COUNT).
    /// </summary>
    /// <exception cref="FormatException">The text or the environment does not describe a shard.</exception>
    public static ShardSpec Parse(string text, int? count = null, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        if (text.Equals("auto", StringComparison.OrdinalIgnoreCase))
        {
            if (env("SLURM_ARRAY_TASK_ID") is { Length: > 0 } task)
            {
                int id = Int(task, "SLURM_ARRAY_TASK_ID");
                int min = env("SLURM_ARRAY_TASK_MIN") is { Length: > 0 } m ? Int(m, "SLURM_ARRAY_TASK_MIN") : 0;
                var n = env("SLURM_ARRAY_TASK_COUNT") is { Length: > 0 } c ? Int(c, "SLURM_ARRAY_TASK_COUNT")
                    : count ?? throw new FormatException("--shard auto under Slurm needs SLURM_ARRAY_TASK_COUNT (Slurm ≥ 18) or --shard-count");
                return Checked(id - min, n, "Slurm array task");
            }
            if (env("JOB_COMPLETION_INDEX") is { Length: > 0 } index)
            {
                var n = count ?? (env("SAFECODE_SHARD_COUNT") is { Length: > 0 } c ? Int(c, "SAFECODE_SHARD_COUNT")
                    : throw new FormatException("--shard auto in a Kubernetes indexed Job needs --shard-count (the Job's completions) or SAFECODE_SHARD_COUNT"));
                return Checked(Int(index, "JOB_COMPLETION_INDEX"), n, "Kubernetes completion index");
            }
            throw new FormatException("--shard auto: neither a Slurm array (SLURM_ARRAY_TASK_ID) nor a Kubernetes indexed Job (JOB_COMPLETION_INDEX) is visible in the environment");
        }
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var i) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var k))
            throw new FormatException($"--shard '{text}': expected i/n (e.g. 0/4) or auto");
        return Checked(i, k, "--shard");
    }

    private static ShardSpec Checked(int i, int n, string what) =>
        n >= 1 && i >= 0 && i < n ? new ShardSpec(i, n) : throw new FormatException($"{what}: shard {i} of {n} is out of range (0 ≤ i < n)");

    private static int Int(string s, string name) =>
        int.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new FormatException($"{name}='{s}' is not an integer");
}
