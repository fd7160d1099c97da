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
/// One generation a sample needs: a user question asked about one image. <paramref name="Key"/> tells the
/// generations of one sample apart ("safe"/"unsafe" for MSSBench, "answer" where a sample has one generation).
/// </summary>
public sealed record EvalPrompt(string Key, string Question, ImageRef? Image, string? System = null);

/// <summary>
/// One benchmark sample, identified by a stable <paramref name="Id"/> (used for resume, shards and reports).
/// <paramref name="Groups"/> carries the fields metrics group by (e.g. "split", "type", "scenario", "kind",
/// "category", "step", "language"); <paramref name="Labels"/> carries ground truth or source fields a scorer or
/// metric needs (e.g. MSSBench's intent), all as text.
/// </summary>
public sealed record EvalSample(
    string Id,
    string Benchmark,
    IReadOnlyList<EvalPrompt> Prompts,
    IReadOnlyDictionary<string, string> Groups,
    IReadOnlyDictionary<string, string> Labels);

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

    /// <summary>
    /// Every record under <paramref name="root"/> (the repo/snapshot root or the reader root), in a stable order.
    /// Throws <see cref="BenchmarkLayoutException"/> listing what was expected when <paramref name="root"/> is not
    /// such a copy; bad records are yielded as problems, never thrown.
    /// </summary>
    IEnumerable<ReadItem> Read(string root, ReaderSelection selection);
}

/// <summary>Subset selection a user asked for (null = everything).</summary>
public sealed record ReaderSelection(
    IReadOnlySet<string>? Splits = null,
    IReadOnlySet<int>? Steps = null,
    IReadOnlySet<string>? Kinds = null);

/// <summary>The data folder is not a copy of the benchmark: the message lists what was expected there.</summary>
public sealed class BenchmarkLayoutException(string message) : Exception(message);
