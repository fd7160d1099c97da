using Microsoft.Extensions.AI;

namespace SafeCoDe.Torch.Safety.Guards;

/// <summary>The two places a judge serves: SafeCoDe's scene verdict before decoding, and scoring an answer after it.</summary>
public enum JudgeRole
{
    /// <summary>Query + image → safe/unsafe, SafeCoDe's stage 2 (the judge sees no answer).</summary>
    SceneVerdict,
    /// <summary>Query + image + answer → harmful or not (a benchmark's attack-success metric).</summary>
    ResponseScore,
}

/// <summary>What one call to a guard model asks: its messages, its token limit, and whether token log-probabilities are needed.</summary>
/// <param name="What">A short name for errors and records (e.g. "verdict", "policy dangerous").</param>
/// <param name="Messages">The chat messages sent.</param>
/// <param name="MaxTokens">The reply's token limit.</param>
/// <param name="LogProbs">Ask the endpoint for the first reply token's top log-probabilities (OpenAI's <c>logprobs</c>).</param>
public sealed record GuardCall(string What, IReadOnlyList<ChatMessage> Messages, int MaxTokens, bool LogProbs = false);

/// <summary>A guard model's reply to one call: its text and, when asked, the first token's top alternatives as (token, log-probability).</summary>
public sealed record GuardReply(string Text, IReadOnlyList<(string Token, double LogProb)>? FirstTokenTop = null);

/// <summary>What a guard's replies say: the verdict (null: not understood), the violated categories, its rating, rationale and score.</summary>
/// <param name="Verdict">Unsafe/harmful or safe; null when the replies could not be read (the unknown-verdict policy decides).</param>
/// <param name="Categories">Violated categories as the format names them (e.g. "S1: Violent Crimes", "O2: Violence, Harm, or Cruelty").</param>
/// <param name="Rationale">The guard's stated reason, when it gives one.</param>
/// <param name="Score">A probability of "unsafe" when the format defines one (ShieldGemma's P(Yes)).</param>
public sealed record GuardReading(Verdict? Verdict, IReadOnlyList<string> Categories, string? Rationale = null, double? Score = null)
{
    /// <summary>A reply that could not be read.</summary>
    public static GuardReading Unknown(string? why = null) => new(null, [], why);
}

/// <summary>
/// How one guard model family is asked and how its replies are read: the prompts it is given for each role it can
/// serve, and a parser that fails closed (an unreadable reply is <see cref="GuardReading.Unknown"/>, never safe).
/// One descriptor per family, registered in <see cref="JudgeFormats"/>.
/// </summary>
public abstract class JudgeFormat
{
    /// <summary>The name <c>--judge-format</c> and <c>--scorer-format</c> take.</summary>
    public abstract string Name { get; }
    /// <summary>One line for <c>--help</c>.</summary>
    public abstract string Summary { get; }
    /// <summary>The roles this format can serve.</summary>
    public abstract IReadOnlyList<JudgeRole> Roles { get; }

    /// <summary>The calls one judgement makes (several for a format that asks one policy per call).</summary>
    /// <param name="role">The role asked.</param>
    /// <param name="query">The user's query.</param>
    /// <param name="image">The image bytes and media type (null: none).</param>
    /// <param name="answer">The answer to score (response role only).</param>
    public abstract IReadOnlyList<GuardCall> Calls(JudgeRole role, string query, (byte[] Bytes, string MediaType)? image, string? answer);

    /// <summary>Reads the replies to <see cref="Calls"/>, in the same order.</summary>
    public abstract GuardReading Read(JudgeRole role, IReadOnlyList<GuardReply> replies);

    /// <summary>Fails when this format cannot serve <paramref name="role"/>, naming the option and the formats that can.</summary>
    /// <exception cref="ArgumentException">It cannot.</exception>
    public void CheckRole(JudgeRole role, string option)
    {
        if (Roles.Contains(role)) return;
        var can = JudgeFormats.All.Where(f => f.Roles.Contains(role)).Select(f => f.Name);
        throw new ArgumentException($"{option} {Name}: {Summary}; it cannot serve the {(role == JudgeRole.SceneVerdict ? "scene verdict (--judge-format)" : "response scoring (--scorer-format)")} role — formats that can: {string.Join(", ", can)}");
    }

    /// <summary>A user message of text and, when given, the image (the image first, as the guards' cards show it).</summary>
    protected static ChatMessage User(string text, (byte[] Bytes, string MediaType)? image, bool imageFirst = true)
    {
        var content = new List<AIContent>();
        if (image is { } i && imageFirst) content.Add(new DataContent(i.Bytes, i.MediaType));
        content.Add(new TextContent(text));
        if (image is { } j && !imageFirst) content.Add(new DataContent(j.Bytes, j.MediaType));
        return new ChatMessage(ChatRole.User, content);
    }
}
