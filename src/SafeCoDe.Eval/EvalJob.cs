using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Safety.Guards;

namespace SafeCoDe.Eval;

/// <summary>Everything <c>safecode eval run</c> needs.</summary>
public sealed record EvalJobSettings
{
    /// <summary>Benchmark name (a <see cref="BenchmarkReaders"/> name).</summary>
    public required string Benchmark { get; init; }
    /// <summary>The data folder or file.</summary>
    public required string Data { get; init; }
    /// <summary>The model folder.</summary>
    public required string Model { get; init; }
    /// <summary>The RUN folder.</summary>
    public required string Out { get; init; }
    /// <summary>The decoding method and its options.</summary>
    public required DecodingOptions Decode { get; init; }
    /// <summary>The scene judge spec (for a method that uses a judge).</summary>
    public string Judge { get; init; } = "self";
    /// <summary>A scene-judge cache file.</summary>
    public string? JudgeCache { get; init; }
    /// <summary>Device, dtype and prompt style of the model (and of a local:DIR scorer).</summary>
    public EngineOptions Engine { get; init; } = new();
    /// <summary>Builds the scene judge for the loaded engine (a method that uses one); null: <see cref="SceneJudges.Create"/> from <see cref="Judge"/>.</summary>
    public Func<SafeCoDeEngine, ISafetyJudge?>? JudgeFactory { get; init; }
    /// <summary>A system turn for every prompt (overrides a jsonl record's own).</summary>
    public string? System { get; init; }
    /// <summary>Method (SafeCoDe) framing of the prompts; null: the method's own choice (<see cref="IDecodingMethod.FramesAsMethod"/>).</summary>
    public bool? MethodFraming { get; init; }
    /// <summary>Whether prompts get SafeCoDe's framing (<see cref="MethodFraming"/> resolved); otherwise the benchmark's own protocol.</summary>
    public bool UsesMethodFraming => MethodFraming ?? DecodingMethods.Of(Decode).FramesAsMethod;
    /// <summary>Every option that changes the answers, by its command-line name (hashed into run.json).</summary>
    public required SortedDictionary<string, string> HashedOptions { get; init; }
    /// <summary>Subset selection for the reader.</summary>
    public ReaderSelection Selection { get; init; } = ReaderSelection.All;
    /// <summary>The first N records only.</summary>
    public int? Limit { get; init; }
    /// <summary>This process's shard.</summary>
    public ShardSpec? Shard { get; init; }
    /// <summary>Scorer spec (keyword, openai[:MODEL], local:DIR) or null for none.</summary>
    public string? Scorer { get; init; }
    /// <summary>Scorer settings (template, cache, phrases…).</summary>
    public ScorerSettings ScorerSettings { get; init; } = new();
    /// <summary>Samples generated at once; they decode as rows of one batch (see <see cref="EvalRunner.Concurrency"/>).</summary>
    public int Concurrency { get; init; } = 1;
}

/// <summary>Runs one evaluation: opens the RUN, loads the model and the scorer, generates and scores every pending sample.</summary>
public static class EvalJob
{
    /// <summary>The run manifest of a job (no files touched).</summary>
    public static RunManifest Manifest(EvalJobSettings s, string? scorerName)
    {
        var fingerprint = RunManifest.Fingerprint(s.Model);
        return new RunManifest
        {
            Model = s.Model, ModelFingerprint = fingerprint, Benchmark = s.Benchmark, Data = s.Data, DataRoot = Path.GetFullPath(s.Data),
            Mode = s.Decode.Method, Preset = DecodingMethods.Of(s.Decode).PresetOf(s.Decode),
            Framing = s.UsesMethodFraming ? "method" : "base",
            Options = s.HashedOptions, OptionsHash = RunManifest.Hash(fingerprint, s.Benchmark, s.HashedOptions),
            Scorer = scorerName, ScorerFormat = s.Scorer is not null && s.ScorerSettings.Format != JudgeFormats.Default ? s.ScorerSettings.Format.ToLowerInvariant() : null, Shard = s.Shard?.ToString(), Versions = RunManifest.CurrentVersions(),
            Device = s.Engine.Device.ToString().ToLowerInvariant(), Created = DateTime.UtcNow.ToString("o"),
        };
    }

    /// <summary>
    /// Runs the job; <paramref name="log"/> gets one-line notes (model loading, resuming), <paramref name="warn"/> what
    /// opening the RUN folder repaired (meant to be shown even when notes are not).
    /// </summary>
    public static async Task<RunSummary> RunAsync(EvalJobSettings s, IProgress<RunProgress>? progress = null, Action<string>? log = null, CancellationToken cancel = default,
        Action<string>? warn = null)
    {
        var reader = BenchmarkReaders.Get(s.Benchmark);
        var benchmark = reader.Name;
        s = s with { Benchmark = benchmark };
        _ = reader.Read(s.Data, s.Selection); // a wrong --data fails here, before anything is written or loaded
        // an --ids list naming ids the copy lacks fails here too: one pass that builds nothing, before anything is written
        if (s.Selection.Ids is not null) foreach (var _ in reader.Read(s.Data, s.Selection with { Include = _ => false })) { }
        var scorerName = s.Scorer is null ? null : Scorers.CanonicalName(s.Scorer, benchmark, s.ScorerSettings.Format);
        // the scorer is built before anything is written: a scorer that cannot be used (no endpoint configured) fails first
        IScorer? scorer = s.Scorer is null ? null : Scorers.Create(s.Scorer, s.ScorerSettings with
        {
            Benchmark = benchmark,
            CacheFile = s.ScorerSettings.CacheFile ?? Path.Combine(s.Out, "judge-cache.jsonl"),
            LocalEngine = s.ScorerSettings.LocalEngine ?? new EngineOptions { Device = s.Engine.Device },
        });
        RunStore? store = null;
        try
        {
            store = RunStore.OpenOrCreate(s.Out, Manifest(s, scorerName));
            foreach (var repair in store.Repairs) (warn ?? log)?.Invoke($"repaired {s.Out}: {repair}");
            if (store.RecordIds.Count + store.ProblemIds.Count > 0) log?.Invoke($"resuming {s.Out}: {store.RecordIds.Count} record(s), {store.ProblemIds.Count} problem(s) already there");
            using var engine = SafeCoDeEngine.Load(s.Model, s.Engine, log is null ? null : new Progress<string>(log));
            var judge = !DecodingMethods.Of(s.Decode).Needs(s.Decode).Judge ? null
                : s.JudgeFactory is { } make ? make(engine) : SceneJudges.Create(s.Judge, engine, s.Engine.Device, s.JudgeCache);
            var generator = new EngineGenerator(engine, s.Decode, judge, s.System) { MethodFraming = s.UsesMethodFraming };
            var runner = new EvalRunner(store, generator, scorer) { Concurrency = s.Concurrency };
            var selection = s.Selection;
            return await runner.RunAsync(include => reader.Read(s.Data, selection with { Include = include }), new RunSelection(s.Limit, s.Shard), progress, cancel).ConfigureAwait(false);
        }
        finally
        {
            store?.Dispose();
            (scorer as IDisposable)?.Dispose();
        }
    }
}

/// <summary>The options of a run that change its answers, flattened for run.json and its hash.</summary>
public static class RunOptions
{
    /// <summary>The prefix of the decoding fields' keys.</summary>
    public const string DecodingPrefix = "decoding.";

    /// <summary>
    /// Every decoding field (as <c>decoding.&lt;field&gt;</c>, from the options' JSON form), plus the named extras
    /// (judge, prompt style, dtype, system turn, subset selection…). Null extras are left out.
    /// </summary>
    public static SortedDictionary<string, string> Flatten(DecodingOptions decoding, IEnumerable<KeyValuePair<string, string?>> extras)
    {
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var node = DecodingMethods.ToJson(decoding);
        foreach (var kv in node) d[DecodingPrefix + kv.Key] = kv.Value?.ToJsonString() ?? "null";
        foreach (var kv in extras) if (kv.Value is not null) d[kv.Key] = kv.Value;
        return d;
    }
}
