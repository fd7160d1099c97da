using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Generation;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch;

/// <summary>How an engine is loaded.</summary>
public sealed record EngineOptions
{
    /// <summary>cpu, cuda or auto (CUDA when a CUDA libtorch and a GPU are there).</summary>
    public DeviceRequest Device { get; init; } = DeviceRequest.Auto;
    /// <summary>Weights and activations; default bfloat16 on CUDA, float32 on the CPU.</summary>
    public ModelDType? DType { get; init; }
    /// <summary>The family's official chat template, or the SafeCoDe reference code's prompt quirks.</summary>
    public PromptStyle PromptStyle { get; init; } = PromptStyle.Official;
    /// <summary>Limits for decoding image files.</summary>
    public ImageDecodeOptions? ImageLimits { get; init; }
}

/// <summary>One request: a query, optionally an image, and how to decode it.</summary>
public sealed record SafeCoDeRequest
{
    /// <summary>The user's query. It is what the judge is asked about (without <see cref="SystemPrompt"/>) and the text of the user turn.</summary>
    public required string Prompt { get; init; }
    /// <summary>Image file bytes (JPEG/PNG/WebP/BMP/GIF); or use <see cref="ImagePath"/> or <see cref="Image"/>.</summary>
    public byte[]? ImageBytes { get; init; }
    /// <summary>Path of an image file, read when <see cref="Image"/> and <see cref="ImageBytes"/> are null.</summary>
    public string? ImagePath { get; init; }
    /// <summary>An already decoded image; takes precedence over <see cref="ImageBytes"/> and <see cref="ImagePath"/> (the judge then gets it as PNG).</summary>
    public RgbImage? Image { get; init; }
    /// <summary>Decode settings; default: the <see cref="SafeCoDePreset.Faithful"/> preset in SafeCoDe mode. Validated when the request runs.</summary>
    public SafeCoDeOptions Options { get; init; } = SafeCoDeOptions.For(SafeCoDePreset.Faithful);
    /// <summary>The scene-level judge (SafeCoDe mode); default: the engine's model judges itself.</summary>
    public ISafetyJudge? Judge { get; init; }
    /// <summary>A verdict decided elsewhere; skips the judge.</summary>
    public Verdict? Verdict { get; init; }
    /// <summary>Overrides the engine's prompt style for this request.</summary>
    public PromptStyle? PromptStyle { get; init; }
    /// <summary>A system turn put before the user turn (null or empty: none). The judge does not see it.</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>Called with each piece of answer text as it is generated (also without <see cref="SafeCoDeEngine.StreamAsync"/>).</summary>
    [JsonIgnore] public Action<string>? OnText { get; init; }
    /// <summary>Called once the judge has answered, before decoding starts.</summary>
    [JsonIgnore] public Action<JudgeResult>? OnJudged { get; init; }
}

/// <summary>Wall times of a request, in milliseconds.</summary>
public sealed record SafeCoDeTimings(
    [property: JsonPropertyName("judge_ms")] double JudgeMs,
    [property: JsonPropertyName("preprocess_ms")] double PreprocessMs,
    [property: JsonPropertyName("prefill_ms")] double PrefillMs,
    [property: JsonPropertyName("guided_ms")] double GuidedMs,
    [property: JsonPropertyName("continuation_ms")] double ContinuationMs,
    [property: JsonPropertyName("total_ms")] double TotalMs,
    [property: JsonPropertyName("ms_per_token")] double MsPerToken);

/// <summary>What a request produced, with everything needed to reproduce it.</summary>
public sealed record SafeCoDeResult(
    [property: JsonPropertyName("answer")] string Answer,
    [property: JsonPropertyName("verdict")] string? Verdict,
    [property: JsonPropertyName("caption")] string? Caption,
    [property: JsonPropertyName("raw_verdict")] string? RawVerdict,
    [property: JsonPropertyName("judge")] string? Judge,
    [property: JsonPropertyName("guided_text")] string GuidedText,
    [property: JsonPropertyName("guided_tokens")] int GuidedTokens,
    [property: JsonPropertyName("forced_phrase")] string? ForcedPhrase,
    [property: JsonPropertyName("prompt_tokens")] int PromptTokens,
    [property: JsonPropertyName("generated_tokens")] int GeneratedTokens,
    [property: JsonPropertyName("stopped_at_eos")] bool StoppedAtEos,
    [property: JsonPropertyName("token_ids")] long[] TokenIds,
    [property: JsonPropertyName("timings")] SafeCoDeTimings Timings,
    [property: JsonPropertyName("options")] SafeCoDeOptions Options,
    [property: JsonPropertyName("family")] string Family,
    [property: JsonPropertyName("device")] string Device);

/// <summary>
/// A loaded multimodal model with its tokenizer, image processor and chat format, decoding with SafeCoDe (or VCD /
/// plain decoding). Load once, then call <see cref="GenerateAsync"/> or <see cref="StreamAsync"/>.
/// <para>Thread safety: every public member may be called from any thread; requests run one at a time on the model
/// (a request waits for the one before it). Disposing while a request runs is not allowed.</para>
/// </summary>
public sealed partial class SafeCoDeEngine : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly SemaphoreSlim _nested = new(1, 1);
    private static readonly AsyncLocal<SafeCoDeEngine?> Holder = new();
    private readonly PromptBuilder _prompts;
    private readonly EngineOptions _options;
    private readonly long[] _banned;
    private readonly long[] _eos;
    private readonly ITokenizer? _qformer;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<PromptStyle, PromptBuilder> _builders = new();

    /// <summary>Limits and options used to decode image files (also used by model-based judges).</summary>
    public ImageDecodeOptions? ImageLimits => _options.ImageLimits;

    /// <summary>The prompt builder of a style (one per style, created on first use).</summary>
    private PromptBuilder Builder(PromptStyle style) =>
        _builders.GetOrAdd(style, s => new PromptBuilder(Directory.Config, Tokenizer, ChatFormat.For(Family, s), _qformer));

    /// <summary>The opened model folder (configs, weight files).</summary>
    public ModelDirectory Directory { get; }
    /// <summary>The loaded backbone. Use it directly only while no request runs: the engine does not lock it for outside callers.</summary>
    public IBackbone Model { get; }
    /// <summary>The text tokenizer of the checkpoint.</summary>
    public ITokenizer Tokenizer { get; }
    /// <summary>The family's image processor, configured from preprocessor_config.json.</summary>
    public IImageProcessor Images { get; }
    /// <summary>The chat format for the engine's <see cref="EngineOptions.PromptStyle"/>.</summary>
    public ChatFormat Format { get; }
    /// <summary>The checkpoint's <c>model_type</c> (see <see cref="ModelFamilies"/>).</summary>
    public string Family => Model.Family;
    /// <summary>The refusal token space, built from <see cref="RefusalTokens.ReferencePhrases"/> with this tokenizer at load time.</summary>
    public RefusalTokens Refusal { get; }
    private readonly ITokenCodec _codec;

    private SafeCoDeEngine(ModelDirectory dir, IBackbone model, ITokenizer tokenizer, ITokenizer? qformer, IImageProcessor images, EngineOptions o)
    {
        Directory = dir; Model = model; Tokenizer = tokenizer; Images = images; _options = o;
        Format = ChatFormat.For(dir.Config.ModelType, o.PromptStyle);
        _qformer = qformer;
        _prompts = new PromptBuilder(dir.Config, tokenizer, Format, qformer);
        _builders[o.PromptStyle] = _prompts;
        _codec = new TokenizerCodec(tokenizer);
        Refusal = new RefusalTokens(RefusalTokens.ReferencePhrases, _codec, model.VocabSize);
        var extra = new[] { "<image>", "<fake_token_around_image>", "<|image_pad|>", "<|video_pad|>", "<global-img>" }
            .Select(t => tokenizer.TokenToId(t)).Where(i => i is not null).Select(i => (long)i!.Value);
        _banned = Backbones.PlaceholderTokenIds(dir.Config).Concat(extra).Distinct().ToArray();
        var eos = new List<long>(SafeCoDe.Torch.Verification.Verifier.EosIds(dir));
        if (tokenizer.Eos is { } e) eos.Add(e.Id);
        foreach (var t in new[] { "<end_of_utterance>", "<|im_end|>" }) if (tokenizer.TokenToId(t) is { } id) eos.Add(id);
        _eos = eos.Distinct().ToArray();
    }

    /// <summary>Loads a model folder: weights, tokenizer (and InstructBLIP's Q-Former tokenizer), image processor.</summary>
    public static SafeCoDeEngine Load(string modelDir, EngineOptions? options = null, IProgress<string>? progress = null) =>
        LoadCore(modelDir, options ?? new EngineOptions(), progress, null, default);

    /// <summary>Runs a request to the end.</summary>
    public Task<SafeCoDeResult> GenerateAsync(SafeCoDeRequest request, CancellationToken cancel = default) =>
        RunLockedAsync(() => Task.Run(() => RunAsync(request, null, cancel), cancel), cancel);

    /// <summary>Runs a request and yields the answer's text as it is generated (never a broken UTF-8 character).</summary>
    public async IAsyncEnumerable<string> StreamAsync(SafeCoDeRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // a consumer that stops reading early cancels the generation (and frees the engine for the next request)
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var work = RunLockedAsync(() => Task.Run(async () =>
        {
            try { return await RunAsync(request, piece => channel.Writer.TryWrite(piece), stop.Token).ConfigureAwait(false); }
            finally { channel.Writer.TryComplete(); }
        }, stop.Token), stop.Token);
        bool finished = false;
        try
        {
            await foreach (var piece in channel.Reader.ReadAllAsync(cancel).ConfigureAwait(false))
                yield return piece;
            finished = true;
            await work.ConfigureAwait(false); // surfaces errors
        }
        finally
        {
            if (!finished)
            {
                stop.Cancel();
                try { await work.ConfigureAwait(false); } catch (OperationCanceledException) { }
            }
        }
    }

    private async Task<T> RunLockedAsync<T>(Func<Task<T>> body, CancellationToken cancel)
    {
        if (Holder.Value == this)
        {
            // a judge (or callback) using this same engine inside a request: nested calls run one at a time too
            await _nested.WaitAsync(cancel).ConfigureAwait(false);
            try { return await body().ConfigureAwait(false); }
            finally { _nested.Release(); }
        }
        await _gate.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            Holder.Value = this;
            return await body().ConfigureAwait(false);
        }
        finally
        {
            Holder.Value = null;
            _gate.Release();
        }
    }

    private (RgbImage? image, byte[]? bytes, string media) ReadImage(SafeCoDeRequest r)
    {
        if (r.Image is not null) return (r.Image, null, "image/png");
        byte[]? bytes = r.ImageBytes ?? (r.ImagePath is { } p ? ImageDecoder.ReadBytes(p, _options.ImageLimits) : null);
        if (bytes is null) return (null, null, "");
        var name = r.ImagePath ?? "image";
        var header = ImageDecoder.Identify(bytes, name, _options.ImageLimits);
        var img = ImageDecoder.Decode(bytes, name, _options.ImageLimits);
        return (img, bytes, "image/" + header.Format.ToString().ToLowerInvariant().Replace("jpg", "jpeg"));
    }

    internal static byte[] Png(RgbImage img)
    {
        using var image = SixLabors.ImageSharp.Image.LoadPixelData<Rgb24>(img.Pixels, img.Width, img.Height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    private async Task<SafeCoDeResult> RunAsync(SafeCoDeRequest r, Action<string>? stream, CancellationToken cancel)
    {
        var o = r.Options;
        o.Validate();
        var total = Stopwatch.StartNew();
        stream ??= r.OnText;
        var (image, bytes, media) = ReadImage(r);
        if (image is null && o.Mode != DecodeMode.Vanilla)
            throw new ArgumentException($"{o.Mode} decoding contrasts the image with a noised copy: the request needs an image (use the vanilla mode for text-only prompts)");

        // 1. scene-level reasoning (SafeCoDe only)
        Verdict verdict = r.Verdict ?? Verdict.Safe;
        JudgeResult? judged = null;
        double judgeMs = 0;
        if (o.Mode == DecodeMode.SafeCoDe && r.Verdict is null)
        {
            var judge = r.Judge ?? new ModelJudge(this);
            var sw = Stopwatch.StartNew();
            judged = await judge.JudgeAsync(new JudgeRequest(r.Prompt, bytes ?? (image is null ? null : Png(image)), bytes is null ? "image/png" : media) { Image = image }, cancel).ConfigureAwait(false);
            judgeMs = sw.Elapsed.TotalMilliseconds;
            verdict = judged.Verdict;
            r.OnJudged?.Invoke(judged);
        }

        // 2. prompt, real and noised pixels
        var prep = Stopwatch.StartNew();
        using var scope = NewDisposeScope();
        var style = r.PromptStyle ?? _options.PromptStyle;
        var builder = Builder(style);
        var turns = new List<ChatTurn>();
        if (r.SystemPrompt is { Length: > 0 } sys) turns.Add(ChatTurn.System(sys));
        turns.Add(ChatTurn.User(r.Prompt, image is null ? 0 : 1));
        using var realPixels = image is null ? null : Images.Process([image]);
        var encoded = builder.Encode(turns, realPixels?.Images ?? []);
        var realInputs = builder.Inputs(encoded, realPixels, Model.DType);
        BackboneInputs? noisedInputs = null;
        using var noisedHolder = new DisposableSlot<ProcessedImages>();
        ProcessedImages? noisedPixels = null;
        long seed = o.Seed ?? Random.Shared.NextInt64(1, long.MaxValue);
        if (o.Mode != DecodeMode.Vanilla)
        {
            if (realPixels is null) throw new ArgumentException($"{o.Mode} decoding contrasts the image with a noised copy: the request needs an image");
            if (o.Noise == NoiseKind.Pixel)
            {
                noisedPixels = noisedHolder.Value = Images.Process([PixelNoise.Apply(image!, o.NoiseStd, seed)]);
                noisedInputs = builder.Inputs(encoded, noisedPixels, Model.DType);
            }
            else
            {
                var images = new Dictionary<string, Tensor>(realInputs.Images) { ["pixel_values"] = VcdNoise.Apply(realInputs.Images["pixel_values"], o.VcdNoiseStep, seed) };
                noisedInputs = realInputs with { Images = images };
            }
        }
        double prepMs = prep.Elapsed.TotalMilliseconds;

        // 3. decode: both branches in one batch, guidance, then the real branch alone
        var detok = Tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
        var pre = Stopwatch.StartNew();
        int budget = o.Budget(Family, verdict, encoded.Length);
        using var branches = new BatchedBranches(Model, realInputs, noisedInputs, budget + o.MaxSteps + 1, Tokenizer.Pad?.Id ?? 0);
        double prefillMs = pre.Elapsed.TotalMilliseconds;
        var refusal = ReferenceEquals(o.RefusalPhrases, RefusalTokens.ReferencePhrases) || o.RefusalPhrases.SequenceEqual(Refusal.Phrases)
            ? Refusal : new RefusalTokens(o.RefusalPhrases, _codec, Model.VocabSize);
        var g = GuidedDecoder.Run(Model, branches, verdict, o with { Seed = seed }, _codec, refusal, _eos, encoded.Length,
            onToken: stream is null ? null : t => { var s = detok.Push((int)t); if (s.Length > 0) stream(s); },
            cancel: cancel, bannedIds: _banned);
        if (stream is not null && detok.Flush() is { Length: > 0 } rest) stream(rest);

        var answerIds = g.Tokens.Where(t => !_eos.Contains(t)).Select(t => (int)t).ToList();
        var answer = Tokenizer.Decode(answerIds, skipSpecialTokens: true).Trim();
        var guidedText = Tokenizer.Decode(g.Tokens.Take(g.GuidedTokens).Select(t => (int)t).ToList(), skipSpecialTokens: true);
        double totalMs = total.Elapsed.TotalMilliseconds;
        double decodeMs = g.GuidedMs + g.ContinuationMs;
        return new SafeCoDeResult(answer, o.Mode == DecodeMode.SafeCoDe ? (verdict == Verdict.Unsafe ? "unsafe" : "safe") : null,
            judged?.Caption, judged?.RawVerdictReply, judged?.Judge ?? (r.Verdict is null ? null : "given"), guidedText, g.GuidedTokens, g.ForcedPhrase,
            encoded.Length, g.Tokens.Length, g.StoppedAtEos, g.Tokens,
            new SafeCoDeTimings(judgeMs, prepMs, prefillMs, g.GuidedMs, g.ContinuationMs, totalMs, g.Tokens.Length == 0 ? 0 : decodeMs / g.Tokens.Length),
            o with { Seed = seed }, Family, Model.Device.ToString());
    }

    /// <summary>Plain greedy generation for a prompt (and optional image) — what the model-based judge uses.</summary>
    public Task<string> CompleteAsync(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel = default) =>
        RunLockedAsync(() => Task.Run(() =>
        {
            using var scope = NewDisposeScope();
            var turns = new List<ChatTurn> { ChatTurn.User(prompt, image is null ? 0 : 1) };
            using var pixels = image is null ? null : Images.Process([image]);
            var encoded = _prompts.Encode(turns, pixels?.Images ?? []);
            var inputs = _prompts.Inputs(encoded, pixels, Model.DType);
            var result = TokenGenerator.Generate(Model, inputs, new SamplingOptions { MaxNewTokens = maxNewTokens, EosTokenIds = _eos, PadTokenId = Tokenizer.Pad?.Id ?? 0 }, cancel: cancel);
            var ids = result.Tokens[0].Where(t => !_eos.Contains(t)).Select(t => (int)t).ToList();
            return Tokenizer.Decode(ids, skipSpecialTokens: true).Trim();
        }, cancel), cancel);

    /// <summary>True when the family can run a prompt without an image (InstructBLIP's Q-Former always needs one).</summary>
    public bool SupportsTextOnly => Family != ModelFamilies.InstructBlip;

    /// <summary>Frees the model's device memory. Must not be called while a request runs.</summary>
    public void Dispose()
    {
        Model.Dispose();
        _gate.Dispose();
        _nested.Dispose();
    }

    /// <summary>Holds an optional disposable so a <c>using</c> covers it on every path.</summary>
    private sealed class DisposableSlot<T> : IDisposable where T : class, IDisposable
    {
        public T? Value { get; set; }
        public void Dispose() => Value?.Dispose();
    }

    /// <summary>The engine's tokenizer as the decoder's codec.</summary>
    private sealed class TokenizerCodec(ITokenizer t) : ITokenCodec
    {
        public long[] Encode(string text) => t.Encode(text, false).Select(i => (long)i).ToArray();
        public string Decode(IReadOnlyList<long> ids, bool skipSpecialTokens = false) => t.Decode(ids.Select(i => (int)i).ToList(), skipSpecialTokens);
    }
}
