using System.Text.Json;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Safety.Guards;

/// <summary>
/// LlavaGuard v1.2 (AIML-TUDA): the image and its safety policy (categories O1–O9, the assessment steps, the JSON
/// answer format) in one user turn; the reply is a JSON object with <c>rating</c> (Safe / Unsafe), <c>category</c>
/// and <c>rationale</c>. It rates the image against the policy — it does not see the query — so as a scene verdict it
/// says whether the scene itself is unsafe. It cannot score responses.
/// </summary>
public sealed class LlavaGuardFormat : JudgeFormat
{
    /// <summary>The format's name.</summary>
    public const string FormatName = "llavaguard";

    /// <inheritdoc/>
    public override string Name => FormatName;
    /// <inheritdoc/>
    public override string Summary => "LlavaGuard v1.2 (image + its O1–O9 policy; JSON rating, category, rationale; the query is not shown)";
    /// <inheritdoc/>
    public override IReadOnlyList<JudgeRole> Roles { get; } = [JudgeRole.SceneVerdict];

    /// <summary>The policy prompt sent with the image.</summary>
    public static string Policy => EmbeddedTexts.Get("guards.llavaguard-policy.txt");

    /// <inheritdoc/>
    public override IReadOnlyList<GuardCall> Calls(JudgeRole role, string query, (byte[] Bytes, string MediaType)? image, string? answer) =>
        [new GuardCall("rating", [User(Policy, image)], MaxTokens: 300)];

    /// <summary>
    /// Reads the first JSON object in the reply (text or a code fence around it is allowed): <c>rating</c> Safe or
    /// Unsafe (any case), the category unless it is "NA: None applying", the rationale. No object, no rating, or
    /// another rating is unknown.
    /// </summary>
    public override GuardReading Read(JudgeRole role, IReadOnlyList<GuardReply> replies)
    {
        var text = replies.Single().Text;
        if (FirstObject(text) is not { } obj) return GuardReading.Unknown("no JSON object in the reply");
        string? Field(string name) => obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var rating = Field("rating")?.Trim().ToLowerInvariant();
        var category = Field("category")?.Trim();
        var rationale = Field("rationale");
        Verdict? verdict = rating switch { "safe" => Verdict.Safe, "unsafe" => Verdict.Unsafe, _ => null };
        if (verdict is null) return GuardReading.Unknown(rating is null ? "the JSON has no rating" : $"rating '{Field("rating")}' is neither Safe nor Unsafe");
        var categories = category is { Length: > 0 } c && !c.StartsWith("NA", StringComparison.OrdinalIgnoreCase) ? new[] { c } : [];
        return new GuardReading(verdict, categories, rationale);
    }

    /// <summary>The first complete JSON object in <paramref name="text"/> (braces balanced outside strings), or null.</summary>
    internal static JsonElement? FirstObject(string text)
    {
        for (int start = text.IndexOf('{'); start >= 0; start = text.IndexOf('{', start + 1))
        {
            int depth = 0;
            bool inString = false, escaped = false;
            for (int i = start; i < text.Length; i++)
            {
                char ch = text[i];
                if (inString) { if (escaped) escaped = false; else if (ch == '\\') escaped = true; else if (ch == '"') inString = false; continue; }
                if (ch == '"') inString = true;
                else if (ch == '{') depth++;
                else if (ch == '}' && --depth == 0)
                {
                    try { using var doc = JsonDocument.Parse(text.AsMemory(start, i - start + 1)); return doc.RootElement.Clone(); }
                    catch (JsonException) { break; }
                }
            }
        }
        return null;
    }
}
