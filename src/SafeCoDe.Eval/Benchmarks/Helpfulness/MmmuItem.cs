using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SafeCoDe.Eval.Benchmarks.Helpfulness;

/// <summary>
/// One MMMU question as both layouts give it: its id (<c>validation_Accounting_1</c>), question text with
/// <c>&lt;image k&gt;</c> placeholders, options (empty for open questions), gold answer(s), question type, split and
/// images in image_1…image_7 order. Builds the prompt of either protocol and the sample's groups and labels.
/// </summary>
internal sealed partial record MmmuItem(string Id, string Question, IReadOnlyList<string> Options, IReadOnlyList<string> Answers,
    string QuestionType, string Split, IReadOnlyList<ImageRef> Images)
{
    /// <summary>The protocols: MMMU's own evaluation code, or VLMEvalKit's dataset prompt.</summary>
    public const string Official = "official", VlmEvalKit = "vlmevalkit";

    // MMMU @bb0b95a mmmu/configs/llava1.5.yaml (multi_choice_example_format, short_ans_example_format), quoted in
    // research/utility-and-baselines.md §2; the option block "(A) opt\n" per option comes from data_utils.construct_prompt.
    private const string OfficialMultiChoiceTail = "\n\nAnswer with the option's letter from the given choices directly.";
    private const string OfficialOpenTail = "\n\nAnswer the question using a single word or phrase.";

    // VLMEvalKit @989e33b vlmeval/dataset/image_mcq.py ImageMCQDataset.build_prompt, quoted in §1.2 (the trailing
    // space before the newline is VLMEvalKit's).
    private const string VlmSelect = "Please select the correct answer from the options above. \n";

    /// <summary>True for multiple-choice questions (MMMU treats every other <c>question_type</c> as open).</summary>
    public bool MultipleChoice => QuestionType == "multiple-choice" && Options.Count > 0;

    /// <summary>The option letters A, B, … of the options.</summary>
    public IReadOnlyList<string> Letters => Options.Select((_, i) => ((char)('A' + i)).ToString()).ToList();

    /// <summary>The subject: the id between the split prefix and the number (<c>validation_Art_Theory_3</c> → <c>Art_Theory</c>).</summary>
    public string Subject
    {
        get
        {
            var m = SubjectOfId().Match(Id);
            return m.Success ? m.Groups[1].Value : "unknown";
        }
    }

    [GeneratedRegex(@"^[a-z]+_(.+)_\d+$")]
    private static partial Regex SubjectOfId();

    [GeneratedRegex(@"<image (\d)>")]
    private static partial Regex Placeholder();

    /// <summary>The user text under a protocol (placeholders kept by MMMU's own prompt, removed by VLMEvalKit's).</summary>
    public string Prompt(string protocol) => protocol == VlmEvalKit ? VlmPrompt() : OfficialPrompt();

    private string OfficialPrompt()
    {
        if (!MultipleChoice) return Question + OfficialOpenTail;
        var block = new StringBuilder();
        foreach (var (l, o) in Letters.Zip(Options)) block.Append('(').Append(l).Append(") ").Append(o).Append('\n');
        return Question + "\n\n" + block + OfficialMultiChoiceTail;
    }

    private string VlmPrompt()
    {
        var sb = new StringBuilder("Question: ").Append(Question).Append('\n');
        if (Options.Count > 0)
        {
            sb.Append("Options:\n");
            foreach (var (l, o) in Letters.Zip(Options)) sb.Append(l).Append(". ").Append(o).Append('\n');
            sb.Append(VlmSelect);
        }
        return Placeholder().Replace(sb.ToString(), "");
    }

    /// <summary>
    /// The images in the order the protocol shows them: MMMU's own in image_1… order; VLMEvalKit's where their
    /// placeholders stand in the text (each once), then any the text does not mention.
    /// </summary>
    public IReadOnlyList<ImageRef> Ordered(string protocol)
    {
        if (protocol != VlmEvalKit) return Images;
        var text = Question + string.Concat(Options);
        var order = Placeholder().Matches(text).Select(m => int.Parse(m.Groups[1].Value) - 1)
            .Where(k => k >= 0 && k < Images.Count).Distinct().ToList();
        order.AddRange(Enumerable.Range(0, Images.Count).Except(order));
        return order.Select(k => Images[k]).ToList();
    }

    /// <summary>The sample: one prompt (the first image on the prompt, the others as <see cref="EvalPrompt.MoreImages"/>), groups subject/discipline/split, the answer labels.</summary>
    public EvalSample Sample(string benchmark, string protocol)
    {
        var images = Ordered(protocol);
        var prompt = new EvalPrompt(SampleKeys.Answer, Prompt(protocol), images.Count > 0 ? images[0] : null, null, Framing.FirstPersonInMethodRuns)
            { MoreImages = images.Skip(1).ToList() };
        var groups = new TextMap().Add("subject", Subject).Add("discipline", MmmuSubjects.Discipline(Subject)).Add(SampleKeys.Split, Split).Build();
        var labels = new TextMap().Add("answer", JsonSerializer.Serialize(Answers)).Add("options", JsonSerializer.Serialize(Options))
            .Add("question_type", QuestionType).Add("prompts", protocol).Add("question", Question).Build();
        return new EvalSample(Id, benchmark, [prompt], groups, labels);
    }
}

/// <summary>MMMU's 30 subjects by discipline (MMMU @bb0b95a mmmu/utils/data_utils.py, listed in §2 of the spec).</summary>
internal static class MmmuSubjects
{
    public static readonly IReadOnlyDictionary<string, string[]> ByDiscipline = new Dictionary<string, string[]>
    {
        ["Art and Design"] = ["Art", "Art_Theory", "Design", "Music"],
        ["Business"] = ["Accounting", "Economics", "Finance", "Manage", "Marketing"],
        ["Science"] = ["Biology", "Chemistry", "Geography", "Math", "Physics"],
        ["Health and Medicine"] = ["Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine", "Pharmacy", "Public_Health"],
        ["Humanities and Social Science"] = ["History", "Literature", "Sociology", "Psychology"],
        ["Tech and Engineering"] = ["Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics", "Energy_and_Power", "Materials", "Mechanical_Engineering"],
    };

    /// <summary>The discipline of a subject, "unknown" for a subject MMMU does not list.</summary>
    public static string Discipline(string subject) =>
        ByDiscipline.FirstOrDefault(kv => kv.Value.Contains(subject)).Key ?? "unknown";
}
