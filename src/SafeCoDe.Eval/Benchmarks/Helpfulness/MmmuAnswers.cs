using System.Globalization;
using System.Text.RegularExpressions;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MMMU's official answer extraction and comparison (MMMU-Benchmark/MMMU @bb0b95a, mmmu/utils/eval_utils.py:
/// <c>parse_multi_choice_response</c>, <c>parse_open_response</c>, <c>eval_multi_choice</c>, <c>eval_open</c>),
/// rewritten in C# step for step.
/// </summary>
internal static partial class MmmuOfficial
{
    private static readonly char[] StripChars = [',', '.', '!', '?', ';', ':', '\''];

    /// <summary>
    /// The option letter a multiple-choice response picks: letters written as "(X)", else as " X ", else (responses of
    /// more than five words) options whose text appears; several → the one found last; none → null (MMMU then picks at
    /// random, see <see cref="RandomPick"/>).
    /// </summary>
    public static string? MultiChoice(string response, IReadOnlyList<string> letters, IReadOnlyDictionary<string, string> optionText)
    {
        foreach (var c in StripChars) response = response.Trim(c); // Python strips one character after the other
        response = " " + response + " ";
        var candidates = letters.Where(l => response.Contains($"({l})", StringComparison.Ordinal)).ToList();
        bool bracketed = candidates.Count > 0, byText = false;
        if (candidates.Count == 0) candidates = letters.Where(l => response.Contains($" {l} ", StringComparison.Ordinal)).ToList();
        if (candidates.Count == 0 && response.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length > 5)
        {
            candidates = optionText.Where(kv => response.Contains(kv.Value, StringComparison.OrdinalIgnoreCase)).Select(kv => kv.Key).ToList();
            byText = true;
        }
        if (candidates.Count == 0) return null;
        if (candidates.Count == 1) return candidates[0];
        int Last(string l) => byText ? response.ToLowerInvariant().LastIndexOf(optionText[l].ToLowerInvariant(), StringComparison.Ordinal)
            : response.LastIndexOf(bracketed ? $"({l})" : $" {l} ", StringComparison.Ordinal);
        var best = candidates[0];
        foreach (var l in candidates.Skip(1)) if (Last(l) > Last(best)) best = l; // numpy argmax: the first of equal maxima
        return best;
    }

    /// <summary>
    /// MMMU picks a random letter (its module seeds Python's <c>random</c> with 42, so the pick depends on the order
    /// of the whole run, which is not reproduced); here the pick is fixed by the sample id so reruns agree.
    /// </summary>
    public static string RandomPick(string sampleId, IReadOnlyList<string> letters)
    {
        uint h = 2166136261;
        foreach (var ch in sampleId) h = (h ^ ch) * 16777619;
        return letters[(int)(h % (uint)letters.Count)];
    }

    /// <summary>One normalised candidate: a number rounded to 2 places, or lower-case text.</summary>
    public readonly record struct Norm(double? Number, string? Text);

    private static readonly string[] Indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "];

    [GeneratedRegex(@"\.\s(?=[A-Z])|\n")]
    private static partial Regex Sentences();

    [GeneratedRegex(@"-?\b\d{1,3}(?:,\d{3})+\b")]
    private static partial Regex CommaNumbers();

    [GeneratedRegex(@"-?\d+(?:\.\d+)?[eE][+-]?\d+")]
    private static partial Regex ScientificNumbers();

    [GeneratedRegex(@"-?(?:\d+\.\d+|\.\d+|\d+)(?![eE][+-]?\d+)(?![,\d])")]
    private static partial Regex SimpleNumbers();

    /// <summary>
    /// The candidates of an open response: per line, the shortest tail after a key phrase ("is ", "so ", …, and "="
    /// in the last one; the response is lower-cased first, so MMMU's split before a capital never fires), else the
    /// whole response; plus every number in them; each normalised, duplicates removed.
    /// </summary>
    public static IReadOnlyList<Norm> Open(string response)
    {
        var keys = KeyResponses(response);
        var all = new List<string>(keys);
        foreach (var k in keys)
        {
            all.AddRange(CommaNumbers().Matches(k).Select(m => m.Value));
            all.AddRange(ScientificNumbers().Matches(k).Select(m => m.Value));
            all.AddRange(SimpleNumbers().Matches(k).Select(m => m.Value));
        }
        return all.SelectMany(Normalize).Distinct().ToList();
    }

    private static List<string> KeyResponses(string response)
    {
        var lower = response.Trim().Trim('.').ToLowerInvariant();
        var parts = Sentences().Split(lower);
        var keys = new List<string>();
        for (int i = 0; i < parts.Length; i++)
        {
            var indicators = i == parts.Length - 1 ? [.. Indicators, "="] : Indicators;
            string? shortest = null;
            foreach (var ind in indicators.Where(ind => parts[i].Contains(ind, StringComparison.Ordinal)))
            {
                var tail = parts[i].Split(ind)[^1].Trim();
                if (shortest is null || tail.Length < shortest.Length) shortest = tail;
            }
            if (!string.IsNullOrEmpty(shortest) && shortest.Trim() is not (":" or "," or "." or "!" or "?" or ";" or "'")) keys.Add(shortest);
        }
        return keys.Count == 0 ? [lower] : keys;
    }

    /// <summary>MMMU's <c>normalize_str</c>: a number → rounded to 2 places; text → lower case (one character → " x" and "x ").</summary>
    public static IEnumerable<Norm> Normalize(string s)
    {
        s = s.Trim();
        if (double.TryParse(s.Replace(",", ""), NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
            return [new Norm(Math.Round(d, 2, MidpointRounding.ToEven), null)];
        var lower = s.ToLowerInvariant();
        return lower.Length == 1 ? [new Norm(null, " " + lower), new Norm(null, lower + " ")] : [new Norm(null, lower)];
    }

    /// <summary>MMMU's <c>eval_open</c>: a text candidate is right when a normalised gold text is inside it; a number when it equals a gold number.</summary>
    public static bool OpenCorrect(IReadOnlyList<Norm> predicted, IEnumerable<string> gold)
    {
        var golds = gold.SelectMany(Normalize).ToList();
        foreach (var p in predicted)
        {
            if (p.Text is { } t && golds.Any(g => g.Text is { } gt && t.Contains(gt, StringComparison.Ordinal))) return true;
            if (p.Number is { } n && golds.Any(g => g.Number == n)) return true;
        }
        return false;
    }
}

/// <summary>
/// VLMEvalKit's option matching (open-compass/VLMEvalKit @989e33b, vlmeval/utils/matching_util.py <c>can_infer</c>),
/// rewritten in C#: punctuation to spaces and exactly one option letter among the words → it; no letter but a lone
/// "Z" → Z; a refusal → Z; else exactly one option's text inside the answer (lower case) → it; otherwise nothing.
/// </summary>
internal static class VlmEvalMatching
{
    /// <summary>The API failure text VLMEvalKit stores as a prediction (spec §1.4); never matched.</summary>
    public const string ApiFailure = "Failed to obtain answer via API";

    /// <summary>The refusal VLMEvalKit maps to Z (the spec names this one; VLMEvalKit's list also holds a few image-API error texts).</summary>
    public const string CannotDetermine = "Cannot determine the answer";

    private const string Punctuation = ".()[],:;!*#{}";

    /// <summary>The inferred letter (or "Z"), or null.</summary>
    public static string? CanInfer(string answer, IReadOnlyDictionary<string, string> choices)
    {
        if (answer.Contains(ApiFailure, StringComparison.Ordinal)) return Text(answer, choices);
        if (answer.Contains(CannotDetermine, StringComparison.Ordinal)) return "Z";
        var mod = answer;
        foreach (var c in Punctuation) mod = mod.Replace(c, ' ');
        var words = mod.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var found = choices.Keys.Where(words.Contains).ToList();
        if (found.Count == 1) return found[0];
        if (found.Count == 0 && words.Contains("Z")) return "Z";
        return Text(answer, choices);
    }

    private static string? Text(string answer, IReadOnlyDictionary<string, string> choices)
    {
        var lower = answer.ToLowerInvariant();
        var hits = choices.Where(kv => lower.Contains(kv.Value.ToLowerInvariant(), StringComparison.Ordinal)).Select(kv => kv.Key).ToList();
        return hits.Count == 1 ? hits[0] : null;
    }
}
