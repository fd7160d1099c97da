using SafeCoDe.Torch;
using SafeCoDe.Torch.Safety;
using SafeCoDe.Torch.Safety.Guards;

namespace SafeCoDe.Eval.Scoring;

/// <summary>How a scorer spec is turned into a scorer.</summary>
public sealed record ScorerSettings
{
    /// <summary>The benchmark (picks the default judge model and the scorer kinds it accepts); null: none checked, the generic default model.</summary>
    public string? Benchmark { get; init; }
    /// <summary>A judge template file replacing the built-in texts (<c>{question}</c>, <c>{response}</c>).</summary>
    public string? TemplateFile { get; init; }
    /// <summary>The judge cache file (JSONL); null: none.</summary>
    public string? CacheFile { get; init; }
    /// <summary>A refusal phrase list for the keyword scorer (one per line).</summary>
    public string? RefusalPhrasesFile { get; init; }
    /// <summary>Endpoint base URL (default: SAFECODE_EVAL_BASE_URL, then the judge's SAFECODE_JUDGE_BASE_URL / OPENAI_BASE_URL).</summary>
    public string? BaseUrl { get; init; }
    /// <summary>Endpoint key (default: SAFECODE_EVAL_API_KEY, then SAFECODE_JUDGE_API_KEY / OPENAI_API_KEY).</summary>
    public string? ApiKey { get; init; }
    /// <summary>Per-attempt time limit of endpoint calls.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Retries of endpoint calls.</summary>
    public int MaxRetries { get; init; } = 4;
    /// <summary>First retry back-off.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Engine options for a local:DIR scorer.</summary>
    public EngineOptions? LocalEngine { get; init; }
    /// <summary>Overrides every rubric's output-token limit.</summary>
    public int? MaxTokens { get; init; }
    /// <summary>Grader runs per answer, for benchmarks whose descriptor grades several runs (<see cref="Benchmarks.IBenchmark.GraderRuns"/>); 1 otherwise.</summary>
    public int Runs { get; init; } = 1;
    /// <summary>
    /// The judge format of an <c>openai</c> scorer (<see cref="JudgeFormats"/>): <c>safecode</c> (the default) asks each
    /// benchmark's own rubric, a guard format asks the guard model with its own prompt (<see cref="GuardScorer"/>).
    /// </summary>
    public string Format { get; init; } = JudgeFormats.Default;
    /// <summary>What a guard's unreadable reply becomes (unsafe by default: it counts as harmful, and as unparsed).</summary>
    public UnknownVerdictPolicy UnknownVerdict { get; init; } = UnknownVerdictPolicy.Unsafe;
}

/// <summary>Builds scorers from command-line specs: keyword, rules, openai[:MODEL], local:DIR.</summary>
public static class Scorers
{
    /// <summary>The judge model of a spec without a model when no benchmark says otherwise.</summary>
    public const string GenericJudgeModel = "gpt-4o";

    /// <summary>The judge model the paper's code uses for a benchmark (its descriptor's; SAFECODE_EVAL_MODEL overrides).</summary>
    public static string DefaultJudgeModel(string? benchmark) =>
        Environment.GetEnvironmentVariable("SAFECODE_EVAL_MODEL") is { Length: > 0 } m ? m
            : benchmark is null ? GenericJudgeModel : Benchmarks.EvalBenchmarks.Get(benchmark).DefaultJudgeModel;

    /// <summary>The spec's canonical name (what run.json records), without building anything.</summary>
    /// <exception cref="ArgumentException">The spec is malformed, or the benchmark cannot be scored with its kind.</exception>
    public static string CanonicalName(string spec, string? benchmark, string format = JudgeFormats.Default)
    {
        var (kind, arg) = Split(spec);
        CheckKind(spec, kind, benchmark);
        var guard = GuardFormat(spec, kind, format, benchmark);
        return kind switch
        {
            "keyword" => "keyword",
            "rules" => "rules",
            "openai" when guard is not null => GuardScorer.NameOf("openai:" + (arg.Length > 0 ? arg : DefaultJudgeModel(benchmark)), guard.Name),
            "openai" => "openai:" + (arg.Length > 0 ? arg : DefaultJudgeModel(benchmark)),
            "local" when arg.Length > 0 => "local:" + Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(arg))),
            _ => throw new ArgumentException($"--scorer '{spec}': expected {Kinds}"),
        };
    }

    private const string Kinds = "keyword, rules, openai[:MODEL] or local:DIR";

    /// <summary>A scorer kind the benchmark's descriptor does not list is refused before anything runs.</summary>
    private static void CheckKind(string spec, string kind, string? benchmark)
    {
        if (benchmark is null) return;
        var b = Benchmarks.EvalBenchmarks.Get(benchmark);
        if (kind is "keyword" or "rules" or "openai" or "local" && !b.ScorerKinds.Contains(kind))
            throw new ArgumentException($"--scorer '{spec}': {b.Name} is scored with {string.Join(", ", b.ScorerKinds)}, not {kind}");
    }

    /// <summary>
    /// The guard format a spec is scored with, or null for <c>safecode</c> (each benchmark's own rubric). A guard format
    /// needs an <c>openai</c> scorer, must serve the response-scoring role, and the benchmark must take a guard's
    /// harmful/harmless verdict (its descriptor lists the scorer kind <c>guard</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Any of these does not hold; the message names the option.</exception>
    public static JudgeFormat? GuardFormat(string spec, string kind, string format, string? benchmark)
    {
        var f = JudgeFormats.Get(format, "--scorer-format");
        if (f.Name == JudgeFormats.Default) return null;
        f.CheckRole(JudgeRole.ResponseScore, "--scorer-format");
        if (kind != "openai")
            throw new ArgumentException($"--scorer-format {f.Name} asks a guard model on an OpenAI-compatible endpoint: use --scorer openai:MODEL, not '{spec}'");
        if (benchmark is not null && Benchmarks.EvalBenchmarks.Get(benchmark) is { } b && !b.ScorerKinds.Contains("guard"))
            throw new ArgumentException($"--scorer-format {f.Name}: {b.Name} is not scored by a harmful/harmless verdict (its scorers: {string.Join(", ", b.ScorerKinds)}); use --scorer-format {JudgeFormats.Default}");
        return f;
    }

    /// <summary>
    /// Checks a scorer spec with its format before anything runs (<see cref="GuardFormat"/>); a guard format without a
    /// scorer is refused, since it would have no effect.
    /// </summary>
    /// <exception cref="ArgumentException">The combination cannot score.</exception>
    public static void CheckFormat(string? spec, string format, string? benchmark)
    {
        if (spec is null)
        {
            if (JudgeFormats.Get(format, "--scorer-format").Name != JudgeFormats.Default)
                throw new ArgumentException($"--scorer-format {format} has no effect without --scorer openai:MODEL");
            return;
        }
        var (kind, _) = Split(spec);
        CheckKind(spec, kind, benchmark);
        GuardFormat(spec, kind, format, benchmark);
    }

    /// <summary>Builds the scorer of a spec.</summary>
    public static IScorer Create(string spec, ScorerSettings s)
    {
        var (kind, arg) = Split(spec);
        CheckKind(spec, kind, s.Benchmark);
        if (s.Runs != 1)
        {
            if (s.Runs < 1) throw new ArgumentException($"--scorer-runs {s.Runs}: at least 1");
            var b = s.Benchmark is null ? null : Benchmarks.EvalBenchmarks.Get(s.Benchmark);
            if (b is null || b.GraderRuns is null)
                throw new ArgumentException($"--scorer-runs {s.Runs}: {(b is null ? "no benchmark named" : b.Name)} grades each answer once; several grader runs are for {string.Join(", ", Benchmarks.EvalBenchmarks.All.Where(x => x.GraderRuns is not null).Select(x => x.Name))}");
            if (kind is "rules" or "keyword") throw new ArgumentException($"--scorer-runs {s.Runs}: the {kind} scorer has no grader to run again");
        }
        var guard = GuardFormat(spec, kind, s.Format, s.Benchmark);
        if (guard is not null && s.TemplateFile is not null)
            throw new ArgumentException($"--scorer-template has no effect with --scorer-format {guard.Name}: the guard is asked with its own prompt (the server applies the model's chat template)");
        if (guard is not null && s.RefusalPhrasesFile is not null)
            throw new ArgumentException($"--scorer-refusal-phrases has no effect with --scorer-format {guard.Name}: only the keyword scorer reads refusal phrases");
        if (guard is null && s.UnknownVerdict != UnknownVerdictPolicy.Unsafe)
            throw new ArgumentException("--scorer-unknown-verdict has no effect without a guard --scorer-format: each benchmark's rubric reads its judge's replies by its own rule");
        string? template = s.TemplateFile is null ? null : File.ReadAllText(s.TemplateFile);
        if (template is not null && !template.Contains("{response}"))
            throw new ArgumentException($"--scorer-template {s.TemplateFile}: the template has no {{response}} placeholder");
        switch (kind)
        {
            case "rules":
                return new RuleScorer();
            case "keyword":
                return s.RefusalPhrasesFile is null ? new KeywordScorer() : KeywordScorer.FromFile(s.RefusalPhrasesFile);
            case "openai":
            {
                var model = arg.Length > 0 ? arg : DefaultJudgeModel(s.Benchmark);
                var endpoint = new EndpointJudgeOptions
                {
                    Model = model,
                    BaseUrl = s.BaseUrl ?? Env("SAFECODE_EVAL_BASE_URL"),
                    ApiKey = s.ApiKey ?? Env("SAFECODE_EVAL_API_KEY"),
                    Timeout = s.Timeout,
                };
                if (endpoint.ResolvedApiKey is null && endpoint.ResolvedBaseUrl is null)
                    throw new JudgeException("the openai scorer needs an API key (SAFECODE_EVAL_API_KEY, else SAFECODE_JUDGE_API_KEY or OPENAI_API_KEY) " +
                        "or the base URL of a local OpenAI-compatible server (SAFECODE_EVAL_BASE_URL, else SAFECODE_JUDGE_BASE_URL or OPENAI_BASE_URL)");
                if (guard is not null)
                    return new GuardScorer(new EndpointJudge(endpoint with { MaxRetries = s.MaxRetries, InitialBackoff = s.InitialBackoff }), guard, s.UnknownVerdict,
                        s.CacheFile is null ? null : new JudgeCache(s.CacheFile)) { MaxTokens = s.MaxTokens };
                var client = EndpointJudge.CreateClient(endpoint);
                return new ChatClientScorer(client, model, s.CacheFile is null ? null : new JudgeCache(s.CacheFile), ownsClient: true)
                {
                    Template = template, Timeout = s.Timeout, MaxRetries = s.MaxRetries, InitialBackoff = s.InitialBackoff, MaxTokens = s.MaxTokens,
                    Runs = s.Runs,
                };
            }
            case "local" when arg.Length > 0:
                var local = LocalScorer.Load(arg, s.LocalEngine, s.CacheFile is null ? null : new JudgeCache(s.CacheFile));
                local.Template = template;
                local.MaxTokens = s.MaxTokens;
                local.Runs = s.Runs;
                return local;
            default:
                throw new ArgumentException($"--scorer '{spec}': expected {Kinds}");
        }
    }

    private static (string kind, string arg) Split(string spec)
    {
        int colon = spec.IndexOf(':');
        return colon < 0 ? (spec.Trim().ToLowerInvariant(), "") : (spec[..colon].Trim().ToLowerInvariant(), spec[(colon + 1)..]);
    }

    private static string? Env(string n) => Environment.GetEnvironmentVariable(n) is { Length: > 0 } v ? v : null;
}
