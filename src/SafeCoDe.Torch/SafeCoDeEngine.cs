using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Decoding.Sessions;
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
    /// <summary>
    /// Most rows one decode forward carries when requests run concurrently (a SafeCoDe request takes two rows while
    /// it is guided, then one). Up to MaxBatchRows / 2 requests are admitted at once and their decode steps run as
    /// rows of one batch; 1 runs requests strictly one at a time. Default 16.
    /// </summary>
    public int MaxBatchRows { get; init; } = 16;

    /// <summary>How many requests the engine runs at once: MaxBatchRows / 2 (at least 1).</summary>
    public int ConcurrentRequests => Math.Max(1, MaxBatchRows / 2);

    /// <summary>
    /// Bytes that concurrent requests' decoded images may take at once (default 1 GiB; about 10 bytes a pixel while an
    /// image is decoded, judged and preprocessed). More requests wait their turn; one image larger than this runs alone.
    /// </summary>
    public long MaxImageWorkBytes { get; init; } = 1L << 30;
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
    /// <summary>The decoding method and its settings; default: the default method's defaults (SafeCoDe, faithful preset). Validated when the request runs.</summary>
    public DecodingOptions Options { get; init; } = DecodingMethods.Defaults(DecodingMethods.Default);
    /// <summary>The scene-level judge (SafeCoDe mode); default: the engine's model judges itself.</summary>
    public ISafetyJudge? Judge { get; init; }
    /// <summary>A verdict decided elsewhere; skips the judge.</summary>
    public Verdict? Verdict { get; init; }
    /// <summary>Overrides the engine's prompt style for this request.</summary>
    public PromptStyle? PromptStyle { get; init; }
    /// <summary>A system turn put before the user turn (null or empty: none). The judge does not see it.</summary>
    public string? SystemPrompt { get; init; }
    /// <summary>
    /// Earlier turns of the conversation (user / assistant), rendered through the family's chat format between the
    /// system turn and the current user turn. The image goes into the one history turn with <c>Images = 1</c>, or
    /// into the current turn when no history turn carries it. The judge sees only <see cref="Prompt"/>.
    /// </summary>
    public IReadOnlyList<ChatTurn>? History { get; init; }
    /// <summary>
    /// The query the judge is asked about (default: <see cref="Prompt"/>) — e.g. a benchmark's raw question when the
    /// user turn wraps it in an instruction. The decoded user turn is still <see cref="Prompt"/>.
    /// </summary>
    public string? JudgeQuery { get; init; }
    /// <summary>
    /// Experts only: special-token strings in <see cref="Prompt"/> and <see cref="SystemPrompt"/> become control tokens
    /// (default false: user text is encoded as plain text, so it cannot end a turn or open a forged one).
    /// </summary>
    public bool ParseSpecial { get; init; }
    /// <summary>Called with each piece of answer text as it is generated (also without <see cref="SafeCoDeEngine.StreamAsync"/>).</summary>
    [JsonIgnore] public Action<string>? OnText { get; init; }
    /// <summary>
    /// Null (the default): no log-probabilities. k (0 or more): the result's <see cref="SafeCoDeResult.Logprobs"/> holds
    /// each answer token's log-probability under the distribution the method picked it from, with that distribution's
    /// k most likely tokens. A method whose steps after decoding may replace the answer cannot give them
    /// (<see cref="NotSupportedException"/>).
    /// </summary>
    [JsonIgnore] public int? Logprobs { get; init; }
    /// <summary>
    /// Called (after <see cref="OnText"/>, or the stream of <see cref="SafeCoDeEngine.StreamAsync"/>) with each piece of answer text and the answer tokens it came from (with
    /// <see cref="Logprobs"/> set; an empty list otherwise, and for text no token made: a refusal given without decoding).
    /// </summary>
    [JsonIgnore] public Action<string, IReadOnlyList<TokenLogprob>>? OnTokens { get; init; }
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
    [property: JsonPropertyName("options")] DecodingOptions Options,
    [property: JsonPropertyName("family")] string Family,
    [property: JsonPropertyName("device")] string Device)
{
    /// <summary>What the method's request-level steps did (e.g. the scene judge's call), in order.</summary>
    [JsonPropertyName("steps")] public IReadOnlyList<StepRecord> Steps { get; init; } = [];
    /// <summary>The user-turn text the model decoded (the request's prompt as its method's steps left it).</summary>
    [JsonPropertyName("decoded_prompt")] public string DecodedPrompt { get; init; } = "";
    /// <summary>The system turn the model decoded with (null: none).</summary>
    [JsonPropertyName("decoded_system_prompt")] public string? DecodedSystemPrompt { get; init; }
    /// <summary>True when a step after decoding replaced the decoded answer (a filter's refusal, a safe re-answer).</summary>
    [JsonPropertyName("answer_replaced")] public bool AnswerReplaced { get; init; }
    /// <summary>True when a step before decoding answered with a refusal and nothing was decoded.</summary>
    [JsonPropertyName("refused_before_decoding")] public bool Refused { get; init; }
    /// <summary>The guard format that judged the scene (null: the project's own judge, or none).</summary>
    [JsonPropertyName("judge_format"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? JudgeFormat { get; init; }
    /// <summary>The categories a guard judge named as violated (null: no guard judged).</summary>
    [JsonPropertyName("judge_categories"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<string>? JudgeCategories { get; init; }
    /// <summary>A guard judge's stated reason, or why its reply could not be read.</summary>
    [JsonPropertyName("judge_rationale"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? JudgeRationale { get; init; }
    /// <summary>A guard judge's probability of "unsafe", when its format gives one.</summary>
    [JsonPropertyName("judge_score"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public double? JudgeScore { get; init; }
    /// <summary>
    /// With <see cref="SafeCoDeRequest.Logprobs"/> set: each answer token (end-of-sequence ids left out) with its
    /// log-probability and text; empty when a step answered without decoding. Null otherwise.
    /// </summary>
    [JsonPropertyName("logprobs"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<TokenLogprob>? Logprobs { get; init; }
    /// <summary>True when the judge's reply could not be read and the unknown-verdict policy decided.</summary>
    [JsonPropertyName("verdict_unparsed"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public bool VerdictUnparsed { get; init; }
}

/// <summary>
/// A loaded multimodal model with its tokenizer, image processor and chat format, decoding with SafeCoDe (or VCD /
/// plain decoding). Load once, then call <see cref="GenerateAsync"/> or <see cref="StreamAsync"/>.
/// <para>Thread safety: every public member may be called from any thread. Concurrent requests are the batching
/// integration point: up to <see cref="EngineOptions.MaxBatchRows"/> / 2 run at once (further ones wait), their
/// judges one at a time, and their decode steps as rows of one batch (continuous batching: a request joins after
/// its prefill, drops its noised row after guidance and leaves when it finishes, without disturbing the others;
/// each request's result equals running it alone). With MaxBatchRows = 1 requests run one at a time. A request's callbacks (<see cref="SafeCoDeRequest.OnText"/>,
/// <see cref="SafeCoDeRequest.OnJudged"/>) run while it holds the model and must not call this engine; a
/// <see cref="ModelJudge"/> on this engine (also behind a <see cref="CachedJudge"/>) is handed a completion that runs
/// inside the request; a custom judge that calls <see cref="CompleteAsync"/> on this engine from inside a request waits
/// for a free request slot (and forever with MaxBatchRows = 1). Disposing while a
/// request runs is not allowed.</para>
/// </summary>
public sealed partial class SafeCoDeEngine : IDisposable
{
    private readonly SemaphoreSlim _gate;
    private readonly MemoryGate _imageMemory;
    private readonly SemaphoreSlim _judgeGate = new(1, 1);
    private readonly SemaphoreSlim _prefillGate = new(1, 1);
    /// <summary>Steps every decoding request's session as rows of shared rounds (with MaxBatchRows 1, one at a time).</summary>
    private readonly DecodeScheduler _scheduler;
    /// <summary>Batches the prefills of requests waiting together (null with MaxBatchRows 1 or a family that prefills one request at a time).</summary>
    private readonly PrefillBatcher? _prefills;
    /// <summary>Requests prefilled so far and the forwards they took (equal when no prefills were batched; zeros without a prefill batcher).</summary>
    public (long Prefills, long Forwards) PrefillBatchCounts => _prefills?.Counts ?? (0, 0);
    /// <summary>The decode scheduler: tests read its counts.</summary>
    internal DecodeScheduler Batcher => _scheduler;
    /// <summary>Decode states stepped so far and the forwards they took (equal when nothing ran together).</summary>
    public (long Steps, long Forwards) DecodeBatchCounts => _scheduler.Counts;
    /// <summary>The decode scheduler's counters and times so far.</summary>
    public DecodeBatchProfile DecodeBatchProfile => _scheduler.Profile;
    private readonly PromptBuilder _prompts;
    private readonly EngineOptions _options;
    private readonly long[] _banned;
    private readonly long[] _eos;
    private readonly HashSet<long> _eosSet;
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
        int admitted = o.ConcurrentRequests;
        _gate = new SemaphoreSlim(admitted, admitted);
        _imageMemory = new MemoryGate(o.MaxImageWorkBytes);
        _scheduler = new DecodeScheduler(model, o.MaxBatchRows);
        _prefills = admitted > 1 && model is Models.Common.DecoderBackbone { PrefillsTogether: true } decoder
            ? new PrefillBatcher(decoder, tokenizer.Pad?.Id ?? 0, o.MaxBatchRows) : null;
        Format = ChatFormat.For(dir.Config.ModelType, o.PromptStyle);
        _qformer = qformer;
        _prompts = new PromptBuilder(dir.Config, tokenizer, Format, qformer);
        _builders[o.PromptStyle] = _prompts;
        _codec = new TokenizerCodec(tokenizer);
        Refusal = new RefusalTokens(RefusalTokens.ReferencePhrases, _codec, model.VocabSize);
        var family = ModelFamilies.Of(dir.Config);
        long[] Known(IEnumerable<string> tokens) => tokens.Select(t => tokenizer.TokenToId(t)).Where(i => i is not null).Select(i => (long)i!.Value).ToArray();
        _banned = family.PlaceholderTokenIds(dir.Config).Concat(Known(family.PlaceholderTokens)).Distinct().ToArray();
        var eos = new List<long>(dir.EosTokenIds);
        if (tokenizer.Eos is { } e) eos.Add(e.Id);
        eos.AddRange(Known(family.EndOfTurnTokens));
        _eos = eos.Distinct().ToArray();
        _eosSet = _eos.ToHashSet();
    }

    /// <summary>Loads a model folder: weights, tokenizer (and InstructBLIP's Q-Former tokenizer), image processor.</summary>
    public static SafeCoDeEngine Load(string modelDir, EngineOptions? options = null, IProgress<string>? progress = null) =>
        LoadCore(modelDir, options ?? new EngineOptions(), progress, null, default);

    /// <summary>Runs a request to the end.</summary>
    public Task<SafeCoDeResult> GenerateAsync(SafeCoDeRequest request, CancellationToken cancel = default) =>
        InSlotAsync(() => OwnThread(() => ProcessAsync(request, null, cancel), cancel), cancel);

    /// <summary>Runs a request and yields the answer's text as it is generated (never a broken UTF-8 character).</summary>
    public async IAsyncEnumerable<string> StreamAsync(SafeCoDeRequest request, [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // a consumer that stops reading early cancels the generation (and frees the engine for the next request)
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var work = InSlotAsync(() => OwnThread(async () =>
        {
            try { return await ProcessAsync(request, piece => channel.Writer.TryWrite(piece), stop.Token).ConfigureAwait(false); }
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

    /// <summary>
    /// Starts a request's body on its own thread: the body computes synchronously (and blocks in the decode batcher
    /// while it waits for the others' steps), so concurrent requests must not queue for thread-pool threads.
    /// </summary>
    private static Task<T> OwnThread<T>(Func<Task<T>> body, CancellationToken cancel) =>
        Task.Factory.StartNew(body, cancel, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();

    /// <summary>Runs <paramref name="body"/> while holding one of the engine's request slots (MaxBatchRows / 2 of them).</summary>
    private async Task<T> InSlotAsync<T>(Func<Task<T>> body, CancellationToken cancel)
    {
        await _gate.WaitAsync(cancel).ConfigureAwait(false);
        try { return await body().ConfigureAwait(false); }
        finally { _gate.Release(); }
    }

    internal static byte[] Png(RgbImage img)
    {
        using var image = SixLabors.ImageSharp.Image.LoadPixelData<Rgb24>(img.Pixels, img.Width, img.Height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    /// <summary>Plain greedy generation for a prompt (and optional image) — what the model-based judge uses.</summary>
    public Task<string> CompleteAsync(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel = default) =>
        prompt.Length > InputLimits.Current.MaxPromptChars * 2L
            ? throw new InputLimitException($"the judge prompt has {prompt.Length:N0} characters, over twice the {InputLimits.Current.MaxPromptChars:N0}-character limit (InputLimits.MaxPromptChars)")
            : InSlotAsync(() => Task.Run(() => Complete(prompt, image, maxNewTokens, cancel), cancel), cancel);

    /// <summary>
    /// <see cref="CompleteAsync"/> for a caller that already holds the model (a judge inside a request): the
    /// completion function the engine hands to its judges.
    /// </summary>
    private Task<string> CompleteHeld(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel)
    {
        // judging stays serialised across concurrent requests; decoding is what batches
        _judgeGate.Wait(cancel);
        try { return Task.FromResult(Complete(prompt, image, maxNewTokens, cancel)); }
        finally { _judgeGate.Release(); }
    }

    private string Complete(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel)
    {
        using var scope = NewDisposeScope();
        var turns = new List<ChatTurn> { ChatTurn.User(prompt, image is null ? 0 : 1) };
        using var pixels = image is null ? null : Images.Process([image]);
        var encoded = _prompts.Encode(turns, pixels?.Images ?? []);
        OptionChecks.CheckContext(encoded.Length, maxNewTokens, Directory.Config.Text.MaxPositions);
        var inputs = _prompts.Inputs(encoded, pixels, Model.DType);
        using var session = DecodeSessions.Open(Model, inputs, null, maxNewTokens, Tokenizer.Pad?.Id ?? 0);
        // plain greedy on the real row, stepped with whatever else the engine decodes
        session.Cancel = cancel;
        session.Begin(new DecodePhase { Name = "completion", Chain = new RuleChain(new RealRow()), Selector = new Argmax(), Budget = maxNewTokens, Eos = _eosSet });
        cancel.ThrowIfCancellationRequested();
        _scheduler.Decode(session);
        var ids = session.Tokens.Where(t => !_eosSet.Contains(t)).Select(t => (int)t).ToList();
        return Tokenizer.Decode(ids, skipSpecialTokens: true).Trim();
    }

    /// <summary>True when the family can run a prompt without an image (InstructBLIP's Q-Former always needs one).</summary>
    public bool SupportsTextOnly => ModelFamilies.Of(Directory.Config).SupportsTextOnly;

    /// <summary>Frees the model's device memory. Must not be called while a request runs.</summary>
    public void Dispose()
    {
        _helpers?.Dispose();
        _scheduler.Dispose();
        Model.Dispose();
        _gate.Dispose();
        _judgeGate.Dispose();
        _prefillGate.Dispose();
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
