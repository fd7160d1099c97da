using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace SafeCoDe.Eval.Runs;

/// <summary>
/// run.json: what a run is. <see cref="OptionsHash"/> covers everything that changes the answers (model fingerprint,
/// benchmark, subset selection, decoding options, judge); it leaves out the shard, the limit, concurrency and output
/// flags, so shards of one evaluation share it and a rerun with other options is refused.
/// </summary>
public sealed record RunManifest
{
    /// <summary>File format version of the run folder.</summary>
    public int Format { get; init; } = 1;
    /// <summary>The model folder as given.</summary>
    public required string Model { get; init; }
    /// <summary>The model's fingerprint (family and a hash of config.json).</summary>
    public required string ModelFingerprint { get; init; }
    /// <summary>Benchmark name (mssbench, mossbench, mm-safetybench, figstep, hades, msts, jsonl).</summary>
    public required string Benchmark { get; init; }
    /// <summary>The --data path as given (not hashed: shards may see the data under other paths).</summary>
    public string? Data { get; init; }
    /// <summary>
    /// The --data path made absolute when the run was created (not hashed): where <c>eval score</c> re-reads the images
    /// a judge sees, through the benchmark's reader.
    /// </summary>
    public string? DataRoot { get; init; }
    /// <summary>Decode mode (safecode, vanilla, vcd), for reports.</summary>
    public required string Mode { get; init; }
    /// <summary>Preset (faithful, paper), for reports.</summary>
    public string? Preset { get; init; }
    /// <summary>
    /// The prompt framing sent, for reports: <c>method</c> (SafeCoDe's first-person prompt) or <c>base</c> (each
    /// benchmark's own protocol). It is also among <see cref="Options"/>, so it is hashed.
    /// </summary>
    public string? Framing { get; init; }
    /// <summary>Every option that changes the answers, by its command-line name, as text.</summary>
    public required SortedDictionary<string, string> Options { get; init; }
    /// <summary>SHA-256 (hex, first 16 bytes) over model fingerprint, benchmark and <see cref="Options"/>.</summary>
    public required string OptionsHash { get; init; }
    /// <summary>The scorer the records were scored with (changed by <c>safecode eval score</c>).</summary>
    public string? Scorer { get; init; }
    /// <summary>The guard format of <see cref="Scorer"/> (<c>--scorer-format</c>, e.g. <c>llamaguard</c>); null for the benchmarks' own rubrics.</summary>
    public string? ScorerFormat { get; init; }
    /// <summary>The RUN folder whose answers these records re-score (<c>safecode eval score RUN --out NEW</c>); null for a generated run.</summary>
    public string? RescoredFrom { get; init; }
    /// <summary>"i/n" for a shard, null for a whole or merged run.</summary>
    public string? Shard { get; init; }
    /// <summary>The RUN folders a merged run came from.</summary>
    public IReadOnlyList<string>? MergedFrom { get; init; }
    /// <summary>Versions of the harness, engine, runtime.</summary>
    public IReadOnlyDictionary<string, string> Versions { get; init; } = new Dictionary<string, string>();
    /// <summary>Device the run started on (not hashed).</summary>
    public string? Device { get; init; }
    /// <summary>When the run folder was created (UTC, ISO 8601).</summary>
    public string? Created { get; init; }

    /// <summary>The hash of a run's identity: model fingerprint, benchmark, options (canonical JSON, sorted keys).</summary>
    public static string Hash(string modelFingerprint, string benchmark, IReadOnlyDictionary<string, string> options)
    {
        var canonical = JsonSerializer.Serialize(new SortedDictionary<string, string>(options.ToDictionary(k => k.Key, v => v.Value), StringComparer.Ordinal)
        {
            ["__model"] = modelFingerprint,
            ["__benchmark"] = benchmark,
        });
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)).AsSpan(0, 16)).ToLowerInvariant();
    }

    /// <summary>
    /// Option keys that run folders written before every key took the options-JSON spelling (underscores) carry, and the
    /// key each now has. Their run.json is left as written; <see cref="IdentityHash"/> reads them under the new key, so
    /// such a run still resumes and merges with a run started today.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> RenamedOptionKeys = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["prompt-style"] = "prompt_style",
        ["judge-format"] = "judge_format",
    };

    /// <summary><see cref="Options"/> with <see cref="RenamedOptionKeys"/> read under their current keys.</summary>
    public SortedDictionary<string, string> CurrentOptions()
    {
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in Options) d[RenamedOptionKeys.TryGetValue(kv.Key, out var now) ? now : kv.Key] = kv.Value;
        return d;
    }

    /// <summary>
    /// What decides whether two run folders are one evaluation (resume, merge): the hash over model fingerprint,
    /// benchmark and <see cref="CurrentOptions"/>. It equals <see cref="OptionsHash"/> for a run written with today's keys.
    /// </summary>
    public string IdentityHash() => Hash(ModelFingerprint, Benchmark, CurrentOptions());

    /// <summary>A model folder's fingerprint: its folder name and a hash of config.json (paths may differ between machines).</summary>
    public static string Fingerprint(string modelDir)
    {
        var config = Path.Combine(modelDir, "config.json");
        var hash = File.Exists(config) ? Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(config)).AsSpan(0, 8)).ToLowerInvariant() : "no-config";
        return $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelDir)))}#{hash}";
    }

    /// <summary>Versions of the harness and engine assemblies and the .NET runtime.</summary>
    public static Dictionary<string, string> CurrentVersions() => new()
    {
        ["safecode_eval"] = typeof(RunManifest).Assembly.GetName().Version?.ToString() ?? "?",
        ["safecode_torch"] = typeof(SafeCoDe.Torch.SafeCoDeEngine).Assembly.GetName().Version?.ToString() ?? "?",
        ["dotnet"] = Environment.Version.ToString(),
        ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?",
    };
}
