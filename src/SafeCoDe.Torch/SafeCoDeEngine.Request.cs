using System.Diagnostics;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Noise;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Processing.Tokenizers;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch;

/// <summary>
/// One request, as the steps of SafeCoDe: read inputs → judge → build branches → decode → assemble the result.
/// Every step reads and writes the request's own <see cref="RequestState"/>; none keeps per-request state on the
/// engine, so the steps do not assume they own the model alone (several requests can later share one batch).
/// </summary>
public sealed partial class SafeCoDeEngine
{
    /// <summary>The state of one request as it moves through the steps.</summary>
    private sealed class RequestState(SafeCoDeRequest request, Action<string>? stream)
    {
        public SafeCoDeRequest Request { get; } = request;
        /// <summary>The request's options, validated once, with the seed fixed (drawn when the request has none).</summary>
        public DecodingOptions Options { get; } = Validated(request.Options);
        /// <summary>The request's decoding method.</summary>
        public IDecodingMethod Method => DecodingMethods.Of(Options);
        public Action<string>? Stream { get; } = stream ?? request.OnText;
        /// <summary>Where answer text goes as it is decided, with the tokens it came from (null: nowhere).</summary>
        public Action<string, IReadOnlyList<TokenLogprob>>? Sink { get; } = SinkOf(stream ?? request.OnText, request.OnTokens);

        private static Action<string, IReadOnlyList<TokenLogprob>>? SinkOf(Action<string>? text, Action<string, IReadOnlyList<TokenLogprob>>? tokens) =>
            text is null && tokens is null ? null : (piece, pieceTokens) => { text?.Invoke(piece); tokens?.Invoke(piece, pieceTokens); };
        public Stopwatch Total { get; } = Stopwatch.StartNew();
        public RgbImage? Image { get; set; }
        public byte[]? ImageBytes { get; set; }
        public string MediaType { get; set; } = "";
        /// <summary>The request as its steps see it (made once the inputs are read).</summary>
        public RequestContext Context { get; set; } = null!;
        public double PrepMs { get; set; }
        public double PrefillMs { get; set; }

        private static DecodingOptions Validated(DecodingOptions o)
        {
            ArgumentNullException.ThrowIfNull(o);
            o.Validate();
            return o with { Seed = o.Seed ?? Random.Shared.NextInt64(1, long.MaxValue) };
        }
    }

    /// <summary>The prompt and the model inputs of both branches (real and noised image) of one request.</summary>
    private sealed class BranchInputs(EncodedPrompt prompt, BackboneInputs real, BackboneInputs? noised, ProcessedImages? realPixels, ProcessedImages? noisedPixels) : IDisposable
    {
        public EncodedPrompt Prompt { get; } = prompt;
        public BackboneInputs Real { get; } = real;
        public BackboneInputs? Noised { get; } = noised;
        public void Dispose() { realPixels?.Dispose(); noisedPixels?.Dispose(); }
    }

    private async Task<SafeCoDeResult> ProcessAsync(SafeCoDeRequest request, Action<string>? stream, CancellationToken cancel)
    {
        CheckRequest(request);
        var run = new RequestState(request, stream);
        CheckMethod(run.Options);
        OptionChecks.CheckPromptChars(request.Prompt, request.SystemPrompt);
        if (request.JudgeQuery is { } judgeQuery) OptionChecks.CheckPromptChars(judgeQuery, null);
        var header = ReadImageHeader(run);
        // the decoded image (and, while the branches are built, its noised copy) exists only while the gate is held;
        // the request's context keeps the image to its end, so the gate is held to the end too
        using var held = await _imageMemory.EnterAsync(ImageWorkBytes(header, run), cancel).ConfigureAwait(false);
        ReadInputs(run, header);
        run.Context = new RequestContext(request.Prompt, request.SystemPrompt, request.JudgeQuery ?? request.Prompt, run.Image, request.Verdict, run.Options,
            new Services(this, run));
        foreach (var step in run.Method.Before(run.Options)) await run.Context.ExecuteAsync(step, cancel).ConfigureAwait(false);
        if (run.Context.Judged is { } judged) request.OnJudged?.Invoke(judged);
        if (run.Context.Refusal is { } refusal)
        {
            run.Sink?.Invoke(refusal, []);
            return Assemble(run, null, null, refusal);
        }
        // a step after decoding may replace the answer: then nothing is streamed until the answer is final
        var after = run.Method.After(run.Options);
        if (after.Count > 0 && request.Logprobs is not null)
            throw new NotSupportedException($"log-probabilities are not available with the {run.Options.Method} method: its step{(after.Count == 1 ? "" : "s")} after decoding " +
                $"({string.Join(", ", after.Select(a => a.Name))}) may replace the decoded answer with text no distribution produced");
        var live = after.Count == 0 ? run.Sink : null;
        DecodeOutcome decoded;
        EncodedPrompt prompt;
        using (var scope = NewDisposeScope())
        using (var inputs = BuildBranches(run))
        {
            decoded = Decode(run, inputs, live, cancel);
            prompt = inputs.Prompt;
        }
        run.Context.Answer = AnswerText(decoded);
        foreach (var step in after) await run.Context.ExecuteAsync(step, cancel).ConfigureAwait(false);
        if (live is null && run.Sink is { } whole && run.Context.Answer is { Length: > 0 } final) whole(final, []);
        return Assemble(run, prompt, decoded, run.Context.Answer);
    }

    /// <summary>
    /// Bytes a request's image takes while it is worked on: the decoder's RGBA buffer, the RGB image, its noised copy
    /// (10 bytes a pixel), from the header, before any pixel is decoded.
    /// </summary>
    private static long ImageWorkBytes(ImageHeader? header, RequestState run) =>
        header is { } h ? 10L * h.Width * h.Height : run.Request.Image is { } given ? 3L * given.PixelCount : 0;

    /// <summary>Step 1a: the image's bytes (read from its path within the limits) and header; null without an encoded image.</summary>
    private ImageHeader? ReadImageHeader(RequestState run)
    {
        var r = run.Request;
        if (r.Image is not null) return null;
        if ((r.ImageBytes ?? (r.ImagePath is { } p ? ImageDecoder.ReadBytes(p, _options.ImageLimits) : null)) is not { } bytes) return null;
        run.ImageBytes = bytes;
        return ImageDecoder.Identify(bytes, r.ImagePath ?? "image", _options.ImageLimits);
    }

    /// <summary>A request built with nulls where the API promises values fails with a typed error naming the field.</summary>
    private static void CheckRequest(SafeCoDeRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Prompt is null) throw new PromptException("the request's Prompt is null (use an empty string for no text)");
        if (request.Options is null) throw new ArgumentException("the request's Options is null (leave it out for the defaults)", nameof(request));
    }

    /// <summary>Step 1b: the image (decoded from its bytes when needed); contrastive modes need one.</summary>
    private void ReadInputs(RequestState run, ImageHeader? header)
    {
        var r = run.Request;
        if (r.Image is not null) (run.Image, run.MediaType) = (r.Image, "image/png");
        else if (run.ImageBytes is { } bytes && header is not null)
        {
            run.Image = ImageDecoder.Decode(bytes, r.ImagePath ?? "image", _options.ImageLimits);
            run.MediaType = "image/" + header.Format.ToString().ToLowerInvariant().Replace("jpg", "jpeg");
        }
        if (run.Image is null && run.Method.Needs(run.Options).Image)
            throw new ArgumentException($"{run.Options.Method} decoding contrasts the image with a noised copy: the request needs an image (use the {DecodingMethods.Plain} mode for text-only prompts)");
    }

    /// <summary>What the engine lends a request's steps: the request's judge, generations by its model and by helper models, inside the held request.</summary>
    private sealed class Services(SafeCoDeEngine engine, RequestState run) : IRequestServices
    {
        public string ModelName => engine.ModelName;
        public string? DefaultSystemPrompt => engine.Format.DefaultSystem;
        public Task<JudgeResult> JudgeAsync(string query, UnknownVerdictPolicy unknownVerdict, CancellationToken cancel) => engine.JudgeAsync(run, query, unknownVerdict, cancel);
        public Task<string> CompleteAsync(string prompt, RgbImage? image, int maxNewTokens, CancellationToken cancel) => engine.CompleteHeld(prompt, image, maxNewTokens, cancel);
        public Task<string> GenerateAsync(GenerationCall call, CancellationToken cancel) => engine.GenerateNestedAsync(run, call, cancel);
        public Task<string> HelperAsync(ModelSpec helper, HelperCall call, CancellationToken cancel) => engine.Helpers.CompleteAsync(helper, call, this, cancel);
        public Task<double> PerplexityAsync(ModelSpec helper, string text, CancellationToken cancel) => engine.Helpers.PerplexityAsync(helper, text, cancel);
        public double? CalibratedPerplexityThreshold(ModelSpec helper) => engine.Helpers.CalibratedThreshold(helper);
    }

    /// <summary>
    /// A generation a step asks for, decoded by this model inside the held request (a nested request with the outer one's
    /// prompt style; it is not streamed and takes no second request slot).
    /// </summary>
    private async Task<string> GenerateNestedAsync(RequestState outer, GenerationCall call, CancellationToken cancel)
    {
        var inner = new SafeCoDeRequest
        {
            Prompt = call.Prompt, Image = call.Image, SystemPrompt = call.SystemPrompt, Options = call.Options, PromptStyle = outer.Request.PromptStyle,
        };
        var result = await ProcessAsync(inner, null, cancel).ConfigureAwait(false);
        return result.Answer;
    }

    /// <summary>Scene-level reasoning for a step: caption and verdict from the request's judge.</summary>
    private async Task<JudgeResult> JudgeAsync(RequestState run, string query, UnknownVerdictPolicy unknown, CancellationToken cancel)
    {
        var judge = JudgeFor(run.Request.Judge);
        // a PNG of a given image only for judges that read bytes (an endpoint, a cache key): encoding one costs
        // ≈ 20 ms of CPU per request, more than the whole decode of a small model
        var bytes = run.ImageBytes ?? (run.Image is null || !ReadsImageBytes(judge) ? null : Png(run.Image));
        var request = new JudgeRequest(query, bytes, run.ImageBytes is null ? "image/png" : run.MediaType) { Image = run.Image, UnknownVerdict = unknown };
        return await judge.JudgeAsync(request, cancel).ConfigureAwait(false);
    }

    /// <summary>False for judges that never look at the image's bytes: a fixed verdict, or this engine's model judge (it reads the decoded pixels).</summary>
    private static bool ReadsImageBytes(ISafetyJudge judge) => judge is not (FixedJudge or ModelJudge);

    /// <summary>
    /// The request's judge (default: this model judging itself). A model judge on this engine — also behind a
    /// <see cref="CachedJudge"/> — gets a completion function that runs inside the held request instead of calling
    /// back into the engine (which would wait for a request slot this request holds).
    /// </summary>
    private ISafetyJudge JudgeFor(ISafetyJudge? judge) => judge switch
    {
        null => new ModelJudge(CompleteHeld, SupportsTextOnly, ImageLimits),
        ModelJudge m when m.RunsOn(this) => m.WithCompletion(CompleteHeld),
        CachedJudge { Inner: { } inner } c => c.With(JudgeFor(inner)),
        _ => judge,
    };

    /// <summary>Step 3: the prompt, then the inputs of the real and (when the method contrasts) the noised branch.</summary>
    private BranchInputs BuildBranches(RequestState run)
    {
        var prep = Stopwatch.StartNew();
        var (r, o) = (run.Request, run.Options);
        var builder = Builder(r.PromptStyle ?? _options.PromptStyle);
        var turns = new List<ChatTurn>();
        if (run.Context.SystemPrompt is { Length: > 0 } sys) turns.Add(ChatTurn.System(sys));
        int historyImages = r.History?.Sum(t => t.Images) ?? 0;
        if (historyImages > 1 || (historyImages == 1 && run.Image is null))
            throw new ArgumentException($"the history places {historyImages} image(s) but the request has {(run.Image is null ? "none" : "one")}");
        if (r.History is { } history) turns.AddRange(history);
        turns.Add(ChatTurn.User(run.Context.Prompt, run.Image is null || historyImages == 1 ? 0 : 1));
        var realPixels = run.Image is null ? null : Images.Process([run.Image]);
        ProcessedImages? noisedPixels = null;
        try
        {
            var encoded = builder.Encode(turns, realPixels?.Images ?? [], r.ParseSpecial);
            OptionChecks.CheckContext(encoded.Length, o.MaxNewTokens ?? o.MaxTotalTokens, Directory.Config.Text.MaxPositions);
            var real = builder.Inputs(encoded, realPixels, Model.DType);
            BackboneInputs? noised = null;
            if (run.Method.Needs(o).Noised is { Kind: NoiseKind.Pixel } pixel)
            {
                noisedPixels = Images.Process([PixelNoise.Apply(run.Image!, pixel.Std, o.Seed!.Value)]);
                noised = builder.Inputs(encoded, noisedPixels, Model.DType);
            }
            else if (run.Method.Needs(o).Noised is { } diffusion)
                noised = real with { Images = new Dictionary<string, Tensor>(real.Images) { ["pixel_values"] = DiffusionNoise.Apply(real.Images["pixel_values"], diffusion.DiffusionStep, o.Seed!.Value) } };
            run.PrepMs = prep.Elapsed.TotalMilliseconds;
            return new BranchInputs(encoded, real, noised, realPixels, noisedPixels);
        }
        catch
        {
            realPixels?.Dispose();
            noisedPixels?.Dispose();
            throw;
        }
    }

    /// <summary>Step 4: the branches prefilled as one batch, then the method's phases with every other request's rows; the answer streams as it is chosen.</summary>
    private DecodeOutcome Decode(RequestState run, BranchInputs inputs, Action<string, IReadOnlyList<TokenLogprob>>? stream, CancellationToken cancel)
    {
        var o = run.Options;
        var detok = Tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
        var pre = Stopwatch.StartNew();
        int budget = o.Budget(Family, run.Context.Verdict, inputs.Prompt.Length);
        // prefills never run concurrently (compute-bound; concurrent ones only contend for the cores) while other
        // requests' decode steps go on batched; requests waiting at the same time are prefilled as one batch where
        // the family allows it (PrefillBatcher), one at a time otherwise
        int capacity = budget + o.GuidedSpan + 1;
        DecodeSession made;
        if (_prefills is not null)
        {
            var (state, logits) = _prefills.Prefill(inputs.Real, inputs.Noised, capacity, cancel);
            made = DecodeSessions.FromPrefill(state, logits);
        }
        else
        {
            _prefillGate.Wait(cancel);
            try { made = DecodeSessions.Open(Model, inputs.Real, inputs.Noised, capacity, Tokenizer.Pad?.Id ?? 0); }
            finally { _prefillGate.Release(); }
        }
        using var session = made;
        session.Logprobs = run.Request.Logprobs;
        run.PrefillMs = pre.Elapsed.TotalMilliseconds;
        // each piece of text goes out with the answer tokens it came from (end-of-sequence ids are not answer tokens)
        var pending = new List<TokenLogprob>();
        void Emit(long t)
        {
            if (session.Logprobs is not null && !_eosSet.Contains(t))
                pending.Add(Named(session.TokenLogprobs[^1], session.Tokens.Count > 1 ? session.Tokens[^2] : null));
            var s = detok.Push((int)t);
            if (s.Length == 0) return;
            stream!(s, [.. pending]);
            pending.Clear();
        }
        var g = MethodDecoder.Decode(_scheduler, Model, session, run.Context.Verdict, o, _codec, Refusal, _eos, inputs.Prompt.Length,
            stream is null ? null : Emit, cancel, _banned);
        if (stream is not null && detok.Flush() is var rest && (rest.Length > 0 || pending.Count > 0)) stream(rest, [.. pending]);
        return g;
    }

    /// <summary>A log-probability with the texts of its token and of the most likely ones, each read after <paramref name="previous"/>.</summary>
    private TokenLogprob Named(TokenLogprob l, long? previous) =>
        l with { Text = TokenText(l.Id, previous), Top = l.Top.Select(t => t with { Text = TokenText(t.Id, previous) }).ToArray() };

    /// <summary>
    /// The text <paramref name="id"/> adds after <paramref name="previous"/> (the answer's token before it): decoded
    /// with it and without it, as the streaming detokenizer does, since decoders that strip a sequence's leading
    /// space would drop the token's own space decoded alone. The token alone when there is none before it.
    /// </summary>
    private string TokenText(long id, long? previous)
    {
        if (previous is not { } p) return Tokenizer.Decode([(int)id], skipSpecialTokens: false);
        var before = Tokenizer.Decode([(int)p], skipSpecialTokens: false);
        var both = Tokenizer.Decode([(int)p, (int)id], skipSpecialTokens: false);
        return both.StartsWith(before, StringComparison.Ordinal) ? both[before.Length..] : Tokenizer.Decode([(int)id], skipSpecialTokens: false);
    }

    /// <summary>The answer's log-probabilities (end-of-sequence ids left out) with their texts.</summary>
    private TokenLogprob[] NamedLogprobs(DecodeOutcome g) =>
        g.Logprobs is not { } lp ? [] : lp.Select((l, i) => (l, i)).Where(x => !_eosSet.Contains(x.l.Id)).Select(x => Named(x.l, x.i > 0 ? g.Tokens[x.i - 1] : null)).ToArray();

    /// <summary>The answer text of a decode: end-of-sequence ids dropped, special tokens skipped, trimmed.</summary>
    private string AnswerText(DecodeOutcome g) =>
        Tokenizer.Decode(g.Tokens.Where(t => !_eosSet.Contains(t)).Select(t => (int)t).ToList(), skipSpecialTokens: true).Trim();

    /// <summary>
    /// Step 5: the answer (decoded, or a step's replacement or refusal), the guided span, the verdict, the steps'
    /// records and timings. <paramref name="g"/> is null when a step answered without decoding.
    /// </summary>
    private SafeCoDeResult Assemble(RequestState run, EncodedPrompt? prompt, DecodeOutcome? g, string? answer)
    {
        var (r, o, c) = (run.Request, run.Options, run.Context);
        long[] tokens = g?.Tokens ?? [];
        int guided = g?.GuidedTokens ?? 0;
        var guidedText = Tokenizer.Decode(tokens.Take(guided).Select(t => (int)t).ToList(), skipSpecialTokens: true);
        double totalMs = run.Total.Elapsed.TotalMilliseconds;
        double decodeMs = (g?.GuidedMs ?? 0) + (g?.ContinuationMs ?? 0);
        var timings = new SafeCoDeTimings(c.JudgeMs, run.PrepMs, run.PrefillMs, g?.GuidedMs ?? 0, g?.ContinuationMs ?? 0, totalMs,
            tokens.Length == 0 ? 0 : decodeMs / tokens.Length);
        var j = c.Judged;
        return new SafeCoDeResult(answer ?? "", run.Method.Needs(o).Judge ? (c.Verdict == Verdict.Unsafe ? "unsafe" : "safe") : null,
            j?.Caption, j?.RawVerdictReply, j?.Judge ?? (r.Verdict is null ? null : "given"), guidedText, guided, g?.ForcedPhrase,
            prompt?.Length ?? 0, tokens.Length, g?.StoppedAtEos ?? false, tokens, timings, o, Family, Model.Device.ToString())
        {
            Steps = c.Steps, DecodedPrompt = c.Prompt, DecodedSystemPrompt = c.SystemPrompt, AnswerReplaced = c.AnswerReplaced, Refused = c.Refusal is not null,
            JudgeFormat = j is not null && j.Format != Safety.Guards.JudgeFormats.Default ? j.Format : null,
            JudgeCategories = j is not null && j.Format != Safety.Guards.JudgeFormats.Default ? j.Categories : null,
            JudgeRationale = j?.Rationale, JudgeScore = j?.Score, VerdictUnparsed = j is { VerdictParsed: false },
            Logprobs = r.Logprobs is null ? null : g is null ? [] : NamedLogprobs(g),
        };
    }
}
