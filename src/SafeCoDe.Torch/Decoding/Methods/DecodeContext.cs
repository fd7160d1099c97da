using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Safety;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// What a method's plan (<see cref="IDecodingMethod.Plan"/>) gets for one request: the options, the verdict, the
/// length budget, the model's vocabulary facts (its codec, end-of-sequence and banned ids), and a place to keep the
/// tensors its rules hold (freed when the decode ends).
/// </summary>
public sealed class DecodeContext : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private readonly Func<IReadOnlyList<string>, RefusalTokens> _refusal;

    /// <summary>A context; <paramref name="refusal"/> returns the refusal token space of a phrase list (the engine keeps the default one).</summary>
    public DecodeContext(DecodingOptions options, string family, long vocabSize, Device device, ITokenCodec codec, IReadOnlySet<long> eos,
        IReadOnlyList<long> banned, Verdict verdict, int promptLength, Func<IReadOnlyList<string>, RefusalTokens> refusal)
    {
        Options = options; Family = family; VocabSize = vocabSize; Device = device; Codec = codec; Eos = eos; Verdict = verdict; PromptLength = promptLength;
        _refusal = refusal;
        Banned = banned.Where(id => id >= 0 && id < vocabSize).Distinct().ToArray();
        BannedIndex = Own(LogitsOps.Index(Banned, device));
        Budget = options.Budget(family, verdict, promptLength);
    }

    /// <summary>The request's options (validated, its seed fixed).</summary>
    public DecodingOptions Options { get; }
    /// <summary>The checkpoint's model_type (for a method's per-family rules; see <see cref="Checkpoints.ModelFamilies"/>).</summary>
    public string Family { get; }
    /// <summary>Width of the logits.</summary>
    public long VocabSize { get; }
    /// <summary>Where the logits live.</summary>
    public Device Device { get; }
    /// <summary>Token ids ↔ text.</summary>
    public ITokenCodec Codec { get; }
    /// <summary>Ids that end an answer.</summary>
    public IReadOnlySet<long> Eos { get; }
    /// <summary>Ids never to pick (image placeholders), inside the vocabulary.</summary>
    public IReadOnlyList<long> Banned { get; }
    /// <summary>The banned ids as an index on <see cref="Device"/> (null when none).</summary>
    public Tensor? BannedIndex { get; }
    /// <summary>The verdict decided before decoding (safe when the method has none).</summary>
    public Verdict Verdict { get; }
    /// <summary>Prompt tokens.</summary>
    public int PromptLength { get; }
    /// <summary>New tokens after the guided span (<see cref="DecodingOptions.Budget"/>).</summary>
    public int Budget { get; }
    /// <summary>All tokens at most, guided ones included (<see cref="DecodingOptions.MaxTotalTokens"/>; int.MaxValue: none).</summary>
    public int Cap => Options.MaxTotalTokens ?? int.MaxValue;

    /// <summary>The refusal token space of <paramref name="phrases"/> under this model's tokenizer.</summary>
    public RefusalTokens Refusal(IReadOnlyList<string> phrases) => _refusal(phrases);

    /// <summary>The placeholder ban every phase uses.</summary>
    public BanTokens Ban() => new(BannedIndex, Banned);

    /// <summary>Keeps <paramref name="resource"/> until the decode ends (index tensors, scale vectors); returns it.</summary>
    public T Own<T>(T resource) where T : IDisposable?
    {
        if (resource is not null) _owned.Add(resource);
        return resource;
    }

    /// <summary>Frees what the rules held.</summary>
    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }
}
