using System.Text;

namespace SafeCoDe.Torch.Processing.Tokenizers;

/// <summary>
/// <see cref="ITokenizer"/> over a SentencePiece <c>tokenizer.model</c> (LLaVA-Vicuna, InstructBLIP-Vicuna, IDEFICS),
/// with the semantics of transformers' LlamaTokenizer (legacy=True, the default of these checkpoints): the text is split
/// on special/added tokens first (so "&lt;image&gt;" or "&lt;s&gt;" in the input is one id), each remaining segment is
/// encoded by sentencepiece (with its dummy-prefix "▁"), and BOS (add_bos_token, default true) / EOS (add_eos_token,
/// default false) are added only with addSpecialTokens.
/// Why our own code: Microsoft.ML.Tokenizers 2.0.1 (SentencePieceTokenizer.Create) differs from the sentencepiece
/// library on our test corpus — 8 of 2,258 strings for a Llama-style BPE model with byte fallback, 1,797 for a BPE model
/// with the default nmt_nfkc normaliser, 282 and 204 for unigram models — while <see cref="SentencePieceModel"/>
/// matches sentencepiece on all of them (tests/.../Tokenizers/SentencePieceParityTests).
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer
{
    private readonly AddedVocabulary _added;
    private readonly bool _addBos, _addEos;
    private readonly int _vocabSize;

    /// <summary>The parsed tokenizer.model.</summary>
    public SentencePieceModel Model { get; }
    /// <inheritdoc/>
    public string Description { get; }
    /// <inheritdoc/>
    public int VocabSize => _vocabSize;
    /// <inheritdoc/>
    public AddedToken? Bos { get; }
    /// <inheritdoc/>
    public AddedToken? Eos { get; }
    /// <inheritdoc/>
    public AddedToken? Pad { get; }
    /// <inheritdoc/>
    public AddedToken? Unk { get; }
    /// <inheritdoc/>
    public IReadOnlyList<AddedToken> AddedTokens => _added.Tokens;

    /// <summary>Wraps <paramref name="model"/>; special-token names and flags come from <paramref name="config"/>, else from the model's unk/bos/eos/pad ids.</summary>
    public SentencePieceTokenizer(SentencePieceModel model, TokenizerConfig? config = null, string description = "tokenizer.model")
    {
        config ??= TokenizerConfig.Empty;
        Model = model;
        var added = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        AddedToken? Special(string? content, int fallbackId)
        {
            if (content is null && fallbackId >= 0) content = model.Pieces[fallbackId].Piece;
            if (content is null) return null;
            var id = config.AddedTokens.FirstOrDefault(t => t.Content == content)?.Id ?? model.PieceToId(content);
            if (id is null) return null;
            var tok = new AddedToken(content, id.Value, true);
            added[content] = tok;
            return tok;
        }
        Unk = Special(config.UnkToken, model.UnkId);
        Bos = Special(config.BosToken, model.BosId);
        Eos = Special(config.EosToken, model.EosId);
        Pad = Special(config.PadToken, model.PadId);
        foreach (var t in config.AddedTokens) added.TryAdd(t.Content, t);
        _added = new AddedVocabulary(added.Values.Select(t => t with { Normalized = false }));
        _addBos = config.AddBosToken ?? true;
        _addEos = config.AddEosToken ?? false;
        _vocabSize = Math.Max(model.Pieces.Count, added.Values.Select(t => t.Id + 1).DefaultIfEmpty(0).Max());
        Description = $"{description} (SentencePiece {(model.IsBpe ? "BPE" : "unigram")}{(model.ByteFallback ? ", byte fallback" : "")}, " +
                      $"normalizer {(model.NormalizerName.Length > 0 ? model.NormalizerName : "none")}, {VocabSize} ids)";
    }

    /// <inheritdoc/>
    public int? TokenToId(string token) => _added.ByContent.TryGetValue(token, out var a) ? a.Id : Model.PieceToId(token);

    /// <inheritdoc/>
    public string? IdToToken(int id)
        => _added.ById.TryGetValue(id, out var a) ? a.Content : id >= 0 && id < Model.Pieces.Count ? Model.Pieces[id].Piece : null;

    /// <inheritdoc/>
    public bool IsSpecial(int id)
        => _added.ById.TryGetValue(id, out var a) ? a.Special : id >= 0 && id < Model.Pieces.Count && Model.Pieces[id].Type == SentencePieceType.Control;

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens) => Encode(text, addSpecialTokens, []);

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens, IReadOnlyList<Range> plainText)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addSpecialTokens && _addBos && Bos is not null) ids.Add(Bos.Id);
        foreach (var (seg, tok, _, _) in _added.SplitAt(text, normalized: false, startsAtZero: true, PlainSpans.Of(text.Length, plainText)))
            if (tok is not null) ids.Add(tok.Id);
            else ids.AddRange(Model.Encode(seg));
        if (addSpecialTokens && _addEos && Eos is not null) ids.Add(Eos.Id);
        return ids.ToArray();
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        var sb = new StringBuilder();
        var run = new List<int>();
        void FlushRun()
        {
            if (run.Count == 0) return;
            sb.Append(Model.Decode(run, stripLeadingSpace: sb.Length == 0));
            run.Clear();
        }
        foreach (var id in ids)
        {
            if (_added.ById.TryGetValue(id, out var a))
            {
                if (skipSpecialTokens && a.Special) continue;
                FlushRun();
                sb.Append(a.Content);
                continue;
            }
            if (id < 0 || id >= Model.Pieces.Count) continue;
            if (Model.Pieces[id].Type == SentencePieceType.Control)
            {
                if (skipSpecialTokens) continue;
                FlushRun();
                sb.Append(Model.Pieces[id].Piece);
                continue;
            }
            run.Add(id);
        }
        FlushRun();
        return sb.ToString();
    }
}
