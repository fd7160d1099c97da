using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>AdaShield's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record AdaShieldOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => AdaShieldMethod.MethodName;
    /// <summary>The defense prompt (null: AdaShield-S's static prompt).</summary>
    public string? Prompt { get; init; }
    /// <summary>AdaShield-A: a JSONL file of the prompt retrieved per question by the user's own CLIP run (null: AdaShield-S).</summary>
    public string? Pool { get; init; }
    /// <summary>AdaShield-A applies the retrieved prompt only above this similarity.</summary>
    public double Beta { get; init; } = 0.7;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Pool is not null && !File.Exists(Pool)) throw new ArgumentException($"--adashield-pool {Pool}: file not found");
        if (!double.IsFinite(Beta)) throw new ArgumentException("--adashield-beta must be a finite number");
    }
}

/// <summary>
/// AdaShield (Wang et al.). AdaShield-S, the default: the static defense prompt between two copies of the question
/// (question + prompt + question, as its code composes it; the paper says "prepends"). AdaShield-A needs a pool of
/// prompts retrieved by CLIP ViT-B/32 similarity of (image, question); its trained pool is not published and this
/// engine has no CLIP encoder, so AdaShield-A runs only from a user-supplied pool file that already holds, per question,
/// the prompt the user's own CLIP retrieval chose and its similarity (JSONL: "question", "prompt", "similarity"); the
/// prompt is used when the similarity is above β (0.7), else the question goes unchanged. No extra call.
/// </summary>
public sealed class AdaShieldMethod : DefenseMethod<AdaShieldOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "adashield";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: AdaShield's defense prompt around the question (static; adaptive from a pool file)";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("adashield-prompt", "A file whose text replaces AdaShield-S's static defense prompt", "FILE", OptionCodecs.FileText, o => o.Prompt, (o, v) => o with { Prompt = v }),
        Opt("adashield-pool", "AdaShield-A: a JSONL file of the retrieved prompt per question (question, prompt, similarity) [default: none, AdaShield-S]", "FILE",
            OptionCodecs.OptionalText, o => o.Pool, (o, v) => o with { Pool = v }),
        Opt("adashield-beta", "AdaShield-A: use the retrieved prompt only above this similarity [default: 0.7]", "B", OptionCodecs.Double, o => o.Beta, (o, v) => o with { Beta = v }),
    ];

    /// <inheritdoc/>
    protected override AdaShieldOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(AdaShieldOptions o) => [new ShieldStep()];

    private sealed record PoolEntry(string Prompt, double Similarity);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyDictionary<string, PoolEntry>> Pools = new();

    /// <summary>The pool file's entries by question; a question listed twice with different prompts is an error naming both lines.</summary>
    private static IReadOnlyDictionary<string, PoolEntry> ReadPool(string path) => Pools.GetOrAdd(Path.GetFullPath(path), p =>
    {
        var pool = new Dictionary<string, (PoolEntry Entry, int Line)>();
        int n = 0;
        // bounded and regular files only, as every other file a user names (InputLimits)
        foreach (var line in Runtime.BoundedFile.ReadAllText(p, Runtime.InputLimits.Current.MaxDataFileBytes, "--adashield-pool").Split('\n'))
        {
            n++;
            if (line.Trim().Length == 0) continue;
            string q;
            PoolEntry entry;
            try
            {
                var e = JsonDocument.Parse(line).RootElement;
                (q, entry) = (e.GetProperty("question").GetString()!, new PoolEntry(e.GetProperty("prompt").GetString()!, e.GetProperty("similarity").GetDouble()));
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw new InvalidDataException($"{p}:{n}: expected {{\"question\", \"prompt\", \"similarity\"}} ({ex.Message})");
            }
            if (pool.TryGetValue(q, out var had) && had.Entry != entry) throw new InvalidDataException($"{p}:{n}: the question of line {had.Line} again, with another prompt or similarity");
            pool[q] = (entry, n);
        }
        return pool.ToDictionary(kv => kv.Key, kv => kv.Value.Entry);
    });

    private sealed class ShieldStep : IRequestStep
    {
        public string Name => "adashield";

        public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (AdaShieldOptions)request.Options;
            var q = request.Question;
            string? prompt = o.Prompt ?? DefenseTexts.Get("adashield-static");
            string note = "static";
            if (o.Pool is { } pool)
            {
                var entry = ReadPool(pool).GetValueOrDefault(q) ?? throw new InvalidOperationException($"--adashield-pool {pool}: no entry for the question '{q}'");
                prompt = entry.Similarity > o.Beta ? entry.Prompt : null;
                note = $"pool similarity {entry.Similarity.ToString("G4", CultureInfo.InvariantCulture)} {(prompt is null ? "≤" : ">")} β {o.Beta.ToString("G4", CultureInfo.InvariantCulture)}";
            }
            if (prompt is not null) request.ReplaceQuestion(q + prompt + q);
            request.RecordIo(q, $"{note}: {request.Prompt}");
            return Task.CompletedTask;
        }
    }
}
