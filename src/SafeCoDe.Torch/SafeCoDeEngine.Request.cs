using System.Diagnostics;
using SafeCoDe.Torch.Decoding;
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
/// Every step reads and writes the request's own <see cref="RequestRun"/>; none keeps per-request state on the
/// engine, so the steps do not assume they own the model alone (several requests can later share one batch).
/// </summary>
public sealed partial class SafeCoDeEngine
{
    /// <summary>The state of one request as it moves through the steps.</summary>
    private sealed class RequestRun(SafeCoDeRequest request, Action<string>? stream)
    {
        public SafeCoDeRequest Request { get; } = request;
        /// <summary>The request's options, validated once, with the seed fixed (drawn when the request has none).</summary>
        public SafeCoDeOptions Options { get; } = Validated(request.Options);
        public Action<string>? Stream { get; } = stream ?? request.OnText;
        public Stopwatch Total { get; } = Stopwatch.StartNew();
        public RgbImage? Image { get; set; }
        public byte[]? ImageBytes { get; set; }
        public string MediaType { get; set; } = "";
        public Verdict Verdict { get; set; } = request.Verdict ?? Verdict.Safe;
        public JudgeResult? Judged { get; set; }
        public double JudgeMs { get; set; }
        public double PrepMs { get; set; }
        public double PrefillMs { get; set; }

        private static SafeCoDeOptions Validated(SafeCoDeOptions o)
        {
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

    private async Task<SafeCoDeResult> RunAsync(SafeCoDeRequest request, Action<string>? stream, CancellationToken cancel)
    {
        CheckRequest(request);
        var run = new RequestRun(request, stream);
        OptionChecks.CheckPromptChars(request.Prompt, request.SystemPrompt);
        if (request.JudgeQuery is { } judgeQuery) OptionChecks.CheckPromptChars(judgeQuery, null);
        var header = ReadImageHeader(run);
        // the decoded image and its noised copy exist only while the gate is held (decode, judge, preprocessing)
        var held = await _imageMemory.EnterAsync(ImageWorkBytes(header, run), cancel).ConfigureAwait(false);
        try
        {
            ReadInputs(run, header);
            await JudgeAsync(run, cancel).ConfigureAwait(false);
        }
        catch { held.Dispose(); throw; }
        using var scope = NewDisposeScope();
        BranchInputs inputs;
        try { inputs = BuildBranches(run); }
        finally { run.Image = null; held.Dispose(); }
        using (inputs)
        {
            var decoded = Decode(run, inputs, cancel);
            return Assemble(run, inputs.Prompt, decoded);
        }
    }

    /// <summary>
    /// Bytes a request's image takes while it is worked on: the decoder's RGBA buffer, the RGB image, its noised copy
    /// (10 bytes a pixel), from the header, before any pixel is decoded.
    /// </summary>
    private static long ImageWorkBytes(ImageHeader? header, RequestRun run) =>
        header is { } h ? 10L * h.Width * h.Height : run.Request.Image is { } given ? 3L * given.PixelCount : 0;

    /// <summary>Step 1a: the image's bytes (read from its path within the limits) and header; null without an encoded image.</summary>
    private ImageHeader? ReadImageHeader(RequestRun run)
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
    private void ReadInputs(RequestRun run, ImageHeader? header)
    {
        var r = run.Request;
        if (r.Image is not null) (run.Image, run.MediaType) = (r.Image, "image/png");
        else if (run.ImageBytes is { } bytes && header is not null)
        {
            run.Image = ImageDecoder.Decode(bytes, r.ImagePath ?? "image", _options.ImageLimits);
            run.MediaType = "image/" + header.Format.ToString().ToLowerInvariant().Replace("jpg", "jpeg");
        }
        if (run.Image is null && run.Options.Mode != DecodeMode.Vanilla)
            throw new ArgumentException($"{run.Options.Mode} decoding contrasts the image with a noised copy: the request needs an image (use the vanilla mode for text-only prompts)");
    }

    /// <summary>Step 2: scene-level reasoning (SafeCoDe mode without a given verdict): caption and verdict from the judge.</summary>
    private async Task JudgeAsync(RequestRun run, CancellationToken cancel)
    {
        var r = run.Request;
        if (run.Options.Mode != DecodeMode.SafeCoDe || r.Verdict is not null) return;
        var judge = JudgeFor(r.Judge);
        var sw = Stopwatch.StartNew();
        // a PNG of a given image only for judges that read bytes (an endpoint, a cache key): encoding one costs
        // ≈ 20 ms of CPU per request, more than the whole decode of a small model
        var bytes = run.ImageBytes ?? (run.Image is null || !ReadsImageBytes(judge) ? null : Png(run.Image));
        var request = new JudgeRequest(r.JudgeQuery ?? r.Prompt, bytes, run.ImageBytes is null ? "image/png" : run.MediaType) { Image = run.Image, UnknownVerdict = run.Options.UnknownVerdict };
        run.Judged = await judge.JudgeAsync(request, cancel).ConfigureAwait(false);
        run.JudgeMs = sw.Elapsed.TotalMilliseconds;
        run.Verdict = run.Judged.Verdict;
        r.OnJudged?.Invoke(run.Judged);
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

    /// <summary>Step 3: the prompt, then the inputs of the real and (SafeCoDe/VCD) the noised branch.</summary>
    private BranchInputs BuildBranches(RequestRun run)
    {
        var prep = Stopwatch.StartNew();
        var (r, o) = (run.Request, run.Options);
        var builder = Builder(r.PromptStyle ?? _options.PromptStyle);
        var turns = new List<ChatTurn>();
        if (r.SystemPrompt is { Length: > 0 } sys) turns.Add(ChatTurn.System(sys));
        int historyImages = r.History?.Sum(t => t.Images) ?? 0;
        if (historyImages > 1 || (historyImages == 1 && run.Image is null))
            throw new ArgumentException($"the history places {historyImages} image(s) but the request has {(run.Image is null ? "none" : "one")}");
        if (r.History is { } history) turns.AddRange(history);
        turns.Add(ChatTurn.User(r.Prompt, run.Image is null || historyImages == 1 ? 0 : 1));
        var realPixels = run.Image is null ? null : Images.Process([run.Image]);
        ProcessedImages? noisedPixels = null;
        try
        {
            var encoded = builder.Encode(turns, realPixels?.Images ?? [], r.ParseSpecial);
            OptionChecks.CheckContext(encoded.Length, o.MaxNewTokens ?? o.MaxTotalTokens, Directory.Config.Text.MaxPositions);
            var real = builder.Inputs(encoded, realPixels, Model.DType);
            BackboneInputs? noised = null;
            if (o.Mode != DecodeMode.Vanilla && o.Noise == NoiseKind.Pixel)
            {
                noisedPixels = Images.Process([PixelNoise.Apply(run.Image!, o.NoiseStd, o.Seed!.Value)]);
                noised = builder.Inputs(encoded, noisedPixels, Model.DType);
            }
            else if (o.Mode != DecodeMode.Vanilla)
                noised = real with { Images = new Dictionary<string, Tensor>(real.Images) { ["pixel_values"] = VcdNoise.Apply(real.Images["pixel_values"], o.VcdNoiseStep, o.Seed!.Value) } };
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

    /// <summary>Step 4: both branches in one batch, guidance, then the real branch alone; the answer streams as it is chosen.</summary>
    private GuidedResult Decode(RequestRun run, BranchInputs inputs, CancellationToken cancel)
    {
        var o = run.Options;
        var detok = Tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
        var pre = Stopwatch.StartNew();
        int budget = o.Budget(Family, run.Verdict, inputs.Prompt.Length);
        // prefills never run concurrently (compute-bound; concurrent ones only contend for the cores) while other
        // requests' decode steps go on batched; requests waiting at the same time are prefilled as one batch where
        // the family allows it (PrefillBatcher), one at a time otherwise
        int capacity = budget + o.MaxSteps + 1;
        BatchedBranches made;
        if (_prefills is not null)
        {
            var (state, logits) = _prefills.Prefill(inputs.Real, inputs.Noised, capacity, cancel);
            made = new BatchedBranches(Model, state, logits, _batcher);
        }
        else
        {
            _prefillGate.Wait(cancel);
            try { made = new BatchedBranches(Model, inputs.Real, inputs.Noised, capacity, Tokenizer.Pad?.Id ?? 0, _batcher); }
            finally { _prefillGate.Release(); }
        }
        using var branches = made;
        run.PrefillMs = pre.Elapsed.TotalMilliseconds;
        var refusal = ReferenceEquals(o.RefusalPhrases, RefusalTokens.ReferencePhrases) || o.RefusalPhrases.SequenceEqual(Refusal.Phrases)
            ? Refusal : new RefusalTokens(o.RefusalPhrases, _codec, Model.VocabSize);
        var stream = run.Stream;
        var g = GuidedDecoder.Decode(Model, branches, run.Verdict, o, _codec, refusal, _eos, budget,
            stream is null ? null : t => { var s = detok.Push((int)t); if (s.Length > 0) stream(s); }, cancel, _banned);
        if (stream is not null && detok.Flush() is { Length: > 0 } rest) stream(rest);
        return g;
    }

    /// <summary>Step 5: the answer text (EOS dropped), the guided span, the verdict and timings.</summary>
    private SafeCoDeResult Assemble(RequestRun run, EncodedPrompt prompt, GuidedResult g)
    {
        var (r, o) = (run.Request, run.Options);
        var answerIds = g.Tokens.Where(t => !_eosSet.Contains(t)).Select(t => (int)t).ToList();
        var answer = Tokenizer.Decode(answerIds, skipSpecialTokens: true).Trim();
        var guidedText = Tokenizer.Decode(g.Tokens.Take(g.GuidedTokens).Select(t => (int)t).ToList(), skipSpecialTokens: true);
        double totalMs = run.Total.Elapsed.TotalMilliseconds;
        double decodeMs = g.GuidedMs + g.ContinuationMs;
        var timings = new SafeCoDeTimings(run.JudgeMs, run.PrepMs, run.PrefillMs, g.GuidedMs, g.ContinuationMs, totalMs,
            g.Tokens.Length == 0 ? 0 : decodeMs / g.Tokens.Length);
        var j = run.Judged;
        return new SafeCoDeResult(answer, o.Mode == DecodeMode.SafeCoDe ? (run.Verdict == Verdict.Unsafe ? "unsafe" : "safe") : null,
            j?.Caption, j?.RawVerdictReply, j?.Judge ?? (r.Verdict is null ? null : "given"), guidedText, g.GuidedTokens, g.ForcedPhrase,
            prompt.Length, g.Tokens.Length, g.StoppedAtEos, g.Tokens, timings, o, Family, Model.Device.ToString());
    }
}
