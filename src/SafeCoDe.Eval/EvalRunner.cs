using System.Diagnostics;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;
using SafeCoDe.Torch;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval;

/// <summary>Answers one prompt of a sample (the engine in production; anything in tests).</summary>
public interface IEvalGenerator
{
    /// <summary>Generates the answer to one prompt.</summary>
    Task<SafeCoDeResult> GenerateAsync(EvalPrompt prompt, CancellationToken cancel);
}

/// <summary>
/// Prompts through a loaded <see cref="SafeCoDeEngine"/> with fixed decode options and scene judge. The user turn is
/// the benchmark's framing of the question (<see cref="PromptFraming.Frame(EvalPrompt, bool)"/>; method framing
/// for methods that frame as SafeCoDe does); the scene judge is asked about the raw question (<see cref="SafeCoDeRequest.JudgeQuery"/>). With no judge given the engine's model judges itself.
/// </summary>
public sealed class EngineGenerator(SafeCoDeEngine engine, SafeCoDe.Torch.Decoding.Methods.DecodingOptions options, ISafetyJudge? judge = null, string? systemOverride = null) : IEvalGenerator
{
    /// <summary>True when prompts get the SafeCoDe (method) framing (default: the method's own choice).</summary>
    public bool MethodFraming { get; init; } = SafeCoDe.Torch.Decoding.Methods.DecodingMethods.Of(options).FramesAsMethod;

    /// <summary>The system turn sent with a prompt (the run's override, else the record's own).</summary>
    public string? SystemText(EvalPrompt prompt) => systemOverride ?? prompt.System;

    /// <summary>The user-turn text of a prompt.</summary>
    public string UserText(EvalPrompt prompt) => PromptFraming.Frame(prompt, MethodFraming);

    /// <inheritdoc/>
    public Task<SafeCoDeResult> GenerateAsync(EvalPrompt prompt, CancellationToken cancel) =>
        engine.GenerateAsync(new SafeCoDeRequest
        {
            Prompt = UserText(prompt),
            SystemPrompt = systemOverride ?? prompt.System,
            ImagePath = prompt.MoreImages.Count == 0 && prompt.Image is ImageRef.File f ? f.Path : null,
            ImageBytes = prompt.MoreImages.Count == 0 && prompt.Image is ImageRef.Embedded e ? e.Bytes : null,
            Image = prompt.MoreImages.Count == 0 ? null : ImageStrip.Combine(prompt, engine.ImageLimits),
            Options = options,
            Judge = judge,
            JudgeQuery = prompt.Question,
        }, cancel);
}

/// <summary>Where a run stands (reported after every sample).</summary>
public sealed record RunProgress(int Done, int Total, int Problems, int Failed, int Resumed, TimeSpan Elapsed, string? LastId)
{
    /// <summary>Samples per second so far.</summary>
    public double Rate => Elapsed.TotalSeconds > 0 ? (Done + Problems + Failed) / Elapsed.TotalSeconds : 0;
    /// <summary>Estimated time to the end.</summary>
    public TimeSpan? Eta => Rate > 0 ? TimeSpan.FromSeconds((Total - Done - Problems - Failed) / Rate) : null;
}

/// <summary>What a run did this time.</summary>
public sealed record RunSummary(int Selected, int Resumed, int Done, int Problems, int Failed, TimeSpan Elapsed, IReadOnlyList<string> Failures);

/// <summary>Selection of the records a run covers.</summary>
public sealed record RunSelection(int? Limit = null, ShardSpec? Shard = null)
{
    /// <summary>
    /// The ids this selection runs, in reader order: the first <see cref="Limit"/> records (samples and problems)
    /// of the benchmark, then those of <see cref="Shard"/>.
    /// </summary>
    public List<string> Ids(IEnumerable<ReadItem> items)
    {
        var ids = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int n = 0;
        foreach (var item in items)
        {
            if (Limit is { } l && n >= l) break;
            n++;
            var id = item.Sample?.Id ?? item.Problem!.Id;
            if (!seen.Add(id)) continue;
            if (Shard is null || Shard.Contains(id)) ids.Add(id);
        }
        return ids;
    }
}

/// <summary>
/// Runs a benchmark into a <see cref="RunStore"/>: every selected sample not finished yet is generated (each of its
/// prompts), scored, and appended as one record; a bad record or a generation that fails on its data goes to
/// problems.jsonl; a failure that is not the data's (e.g. the judge endpoint is down) is reported and left for the
/// next rerun. Nothing stops the run but cancellation.
/// </summary>
public sealed class EvalRunner(RunStore store, IEvalGenerator generator, IScorer? scorer)
{
    /// <summary>
    /// Samples generated at once (default 1). With a <see cref="SafeCoDeEngine"/> generator, concurrent samples decode
    /// as rows of one batch (<see cref="EngineOptions.MaxBatchRows"/>); each sample's result is the one it gets alone.
    /// Records are appended as samples finish, so their order in records.jsonl may differ from the benchmark's.
    /// </summary>
    public int Concurrency { get; init; } = 1;

    /// <summary>
    /// Runs the records <paramref name="read"/> yields (it is called twice, with an id filter for the reader: once to
    /// select ids — limit, then shard — and once to run those not finished yet).
    /// </summary>
    public async Task<RunSummary> RunAsync(Func<Func<string, bool>?, IEnumerable<ReadItem>> read, RunSelection selection, IProgress<RunProgress>? progress = null, CancellationToken cancel = default)
    {
        if (Concurrency < 1) throw new ArgumentOutOfRangeException(nameof(Concurrency), Concurrency, "at least one sample at a time");
        Func<string, bool>? first = selection.Limit is null && selection.Shard is { } sh ? sh.Contains : null;
        var selected = selection.Ids(read(first));
        var todo = new HashSet<string>(selected.Where(id => !store.IsFinished(id)), StringComparer.Ordinal);
        var wanted = new HashSet<string>(todo, StringComparer.Ordinal);
        var tally = new Tally(selected.Count - todo.Count, todo.Count);
        progress?.Report(tally.Progress(null));
        var inFlight = new List<(string Id, Task<RunRecord> Work)>();
        foreach (var item in todo.Count == 0 ? [] : read(wanted.Contains))
        {
            if (todo.Count == 0) break;
            var id = item.Sample?.Id ?? item.Problem!.Id;
            if (!todo.Remove(id)) continue;
            cancel.ThrowIfCancellationRequested();
            if (item.Problem is { } p)
            {
                store.AddProblem(new ProblemRecord(p.Id, p.Reason));
                tally.Problems++;
                progress?.Report(tally.Progress(id));
                continue;
            }
            inFlight.Add((id, RunSampleAsync(item.Sample!, cancel)));
            if (inFlight.Count >= Concurrency) await FinishOneAsync(inFlight, tally, progress, cancel).ConfigureAwait(false);
        }
        while (inFlight.Count > 0) await FinishOneAsync(inFlight, tally, progress, cancel).ConfigureAwait(false);
        return new RunSummary(selected.Count, tally.Resumed, tally.Done, tally.Problems, tally.Failed, tally.Clock.Elapsed, tally.Failures);
    }

    /// <summary>Counts of one run (touched only by the loop that awaits the samples, never by the samples themselves).</summary>
    private sealed class Tally(int resumed, int todo)
    {
        public int Resumed { get; } = resumed;
        public int Pending { get; } = todo;
        public int Done { get; set; }
        public int Problems { get; set; }
        public int Failed { get; set; }
        public List<string> Failures { get; } = [];
        public Stopwatch Clock { get; } = Stopwatch.StartNew();
        public RunProgress Progress(string? lastId) => new(Done, Pending, Problems, Failed, Resumed, Clock.Elapsed, lastId);
    }

    /// <summary>Waits for the first of the samples in flight to finish and records it (a record, a problem or a failure).</summary>
    private async Task FinishOneAsync(List<(string Id, Task<RunRecord> Work)> inFlight, Tally tally, IProgress<RunProgress>? progress, CancellationToken cancel)
    {
        var finished = await Task.WhenAny(inFlight.Select(f => f.Work)).ConfigureAwait(false);
        int at = inFlight.FindIndex(f => f.Work == finished);
        var id = inFlight[at].Id;
        inFlight.RemoveAt(at);
        try
        {
            store.Append(await finished.ConfigureAwait(false));
            tally.Done++;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await Task.WhenAll(inFlight.Select(f => f.Work.ContinueWith(_ => { }, TaskScheduler.Default))).ConfigureAwait(false);
            throw;
        }
        catch (Exception e) when (IsDataProblem(e))
        {
            store.AddProblem(new ProblemRecord(id, e.Message, "generate"));
            tally.Problems++;
        }
        catch (Exception e)
        {
            tally.Failed++;
            tally.Failures.Add($"{id}: {e.GetType().Name}: {e.Message}");
        }
        progress?.Report(tally.Progress(id));
    }

    /// <summary>Errors that come from the sample's data (bad image, bad text), not from the machine or a service.</summary>
    public static bool IsDataProblem(Exception e) =>
        e is SafeCoDe.Torch.Processing.Images.ImageDecodeException or ArgumentException or FormatException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException;

    private async Task<RunRecord> RunSampleAsync(EvalSample sample, CancellationToken cancel)
    {
        var outputs = new List<RunOutput>();
        foreach (var prompt in sample.Prompts)
        {
            var r = await generator.GenerateAsync(prompt, cancel).ConfigureAwait(false);
            var userText = generator is EngineGenerator g ? g.UserText(prompt) : null;
            var output = new RunOutput
            {
                Key = prompt.Key, Question = prompt.Question, UserText = userText,
                DecodedText = r.DecodedPrompt.Length > 0 && r.DecodedPrompt != userText ? r.DecodedPrompt : null,
                DecodedSystem = r.DecodedSystemPrompt is { } ds && ds != (generator is EngineGenerator eg ? eg.SystemText(prompt) : prompt.System) ? ds : null,
                AnswerReplaced = r.AnswerReplaced, RefusedBeforeDecoding = r.Refused, Steps = r.Steps.Count == 0 ? null : r.Steps,
                System = prompt.System, Image = Describe(prompt.Image),
                Images = prompt.MoreImages.Count == 0 ? null : [Describe(prompt.Image)!, .. prompt.MoreImages.Select(i => Describe(i)!)],
                ImageNote = ImageStrip.Note(prompt),
                Answer = r.Answer, Verdict = r.Verdict, Caption = r.Caption, RawVerdict = r.RawVerdict, Judge = r.Judge,
                JudgeFormat = r.JudgeFormat, JudgeCategories = r.JudgeCategories, JudgeRationale = r.JudgeRationale, JudgeScore = r.JudgeScore,
                GuidedText = r.GuidedText, GuidedTokens = r.GuidedTokens, ForcedPhrase = r.ForcedPhrase,
                PromptTokens = r.PromptTokens, GeneratedTokens = r.GeneratedTokens, Seed = r.Options.Seed,
                Timings = new OutputTimings
                {
                    JudgeMs = r.Timings.JudgeMs, PreprocessMs = r.Timings.PreprocessMs, PrefillMs = r.Timings.PrefillMs,
                    GuidedMs = r.Timings.GuidedMs, DecodeMs = r.Timings.ContinuationMs, TotalMs = r.Timings.TotalMs,
                },
            };
            if (scorer is not null) output = await ScoreOutputAsync(scorer, sample.Benchmark, sample.Id, sample.Groups, sample.Labels, output, prompt.Image, cancel).ConfigureAwait(false);
            outputs.Add(output);
        }
        return new RunRecord
        {
            Id = sample.Id, Benchmark = sample.Benchmark, Groups = sample.Groups, Labels = sample.Labels, Outputs = outputs,
            FinishedAt = DateTime.UtcNow.ToString("o"),
        };
    }

    /// <summary>
    /// True when <paramref name="scorer"/> shows the judge the image of this sample's answers: a guard model always
    /// sees the conversation with its image; a benchmark's own judge when its rubric says so.
    /// </summary>
    public static bool NeedsImage(IScorer scorer, string benchmark, string id, IReadOnlyDictionary<string, string> groups) =>
        scorer is GuardScorer
        || scorer is not (KeywordScorer or RuleScorer) && Benchmarks.EvalBenchmarks.Get(benchmark).RubricFor(id, groups).Text.AttachImage;

    /// <summary>
    /// Scores one output and returns it with the score and the scoring time. The image the judge sees is
    /// <paramref name="image"/> (from the benchmark's reader), never the path recorded in the output: a record is an
    /// editable file, and its path could name anything on the disk.
    /// </summary>
    public static async Task<RunOutput> ScoreOutputAsync(IScorer scorer, string benchmark, string id, IReadOnlyDictionary<string, string> groups,
        IReadOnlyDictionary<string, string> labels, RunOutput output, ImageRef? image, CancellationToken cancel)
    {
        byte[]? bytes = null;
        string media = "image/png";
        if (NeedsImage(scorer, benchmark, id, groups))
            (bytes, media) = ReadImage(image);
        var score = await scorer.ScoreAsync(new ScoreInput(benchmark, id, output.Key, output.Question, output.Answer, groups, labels, bytes, media), cancel).ConfigureAwait(false);
        return output with { Score = score, Timings = output.Timings with { ScoreMs = score.LatencyMs } };
    }

    private static (byte[]? bytes, string media) ReadImage(ImageRef? image)
    {
        byte[]? bytes = image switch
        {
            ImageRef.Embedded e => e.Bytes,
            ImageRef.File f => SafeCoDe.Torch.Processing.Images.ImageDecoder.ReadBytes(f.Path), // bounded, regular files only
            _ => null,
        };
        if (bytes is null) return (null, "image/png");
        string media = bytes.Length > 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 ? "image/jpeg"
            : bytes.Length > 12 && bytes[8] == (byte)'W' && bytes[9] == (byte)'E' && bytes[10] == (byte)'B' ? "image/webp"
            : bytes.Length > 2 && bytes[0] == (byte)'G' && bytes[1] == (byte)'I' ? "image/gif" : "image/png";
        return (bytes, media);
    }

    private static string? Describe(ImageRef? image) => image switch
    {
        ImageRef.File f => f.Path,
        ImageRef.Embedded e => e.Origin,
        _ => null,
    };
}
