using System.Text.Json.Serialization;

namespace SafeCoDe.Torch.Decoding.Methods.Baselines;

/// <summary>The retokenization defense's options.</summary>
[JsonConverter(typeof(DecodingOptionsJson))]
public sealed record RetokenizationOptions : DecodingOptions
{
    /// <inheritdoc/>
    public override string Method => RetokenizationMethod.MethodName;
    /// <summary>The chance each merge is skipped (BPE-dropout).</summary>
    public double Dropout { get; init; } = 0.2;
    /// <summary>The merge table: <c>builtin</c> (SafeDecoding's subword-nmt table) or a file path in subword-nmt format.</summary>
    public string MergeTable { get; init; } = "builtin";
    /// <summary>Keep placeholders and option blocks out of the re-split.</summary>
    public bool ProtectStructure { get; init; } = true;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException("bpe dropout must be in [0, 1)");
        if (MergeTable != "builtin" && !File.Exists(MergeTable)) throw new ArgumentException($"--merge-table {MergeTable}: file not found");
    }
}

/// <summary>
/// Retokenization (BPE-dropout, as SafeDecoding implements it): every word of the question is split with a BPE merge
/// table where each merge is skipped with probability p (0.2), and the pieces are joined with spaces (sub-pieces end up
/// two spaces apart); the model answers the re-split question. Seeded by the request's seed, so a run reproduces
/// (the reference's draws are unseeded numpy ones: the same split only in distribution). No extra call.
/// </summary>
public sealed class RetokenizationMethod : DefenseMethod<RetokenizationOptions>
{
    /// <summary>The method's name.</summary>
    public const string MethodName = "retokenization";

    /// <inheritdoc/>
    public override string Name => MethodName;
    /// <inheritdoc/>
    public override string Summary => "baseline: the question re-split with BPE-dropout";
    /// <inheritdoc/>
    public override IReadOnlyList<MethodOption> Options { get; } =
    [
        .. SharedOptions.All,
        Opt("bpe-dropout", "Chance that each BPE merge is skipped [default: 0.2]", "P", OptionCodecs.Double, o => o.Dropout, (o, v) => o with { Dropout = v }),
        Opt("merge-table", "The BPE merge table: builtin (SafeDecoding's, 32,000 merges) or a subword-nmt file [default: builtin]", "FILE", OptionCodecs.Text,
            o => o.MergeTable, (o, v) => o with { MergeTable = v }),
        ProtectOption(o => o.ProtectStructure, (o, v) => o with { ProtectStructure = v }),
    ];

    /// <inheritdoc/>
    protected override RetokenizationOptions DefaultsFor(string? preset) => new();
    /// <inheritdoc/>
    protected override IReadOnlyList<IRequestStep> Before(RetokenizationOptions o) => [new RetokenizeStep()];

    private sealed class RetokenizeStep : IRequestStep
    {
        public string Name => "retokenize";

        public Task ExecuteAsync(RequestContext request, CancellationToken cancel)
        {
            var o = (RetokenizationOptions)request.Options;
            var table = BpeDropout.Table(o.MergeTable);
            var rng = new Random(unchecked((int)(o.Seed ?? 0) ^ (int)((o.Seed ?? 0) >> 32)));
            var question = request.Question;
            string Split(string text) => BpeDropout.SplitText(table, text, o.Dropout, rng);
            var rewritten = o.ProtectStructure ? StructureGuard.RewriteAround(question, Split) : Split(question);
            request.ReplaceQuestion(rewritten);
            request.RecordIo(question, rewritten);
            return Task.CompletedTask;
        }
    }
}
