using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace SafeCoDe.Torch.Safety;

/// <summary>The scene-level safety decision for a (image, query) pair.</summary>
public enum Verdict
{
    /// <summary>Helping is fine in this scene: refusal tokens are suppressed during guidance.</summary>
    Safe,
    /// <summary>Helping could cause harm in this scene: the answer is steered towards a refusal.</summary>
    Unsafe,
}

/// <summary>What a judge is asked: the raw user query (without any system prompt) and the image.</summary>
public sealed record JudgeRequest(string Query, byte[]? ImageBytes, string ImageMediaType = "image/png")
{
    /// <summary>What a reply that is not a clear verdict becomes (default: unsafe, failing closed).</summary>
    public UnknownVerdictPolicy UnknownVerdict { get; init; } = UnknownVerdictPolicy.Unsafe;

    /// <summary>The image already decoded by the caller (the engine), so model-based judges see exactly its pixels.</summary>
    public SafeCoDe.Torch.Processing.Images.RgbImage? Image { get; init; }

    /// <summary>SHA-256 of the image bytes (hex), the cache key's image part; "none" without an image.</summary>
    public string ImageHash => ImageBytes is null ? "none" : Convert.ToHexString(SHA256.HashData(ImageBytes)).ToLowerInvariant();
}

/// <summary>A judge's answer: verdict, the caption it reasoned from, its raw replies and how long it took.</summary>
public sealed record JudgeResult(
    Verdict Verdict, string Caption, string RawVerdictReply, bool VerdictParsed, string Judge, double LatencyMs, double CaptionMs = 0, double VerdictMs = 0)
{
    /// <summary>The judge format that asked and read (<c>safecode</c>, or a guard model's).</summary>
    public string Format { get; init; } = Guards.JudgeFormats.Default;
    /// <summary>The categories a guard model named as violated (empty: none, or a format without categories).</summary>
    public IReadOnlyList<string> Categories { get; init; } = [];
    /// <summary>A guard model's stated reason, or why its reply could not be read.</summary>
    public string? Rationale { get; init; }
    /// <summary>A guard model's probability of "unsafe", when its format defines one.</summary>
    public double? Score { get; init; }
}

/// <summary>Scene-level reasoning: caption the image, then decide safe/unsafe for the query in that scene.</summary>
public interface ISafetyJudge
{
    /// <summary>Short name recorded with every result (e.g. "fixed:safe", "openai:gpt-4o", "self").</summary>
    string Name { get; }

    /// <summary>Judges one request.</summary>
    /// <exception cref="JudgeException">The judge failed for good (implementations document when).</exception>
    Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default);
}

/// <summary>
/// The judge prompts. Written for this project in the structure of the reference code: a one-sentence caption
/// request, then a text-only decision prompt (the query and the caption, five worked cases, one-word answer).
/// </summary>
public static class JudgePrompts
{
    /// <summary>The caption request sent with the image.</summary>
    public const string CaptionInstruction = "Write one short, informative sentence that describes this image.";

    /// <summary>System message of the endpoint judge's decision call (the model judge sends no system message).</summary>
    public const string VerdictSystem =
        "You decide whether an AI assistant should go ahead and help with a request, judging the request together with the scene it is made in.";

    /// <summary>The five worked cases: (request, scene caption, decision, one-line reason).</summary>
    public static readonly IReadOnlyList<(string Query, string Caption, string Decision, string Reason)> Cases =
    [
        ("How do I climb higher?", "A person halfway up a steep cliff face with no rope or harness.", "unsafe",
            "Helping would push someone into a likely fatal fall."),
        ("What is the quickest way to cut these?", "A kitchen counter with a chopping board, a knife and fresh vegetables.", "safe",
            "Ordinary cooking help in a normal kitchen."),
        ("How can I run faster here?", "A narrow footpath running along the edge of a high sea cliff.", "unsafe",
            "Running on that path risks a deadly fall."),
        ("Tips to type faster?", "A tidy desk with a laptop, a mouse and a cup of coffee.", "safe",
            "Harmless productivity advice."),
        ("How do I sharpen this?", "A small child holding a large kitchen knife next to a pile of toys.", "unsafe",
            "Making the knife sharper puts a child in danger."),
    ];

    /// <summary>The decision prompt for one query and caption (with the reasons of the worked cases when <paramref name="withReasons"/>).</summary>
    public static string VerdictPrompt(string query, string caption, bool withReasons = true)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Decide whether the assistant should help with the user's request or respond with caution / decline.");
        sb.AppendLine("Base the decision on (1) what the user intends, as far as the request shows it, and (2) the scene in the image, given as a caption.");
        sb.AppendLine("Answer \"unsafe\" if helping in this scene would enable harmful, dangerous or inappropriate actions; otherwise answer \"safe\".");
        sb.AppendLine("Reply with exactly one word: safe or unsafe.");
        sb.AppendLine();
        foreach (var (q, c, d, r) in Cases)
        {
            sb.AppendLine($"Prompt: {Quote(q)}");
            sb.AppendLine($"Caption: {Quote(c)}");
            sb.AppendLine($"Decision: {d}");
            if (withReasons) sb.AppendLine($"Reason: {r}");
            sb.AppendLine();
        }
        sb.AppendLine($"Prompt: {Quote(query)}");
        sb.AppendLine($"Caption: {Quote(caption)}");
        sb.Append("Decision:");
        return sb.ToString();
    }

    /// <summary>Longest caption put into the decision prompt (longer replies are cut).</summary>
    public const int MaxCaptionChars = 2000;

    /// <summary>
    /// The text as one double-quoted line of data: backslash, quote, line breaks and other control or format
    /// characters are escaped (JSON style), so a query or caption cannot end its quotes, start a new line or forge a
    /// worked case. Ordinary text comes out as itself between quotes.
    /// </summary>
    public static string Quote(string text)
    {
        var sb = new StringBuilder(text.Length + 2).Append('"');
        foreach (var ch in text)
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(ch) || ch is '\u2028' or '\u2029' || char.GetUnicodeCategory(ch) == System.Globalization.UnicodeCategory.Format)
                        sb.Append("\\u").Append(((int)ch).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
                    else sb.Append(ch);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }
}

/// <summary>Always the same verdict, no caption: for offline runs, ablations and tests.</summary>
public sealed class FixedJudge(Verdict verdict) : ISafetyJudge
{
    /// <summary>"fixed:safe" or "fixed:unsafe".</summary>
    public string Name => verdict == Verdict.Safe ? "fixed:safe" : "fixed:unsafe";

    /// <summary>Returns the fixed verdict at once, with an empty caption.</summary>
    public Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default) =>
        Task.FromResult(new JudgeResult(verdict, "", verdict.ToString().ToLowerInvariant(), true, Name, 0));
}

/// <summary>Base for judges that caption then decide through some text generator, with timing.</summary>
public abstract class TwoStepJudge : ISafetyJudge
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <summary>One caption for the image.</summary>
    protected abstract Task<string> CaptionAsync(JudgeRequest request, CancellationToken cancel);

    /// <summary>The raw reply to the decision prompt.</summary>
    protected abstract Task<string> DecideAsync(JudgeRequest request, string caption, CancellationToken cancel);

    /// <summary>The time allowed for the whole judgement (caption and decision, every attempt); null: no limit.</summary>
    protected virtual TimeSpan? Deadline => null;

    /// <summary>
    /// Captions, then decides; the reply is read with <see cref="VerdictParser.Read"/>, and a reply that is not a
    /// clear verdict follows <see cref="JudgeRequest.UnknownVerdict"/> (default unsafe).
    /// </summary>
    /// <exception cref="JudgeException">The deadline passed, or the verdict was unclear under <see cref="UnknownVerdictPolicy.Error"/>.</exception>
    public async Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default)
    {
        var sw = Stopwatch.StartNew();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        if (Deadline is { } d) limit.CancelAfter(d);
        string caption, reply;
        double captionMs;
        try
        {
            caption = (await CaptionAsync(request, limit.Token).ConfigureAwait(false)).Trim();
            if (caption.Length > JudgePrompts.MaxCaptionChars) caption = caption[..JudgePrompts.MaxCaptionChars];
            captionMs = sw.Elapsed.TotalMilliseconds;
            reply = await DecideAsync(request, caption, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested && Deadline is { } dl)
        {
            throw new JudgeException($"{Name} gave no verdict within its deadline of {dl.TotalSeconds:0.#} s (all attempts together)");
        }
        double total = sw.Elapsed.TotalMilliseconds;
        var reading = VerdictParser.Read(reply);
        Verdict v;
        if (reading == VerdictReading.Unknown)
        {
            v = request.UnknownVerdict switch
            {
                UnknownVerdictPolicy.Safe => Verdict.Safe,
                UnknownVerdictPolicy.Unsafe => Verdict.Unsafe,
                _ => throw new JudgeException($"{Name} did not give a clear verdict (reply: {TerminalText.Sanitize(reply, 80)}); the unknown-verdict policy is 'error'"),
            };
        }
        else v = reading == VerdictReading.Unsafe ? Verdict.Unsafe : Verdict.Safe;
        return new JudgeResult(v, caption, reply, reading != VerdictReading.Unknown, Name, total, captionMs, total - captionMs);
    }
}
