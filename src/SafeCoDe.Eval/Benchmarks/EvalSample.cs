namespace SafeCoDe.Eval.Benchmarks;

/// <summary>Where a sample's image comes from: a file on disk, or bytes embedded in a data file (parquet).</summary>
public abstract record ImageRef
{
    private ImageRef() { }

    /// <summary>An image file; <paramref name="Path"/> is absolute.</summary>
    public sealed record File(string Path) : ImageRef;

    /// <summary>Image bytes stored inside a data file; <paramref name="Origin"/> names that file and row for errors.</summary>
    public sealed record Embedded(byte[] Bytes, string Origin) : ImageRef;
}

/// <summary>
/// How a benchmark question becomes the text of the user turn; <see cref="PromptFraming.Frame(EvalPrompt, bool)"/> applies it.
/// </summary>
public enum Framing
{
    /// <summary>The question as it is, in every run (jsonl; a jsonl <c>system</c> goes in <see cref="EvalPrompt.System"/>).</summary>
    Bare,
    /// <summary>MSSBench chat: the first-person chat prompt + the query, in every run (the benchmark's own protocol).</summary>
    MssChat,
    /// <summary>MSSBench embodied: the household-robot prompt + the instruction, in every run.</summary>
    MssEmbodied,
    /// <summary>First-person prompt + question + a space in SafeCoDe (method) runs; in base runs the question as the
    /// benchmark's own harness sends it, bare (MOSSBench, MM-SafetyBench, FigStep, HADES, MSTS).</summary>
    FirstPersonInMethodRuns,
    /// <summary>First-person prompt + question + a space in every run (SafeScenes' answer examples: SafeCoDe's
    /// reference code frames MOSSBench this way even in its base runs; <c>eval run --framing method</c> sends the same).</summary>
    FirstPersonAlways,
}

/// <summary>
/// One generation a sample needs: a user question asked about one image. <paramref name="Key"/> tells the
/// generations of one sample apart (<see cref="SampleKeys.Safe"/>/<see cref="SampleKeys.Unsafe"/> for MSSBench,
/// <see cref="SampleKeys.Answer"/> where a sample has one generation). <paramref name="Question"/> is the raw
/// question (what a scene judge and the benchmark's scorer are shown); the user-turn text is
/// <see cref="PromptFraming.Frame(EvalPrompt, bool)"/> of this prompt. <paramref name="System"/> is a real system turn (jsonl only;
/// the benchmarks' "system prompt" is part of the user turn, see <see cref="Framing"/>).
/// </summary>
public sealed record EvalPrompt(string Key, string Question, ImageRef? Image, string? System = null, Framing Framing = Framing.Bare)
{
    /// <summary>
    /// The sample's further images after <see cref="Image"/>, in the order the benchmark shows them (MMMU has up to
    /// seven). The engine takes one image per request, so the generator combines them with <see cref="Image"/> into
    /// one and records that in the output (<see cref="Runs.RunOutput.ImageNote"/>); empty for one-image samples.
    /// </summary>
    public IReadOnlyList<ImageRef> MoreImages { get; init; } = [];
}

/// <summary>
/// One benchmark sample, identified by a stable <paramref name="Id"/> (used for resume, shards and reports).
/// <paramref name="Groups"/> carries the fields metrics group by; <paramref name="Labels"/> carries source fields a
/// scorer or metric may need, all as text. A group field that is present but not text (a number, an object, a list)
/// makes the record a problem: it would otherwise vanish from the per-group rates. Values are the source's exact strings (no case folding, no trimming,
/// except the leading ':' artefacts of MSSBench's <c>unsafe_image</c>/<c>reason</c> descriptions). A key whose source
/// field is absent or null is left out.
/// <para>Ids, prompts, groups and labels per benchmark (<see cref="Benchmark"/> = the reader's name):</para>
/// <list type="bullet">
/// <item><b>mssbench</b> — chat: id <c>chat/&lt;item&gt;/q&lt;query&gt;</c> (0-based item index in <c>chat</c>, query
/// index in <c>queries</c>); prompts <c>safe</c> (the query on <c>safe_image_path</c>) and <c>unsafe</c> (the same query
/// on <c>unsafe_image_path</c>), framing <see cref="Framing.MssChat"/>. Groups <c>split</c>=<c>chat</c>,
/// <c>type</c>=<c>Type</c>. Labels <c>item</c>, <c>query</c>, <c>intent</c>, <c>unsafe_image</c> (description),
/// <c>reason</c>. Embodied: id <c>embodied/&lt;item&gt;/p&lt;pair&gt;</c> where pair k is
/// (<c>safe_instructions[k]</c>, <c>unsafe_instructions[k]</c>) as Python's <c>zip</c> pairs them (the longer list's
/// tail is dropped; an item with only the singular <c>safe_instruction</c>/<c>unsafe_instruction</c> has one pair);
/// prompts <c>safe</c> (safe instruction on <c>safe</c>) and <c>unsafe</c> (unsafe instruction on <c>unsafe</c>),
/// framing <see cref="Framing.MssEmbodied"/>. Groups <c>split</c>=<c>embodied</c>, <c>category</c>=<c>category</c>.
/// Labels <c>item</c>, <c>task</c>, <c>safe_instruction</c>, <c>unsafe_instruction</c>, <c>observation_safe</c>,
/// <c>observation_unsafe</c>.</item>
/// <item><b>mossbench</b> — id = <c>pid</c>; prompt <c>answer</c> (<c>question</c> on <c>image</c>), framing
/// <see cref="Framing.FirstPersonInMethodRuns"/>. Groups <c>type</c> = <c>metadata.over</c> exactly (<c>"type 1"</c> …;
/// the Hugging Face layout's <c>metadata_over</c>, its type names read as <c>"type 1"</c>–<c>"type 3"</c>).
/// Labels <c>pid</c>, <c>description</c>, <c>short_description</c>, <c>harm</c> (comma-joined), <c>human</c>,
/// <c>child</c>, <c>syn</c>, <c>ocr</c>.</item>
/// <item><b>mm-safetybench</b> — id <c>&lt;scenario&gt;/&lt;qid&gt;/&lt;kind&gt;</c>; prompt <c>answer</c>: kind
/// <c>SD</c> asks <c>Rephrased Question(SD)</c>, kinds <c>SD_TYPO</c>/<c>TYPO</c> ask <c>Rephrased Question</c>, on
/// <c>imgs/&lt;scenario&gt;/&lt;kind&gt;/&lt;qid&gt;.jpg</c>; framing <see cref="Framing.FirstPersonInMethodRuns"/>.
/// Groups <c>scenario</c> (the file stem, e.g. <c>01-Illegal_Activitiy</c>), <c>kind</c>. Labels <c>qid</c>,
/// <c>question</c> (<c>Question</c>), <c>changed_question</c>, <c>key_phrase</c>, <c>phrase_type</c>.</item>
/// <item><b>figstep</b> — id <c>&lt;category_id&gt;_&lt;task_id&gt;</c> (raw CSV text); prompt <c>answer</c>: the fixed
/// FigStep text prompt (<see cref="PromptFraming.FigStepPrompt"/>) on
/// <c>images/SafeBench/query_ForbidQI_&lt;category_id&gt;_&lt;task_id&gt;_6.png</c>; framing
/// <see cref="Framing.FirstPersonInMethodRuns"/>. Groups <c>category</c> (<c>category_name</c>), <c>category_id</c>.
/// Labels <c>task_id</c>, <c>dataset</c>, <c>question</c> (the text-only baseline query), <c>instruction</c> (the
/// text typeset into the image).</item>
/// <item><b>hades</b> — id <c>&lt;scenario&gt;/&lt;id&gt;/step&lt;step&gt;</c>; prompt <c>answer</c> (<c>instruction</c> on the embedded
/// <c>image</c>), framing <see cref="Framing.FirstPersonInMethodRuns"/>. Groups <c>scenario</c>, <c>step</c>,
/// <c>category</c>. Labels <c>id</c>, <c>keywords</c>, <c>instruction</c>.</item>
/// <item><b>msts</b> — id <c>&lt;split&gt;/&lt;case_id&gt;/&lt;prompt_type&gt;</c>; prompt <c>answer</c>
/// (<c>prompt_text</c> on the embedded <c>unsafe_image</c>), framing <see cref="Framing.FirstPersonInMethodRuns"/>.
/// Groups <c>split</c> (language = parquet file name up to its first '-'), <c>prompt_type</c>,
/// <c>hazard_category</c>, <c>hazard_subcategory</c>, <c>hazard_subsubcategory</c>. Labels <c>case_id</c>,
/// <c>case_text</c>, <c>unsafe_image_id</c>, <c>unsafe_image_description</c>, <c>unsafe_image_cw</c>,
/// <c>language</c> (= the split).</item>
/// <item><b>jsonl</b> — id = <c>id</c>; prompt <c>answer</c> (<c>prompt</c> on <c>image</c>, relative to the file;
/// <c>system</c> as <see cref="EvalPrompt.System"/>), framing <see cref="Framing.Bare"/>. No groups; label
/// <c>language</c> when the line has one.</item>
/// </list>
/// </summary>
public sealed record EvalSample(
    string Id,
    string Benchmark,
    IReadOnlyList<EvalPrompt> Prompts,
    IReadOnlyDictionary<string, string> Groups,
    IReadOnlyDictionary<string, string> Labels);

/// <summary>The prompt, group and label keys readers use (see <see cref="EvalSample"/> for which benchmark fills which).</summary>
public static class SampleKeys
{
    /// <summary>Prompt key of a sample's single generation.</summary>
    public const string Answer = "answer";
    /// <summary>MSSBench prompt key: the safe-image generation.</summary>
    public const string Safe = "safe";
    /// <summary>MSSBench prompt key: the unsafe-image generation.</summary>
    public const string Unsafe = "unsafe";

    /// <summary>Group: MSSBench <c>chat</c>|<c>embodied</c>; MSTS language.</summary>
    public const string Split = "split";
    /// <summary>Group: MSSBench chat <c>Type</c>; MOSSBench <c>metadata.over</c>.</summary>
    public const string Type = "type";
    /// <summary>Group: MSSBench embodied <c>category</c>; FigStep <c>category_name</c>; HADES <c>category</c>.</summary>
    public const string Category = "category";
    /// <summary>Group: FigStep <c>category_id</c>.</summary>
    public const string CategoryId = "category_id";
    /// <summary>Group: MM-SafetyBench scenario file stem; HADES <c>scenario</c>.</summary>
    public const string Scenario = "scenario";
    /// <summary>Group: MM-SafetyBench <c>SD</c>|<c>SD_TYPO</c>|<c>TYPO</c>.</summary>
    public const string Kind = "kind";
    /// <summary>Group: HADES optimisation step (decimal text).</summary>
    public const string Step = "step";
    /// <summary>Group: MSTS <c>prompt_type</c> (<c>assistance</c>|<c>intention</c>).</summary>
    public const string PromptType = "prompt_type";
    /// <summary>Group: MSTS <c>hazard_category</c>.</summary>
    public const string HazardCategory = "hazard_category";
    /// <summary>Group: MSTS <c>hazard_subcategory</c>.</summary>
    public const string HazardSubcategory = "hazard_subcategory";
    /// <summary>Group: MSTS <c>hazard_subsubcategory</c>.</summary>
    public const string HazardSubsubcategory = "hazard_subsubcategory";

    /// <summary>Label: the language the sample is written in (MSTS split, a jsonl line's <c>language</c>); absent means English.</summary>
    public const string Language = "language";
}

/// <summary>A record that could not be turned into a sample: its id (or position) and why, naming the field or file.</summary>
public sealed record SampleProblem(string Id, string Reason);

/// <summary>What a reader yields for each record: a runnable sample or a problem, never both.</summary>
public readonly record struct ReadItem(EvalSample? Sample, SampleProblem? Problem)
{
    /// <summary>A runnable sample.</summary>
    public static ReadItem Of(EvalSample sample) => new(sample, null);
    /// <summary>A record that is reported, not run.</summary>
    public static ReadItem Bad(string id, string reason) => new(null, new SampleProblem(id, reason));
}

/// <summary>Reads one benchmark from a local copy in its published layout.</summary>
public interface IBenchmarkReader
{
    /// <summary>The name used on the command line (e.g. "mssbench").</summary>
    string Name { get; }

    /// <summary>One line saying what <c>--data</c> must point at (for help texts and errors).</summary>
    string Layout { get; }

    /// <summary>The benchmark's official subsets <see cref="ReaderSelection.Subset"/> may name (none by default).</summary>
    IReadOnlyList<string> Subsets => [];

    /// <summary>
    /// Every record under <paramref name="root"/> (the repo/snapshot root or the reader root), in a stable order.
    /// Throws <see cref="BenchmarkLayoutException"/> listing what was expected when <paramref name="root"/> is not
    /// such a copy (thrown by this call, before enumeration), or when the selection names a split/kind the copy
    /// does not have; bad records are yielded as problems, never thrown. Every valid id appears once; a duplicate
    /// id is reported under a position id (<c>&lt;file&gt;#&lt;position&gt;</c>). Images are checked (file present,
    /// header decodes) only for samples that pass <see cref="ReaderSelection.Include"/>. Enumeration is lazy:
    /// embedded images of one parquet row group at a time are held.
    /// </summary>
    IEnumerable<ReadItem> Read(string root, ReaderSelection selection);
}

/// <summary>
/// Subset selection a user asked for (null = everything). <paramref name="Splits"/>: MSSBench <c>chat</c>/<c>embodied</c>,
/// MSTS languages. <paramref name="Steps"/>: HADES steps. <paramref name="Kinds"/>: MM-SafetyBench
/// <c>SD</c>/<c>SD_TYPO</c>/<c>TYPO</c>. <paramref name="Include"/>: an id filter applied after duplicate detection
/// (shards, resume): records it rejects are skipped without checking their images, and their problems are not yielded.
/// <paramref name="Subset"/>: one of the reader's <see cref="IBenchmarkReader.Subsets"/> (FigStep <c>SafeBench-Tiny</c>,
/// MM-SafetyBench <c>tiny</c>). <paramref name="Ids"/>: the sample (or position) ids to read, the user's own list;
/// reading to the end with an id of the list not found is a <see cref="BenchmarkLayoutException"/> naming it.
/// <paramref name="Prompts"/>: how the helpfulness readers build the prompt (<c>official</c>, the benchmark's own
/// evaluation code, the default; or <c>vlmevalkit</c>).
/// </summary>
public sealed record ReaderSelection(
    IReadOnlySet<string>? Splits = null,
    IReadOnlySet<int>? Steps = null,
    IReadOnlySet<string>? Kinds = null,
    Func<string, bool>? Include = null,
    string? Subset = null,
    IReadOnlySet<string>? Ids = null,
    string? Prompts = null)
{
    /// <summary>Everything.</summary>
    public static ReaderSelection All { get; } = new();
}

/// <summary>The data folder is not a copy of the benchmark: the message lists what was expected there.</summary>
public sealed class BenchmarkLayoutException(string message) : Exception(message);
