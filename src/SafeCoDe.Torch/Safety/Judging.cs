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
    /// <summary>The image already decoded by the caller (the engine), so model-based judges see exactly its pixels.</summary>
    public SafeCoDe.Torch.Processing.Images.RgbImage? Image { get; init; }

    /// <summary>SHA-256 of the image bytes (hex), the cache key's image part; "none" without an image.</summary>
    public string ImageHash => ImageBytes is null ? "none" : Convert.ToHexString(SHA256.HashData(ImageBytes)).ToLowerInvariant();
}

/// <summary>A judge's answer: verdict, the caption it reasoned from, its raw replies and how long it took.</summary>
public sealed record JudgeResult(
    Verdict Verdict, string Caption, string RawVerdictReply, bool VerdictParsed, string Judge, double LatencyMs, double CaptionMs = 0, double VerdictMs = 0);

/// <summary>Scene-level reasoning: caption the image, then decide safe/unsafe for the query in that scene.</summary>
public interface ISafetyJudge
{
    /// <summary>Short name recorded with every result (e.g. "fixed:safe", "openai:gpt-4o", "self").</summary>
    string Name { get; }

    /// <summary>Judges one request.</summary>
    /// <exception cref="JudgeException">The judge failed for good (implementations document when).</exception>
    Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default);
}

/// <summary>Turns a judge's free-text reply into a verdict.</summary>
public static class VerdictParser
{
    // "unsafe" is tried first: "safe" is a substring of it, and a reply naming both means caution.
    private static readonly Regex Unsafe = new(@"\bunsafe\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    private static readonly Regex Safe = new(@"\bsafe\b", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    /// <summary>Returns the verdict and whether the reply contained one; an unparseable reply counts as safe (as the reference's local judge does).</summary>
    public static (Verdict verdict, bool parsed) Parse(string? reply)
    {
        if (string.IsNullOrWhiteSpace(reply)) return (Verdict.Safe, false);
        if (Unsafe.IsMatch(reply)) return (Verdict.Unsafe, true);
        if (Safe.IsMatch(reply)) return (Verdict.Safe, true);
        return (Verdict.Safe, false);
    }
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
            sb.AppendLine($"Prompt: \"{q}\"");
            sb.AppendLine($"Caption: \"{c}\"");
            sb.AppendLine($"Decision: {d}");
            if (withReasons) sb.AppendLine($"Reason: {r}");
            sb.AppendLine();
        }
        sb.AppendLine($"Prompt: \"{query}\"");
        sb.AppendLine($"Caption: \"{caption}\"");
        sb.Append("Decision:");
        return sb.ToString();
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

    /// <summary>Captions, then decides; the verdict is parsed with <see cref="VerdictParser.Parse"/> (unparseable counts as safe).</summary>
    public async Task<JudgeResult> JudgeAsync(JudgeRequest request, CancellationToken cancel = default)
    {
        var sw = Stopwatch.StartNew();
        var caption = (await CaptionAsync(request, cancel).ConfigureAwait(false)).Trim();
        double captionMs = sw.Elapsed.TotalMilliseconds;
        var reply = await DecideAsync(request, caption, cancel).ConfigureAwait(false);
        double total = sw.Elapsed.TotalMilliseconds;
        var (v, parsed) = VerdictParser.Parse(reply);
        return new JudgeResult(v, caption, reply, parsed, Name, total, captionMs, total - captionMs);
    }
}
