using System.Globalization;
using System.Text.Json;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// One MathVista problem as both layouts give it: its pid, the query (the ready prompt with its Hint and Question
/// lines), the bare question, choices (empty for free-form problems), unit, precision, gold answer (a choice's text for
/// multiple choice), question and answer types, the metadata MathVista groups its accuracy by, the skills and the image.
/// </summary>
internal sealed record MathVistaItem(string Pid, string Query, string Question, IReadOnlyList<string> Choices, string? Unit, double? Precision,
    string Answer, string QuestionType, string AnswerType, IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<string> Skills, ImageRef Image)
{
    /// <summary>VLMEvalKit's <c>answer_option</c> column of the TSV layout (null in the official layout, where it is the gold choice's letter).</summary>
    public string? AnswerOption { get; init; }

    /// <summary>The metadata fields MathVista's calculate_score.py reports accuracy by, besides question/answer type and skills.</summary>
    public static readonly IReadOnlyList<string> MetadataKeys = ["task", "category", "context", "grade", "language", "source", "split"];

    /// <summary>
    /// The user text. Both protocols send the query: MathVista's generate_response.py sends <c>query</c>, and
    /// VLMEvalKit's dataset prompt is its TSV <c>question</c>, which holds the same query (the extractor prompt relies on
    /// its Hint/Question lines). The protocol is recorded per sample all the same.
    /// </summary>
    public string Prompt(string protocol) => Query;

    /// <summary>The sample: one prompt with the image, groups by task and metadata, the labels the scorers read.</summary>
    public EvalSample Sample(string benchmark, string protocol)
    {
        var prompt = new EvalPrompt(SampleKeys.Answer, Prompt(protocol), Image, null, Framing.FirstPersonInMethodRuns);
        var groups = new TextMap();
        foreach (var k in MetadataKeys) groups.Add(k, Metadata.TryGetValue(k, out var v) && v.Length > 0 ? v : null);
        groups.Add("question_type", QuestionType).Add("answer_type", AnswerType);
        var labels = new TextMap().Add("answer", Answer).Add("choices", JsonSerializer.Serialize(Choices))
            .Add("precision", Precision?.ToString("R", CultureInfo.InvariantCulture)).Add("unit", Unit)
            .Add("question_type", QuestionType).Add("answer_type", AnswerType).Add("query", Query).Add("question", Question)
            .Add("skills", JsonSerializer.Serialize(Skills)).Add("answer_option", AnswerOption).Add("prompts", protocol).Build();
        return new EvalSample(Pid, benchmark, [prompt], groups.Build(), labels);
    }
}

/// <summary>A MathVista problem as a scorer sees it (from a sample's labels).</summary>
internal sealed record MathVistaQuestion(string Query, IReadOnlyList<string> Choices, double? Precision, string Answer, string QuestionType, string AnswerType)
{
    /// <summary>True for <c>multi_choice</c> problems.</summary>
    public bool MultipleChoice => QuestionType == "multi_choice";

    /// <summary>VLMEvalKit's <c>list_to_dict(choices)</c>: A → first choice, ….</summary>
    public IReadOnlyDictionary<string, string> LetterChoices => Choices.Select((c, i) => (c, i)).ToDictionary(x => ((char)('A' + x.i)).ToString(), x => x.c);

    /// <summary>VLMEvalKit's <c>answer_option</c>: its TSV column where given, else the letter of the gold choice (null when the answer is no choice).</summary>
    public string? AnswerOption { get; init; }

    /// <summary>The letter of <paramref name="answer"/> among <paramref name="choices"/>, or null.</summary>
    public static string? OptionOf(IReadOnlyList<string> choices, string answer) =>
        choices.ToList().IndexOf(answer) is var i and >= 0 ? ((char)('A' + i)).ToString() : null;

    /// <summary>Reads the labels <see cref="MathVistaItem.Sample"/> wrote; a missing one names the sample.</summary>
    public static MathVistaQuestion Of(string sampleId, IReadOnlyDictionary<string, string> labels)
    {
        string L(string k) => labels.TryGetValue(k, out var v) ? v : throw new ArgumentException($"sample '{sampleId}' has no '{k}' label (not a MathVista record)");
        double? precision = labels.TryGetValue("precision", out var p) && double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;
        var choices = JsonSerializer.Deserialize<List<string>>(L("choices"))!;
        return new MathVistaQuestion(L("query"), choices, precision, L("answer"), L("question_type"), L("answer_type"))
            { AnswerOption = labels.TryGetValue("answer_option", out var o) && o.Length > 0 ? o : OptionOf(choices, L("answer")) };
    }
}
