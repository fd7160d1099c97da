using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// MathVista's answer handling in both scorers' terms: the official pre-extraction and normalisation
/// (lupantech/MathVista @53d5258 evaluation/extract_answer.py, calculate_score.py) and VLMEvalKit's
/// <c>post_check</c> (open-compass/VLMEvalKit @989e33b vlmeval/dataset/utils/mathvista.py). Both compare Python values,
/// so the Python conversions they rely on (<c>int(str)</c>, <c>float(str)</c>, <c>round(x, n)</c>, <c>str(float)</c>)
/// are written out here: .NET's parsing and formatting differ from Python's in the cases that decide a score
/// (<c>"14.0"</c> is no int, <c>str(2.0)</c> is <c>"2.0"</c>, <c>round(2.675, 2)</c> is 2.67).
/// </summary>
internal static partial class MathVistaAnswers
{
    /// <summary>Official pre-extraction (no model call): the extraction, or null when the extractor model is needed.</summary>
    public static string? PreExtract(string response, MathVistaQuestion q)
    {
        if (response == "") return "";
        if (q.MultipleChoice && q.Choices.Contains(response)) return response;
        if (q.AnswerType == "integer" && PyInt(response) is { } i) return i.ToString(CultureInfo.InvariantCulture);
        if (q.AnswerType == "float" && PyFloat(response) is { } f) return PyRepr(f);
        return null;
    }

    /// <summary>The official quick rule <c>The answer is "(.*)"\.</c> (extract_answer.py with --quick_extract), or null.</summary>
    public static string? QuickExtract(string response) => QuickRule().Match(response) is { Success: true } m ? m.Groups[1].Value : null;

    [GeneratedRegex("The answer is \"(.*)\"\\.")]
    private static partial Regex QuickRule();

    [GeneratedRegex(@"\(([a-zA-Z])\)")]
    private static partial Regex ParenthesisedLetter();

    /// <summary>
    /// calculate_score.py <c>normalize_extracted_answer</c>: multiple choice → a choice's text (a letter, "(X)", or the
    /// Levenshtein-nearest choice); integer → <c>str(int(float(x)))</c>; float → <c>str(round(float(x), int(precision)))</c>;
    /// list → the text; a conversion that fails → null (never equal to an answer).
    /// </summary>
    public static string? Normalize(string extraction, MathVistaQuestion q)
    {
        if (q.MultipleChoice)
        {
            var e = extraction.Trim();
            var letter = ParenthesisedLetter().Match(e);
            if (letter.Success) e = letter.Groups[1].Value.ToUpperInvariant();
            var options = q.Choices.Select((_, i) => ((char)('A' + i)).ToString()).ToList();
            int at = options.IndexOf(e);
            return at >= 0 ? q.Choices[at] : MostSimilar(e, q.Choices);
        }
        switch (q.AnswerType)
        {
            case "integer":
                return PyFloat(extraction) is { } d && double.IsFinite(d) ? new BigInteger(Math.Truncate(d)).ToString(CultureInfo.InvariantCulture) : null;
            case "float":
                if (q.Precision is not { } p || PyFloat(extraction) is not { } f) return null;
                return PyRepr(PyRound(f, (int)p));
            default:
                return extraction;
        }
    }

    /// <summary>The official verdict: the normalised extraction equals the answer string.</summary>
    public static bool OfficialCorrect(string extraction, MathVistaQuestion q) => Normalize(extraction, q) is { } n && n == q.Answer;

    /// <summary>
    /// VLMEvalKit's prefetch (<c>post_check(prefetch=True)</c> on the raw prediction): multiple choice → the letter
    /// <c>can_infer</c> finds, right or wrong; integer/float → the prediction when it parses and equals the answer; else null.
    /// </summary>
    public static string? VlmPrefetch(string prediction, MathVistaQuestion q)
    {
        if (q.MultipleChoice) return VlmEvalMatching.CanInfer(prediction, q.LetterChoices);
        return VlmCorrect(prediction, q) ? prediction : null;
    }

    /// <summary>
    /// VLMEvalKit's <c>post_check</c> on an extraction: multiple choice → <c>can_infer</c> equals <c>answer_option</c>;
    /// integer → <c>int(res) == int(answer)</c>; float → <c>float(res) == float(answer)</c> (no rounding); any other
    /// free-form type is never correct (its code compares <c>str(None)</c>).
    /// </summary>
    public static bool VlmCorrect(string res, MathVistaQuestion q)
    {
        if (q.MultipleChoice) return VlmEvalMatching.CanInfer(res, q.LetterChoices) is { } l && l == q.AnswerOption;
        return q.AnswerType switch
        {
            "integer" => PyInt(res) is { } r && PyInt(q.Answer) is { } a && r == a,
            "float" => PyFloat(res) is { } r && PyFloat(q.Answer) is { } a && r == a,
            _ => false,
        };
    }

    /// <summary>The choice nearest to <paramref name="text"/> by Levenshtein distance over code points (the first on a tie).</summary>
    public static string MostSimilar(string text, IReadOnlyList<string> choices)
    {
        int best = int.MaxValue, at = 0;
        for (int i = 0; i < choices.Count; i++)
        {
            int d = Levenshtein(text, choices[i]);
            if (d < best) { best = d; at = i; }
        }
        return choices[at];
    }

    /// <summary>Edit distance (insertions, deletions, substitutions of one code point each), as python-Levenshtein's <c>distance</c>.</summary>
    public static int Levenshtein(string a, string b)
    {
        var x = a.EnumerateRunes().ToArray();
        var y = b.EnumerateRunes().ToArray();
        var prev = new int[y.Length + 1];
        var cur = new int[y.Length + 1];
        for (int j = 0; j <= y.Length; j++) prev[j] = j;
        for (int i = 1; i <= x.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= y.Length; j++)
                cur[j] = Math.Min(Math.Min(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[y.Length];
    }

    [GeneratedRegex(@"^[+-]?\d+(_\d+)*$")]
    private static partial Regex PyIntText();

    [GeneratedRegex(@"^[+-]?((\d+(_\d+)*)(\.(\d+(_\d+)*)?)?|\.\d+(_\d+)*)([eE][+-]?\d+(_\d+)*)?$")]
    private static partial Regex PyFloatText();

    /// <summary>Python's <c>int(text)</c>: surrounding white space, a sign, digits with single underscores; null where Python raises ValueError.</summary>
    public static BigInteger? PyInt(string text)
    {
        var s = text.Trim();
        return PyIntText().IsMatch(s) ? BigInteger.Parse(s.Replace("_", ""), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Python's <c>float(text)</c>: decimal and exponent forms, underscores between digits, inf/infinity/nan; null where Python raises ValueError.</summary>
    public static double? PyFloat(string text)
    {
        var s = text.Trim();
        var bare = s.TrimStart('+', '-').ToLowerInvariant();
        bool negative = s.StartsWith('-');
        if (bare is "inf" or "infinity" && s.Length - bare.Length <= 1) return negative ? double.NegativeInfinity : double.PositiveInfinity;
        if (bare == "nan" && s.Length - bare.Length <= 1) return double.NaN;
        if (!PyFloatText().IsMatch(s)) return null;
        return double.Parse(s.Replace("_", ""), NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Python's <c>round(x, n)</c> for n ≥ 0: the exact binary value of <paramref name="x"/> rounded half-to-even at
    /// the n-th decimal, then the nearest double to that decimal.
    /// </summary>
    public static double PyRound(double x, int n)
    {
        if (!double.IsFinite(x) || x == 0 || n < 0) return x;
        long bits = BitConverter.DoubleToInt64Bits(x);
        bool negative = bits < 0;
        int exp = (int)((bits >> 52) & 0x7FF);
        long man = bits & 0xFFFFFFFFFFFFFL;
        if (exp == 0) exp = 1; else man |= 1L << 52;
        exp -= 1075; // x = man · 2^exp
        var scaled = new BigInteger(man) * BigInteger.Pow(10, n);
        BigInteger q;
        if (exp >= 0) q = scaled << exp;
        else
        {
            var den = BigInteger.One << -exp;
            q = BigInteger.DivRem(scaled, den, out var r);
            int c = (r * 2).CompareTo(den);
            if (c > 0 || (c == 0 && !q.IsEven)) q += 1;
        }
        var digits = q.ToString(CultureInfo.InvariantCulture).PadLeft(n + 1, '0');
        var text = n == 0 ? digits : digits[..^n] + "." + digits[^n..];
        var value = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return negative ? -value : value;
    }

    /// <summary>Python's <c>str(float)</c>: the shortest text that reads back, ".0" on whole numbers, exponent form below 1e-4 and from 1e16.</summary>
    public static string PyRepr(double x)
    {
        if (double.IsNaN(x)) return "nan";
        if (double.IsInfinity(x)) return x > 0 ? "inf" : "-inf";
        // .NET's "R" gives the shortest round-trip digits; they are re-laid out as Python lays them out
        var r = x.ToString("R", CultureInfo.InvariantCulture);
        bool negative = r.StartsWith('-');
        if (negative) r = r[1..];
        int e = 0;
        int ei = r.IndexOfAny(['E', 'e']);
        if (ei >= 0) { e = int.Parse(r[(ei + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture); r = r[..ei]; }
        int dot = r.IndexOf('.');
        string digits = dot < 0 ? r : r[..dot] + r[(dot + 1)..];
        int point = (dot < 0 ? r.Length : dot) + e; // the decimal point sits after this many digits
        int lead = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        point -= lead;
        if (digits.Length == 0) return negative ? "-0.0" : "0.0";
        var sb = new StringBuilder(negative ? "-" : "");
        if (point > 16 || point < -3)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits[1..]);
            int exp = point - 1;
            sb.Append('e').Append(exp < 0 ? '-' : '+').Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (point <= 0) sb.Append("0.").Append('0', -point).Append(digits);
        else if (point >= digits.Length) sb.Append(digits).Append('0', point - digits.Length).Append(".0");
        else sb.Append(digits[..point]).Append('.').Append(digits[point..]);
        return sb.ToString();
    }
}
