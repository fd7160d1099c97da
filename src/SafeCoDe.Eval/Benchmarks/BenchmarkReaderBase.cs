namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// What the readers share: the root is checked before enumeration starts, duplicate ids are reported under their
/// position, the <see cref="ReaderSelection.Include"/> filter is applied before any image is opened.
/// </summary>
internal abstract class BenchmarkReaderBase : IBenchmarkReader
{
    public abstract string Name { get; }
    public abstract string Layout { get; }

    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection)
    {
        ArgumentNullException.ThrowIfNull(root);
        selection ??= ReaderSelection.All;
        var candidates = Open(root, selection); // throws BenchmarkLayoutException now, not at the first MoveNext
        return Filter(candidates, selection.Include, Name);
    }

    /// <summary>Checks the layout (throwing <see cref="BenchmarkLayoutException"/>) and returns the lazy record sequence.</summary>
    protected abstract IEnumerable<Candidate> Open(string root, ReaderSelection selection);

    private static IEnumerable<ReadItem> Filter(IEnumerable<Candidate> candidates, Func<string, bool>? include, string benchmark)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var e = candidates.GetEnumerator();
        while (true)
        {
            // readers turn every bad record into a problem themselves; this is the last line of defence against an
            // unforeseen failure (an I/O error mid-file): it is reported, and the records read so far stand
            string? failure = null;
            try
            {
                if (!e.MoveNext()) break;
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                failure = $"reading stopped early: {ex.GetType().Name}: {ex.Message}";
            }
            if (failure is not null) { yield return ReadItem.Bad($"{benchmark}#read-error", failure); yield break; }
            var c = e.Current;
            if (c.Id is null)
            {
                if (include is null || include(c.Position)) yield return ReadItem.Bad(c.Position, c.Problem ?? "record has no id");
                continue;
            }
            if (!seen.Add(c.Id))
            {
                if (include is null || include(c.Position))
                    yield return ReadItem.Bad(c.Position, $"duplicate id '{c.Id}' (the first record with this id is kept)");
                continue;
            }
            if (include is not null && !include(c.Id)) continue;
            if (c.Problem is not null) { yield return ReadItem.Bad(c.Id, c.Problem); continue; }
            ReadItem item;
            try { item = c.Build!(); }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                item = ReadItem.Bad(c.Id, $"{ex.GetType().Name}: {ex.Message}");
            }
            yield return item;
        }
    }

    /// <summary>Where a reader names a path under a root in messages: relative, with forward slashes.</summary>
    protected static string Rel(string root, string path) => Path.GetRelativePath(root, path).Replace('\\', '/');
}

/// <summary>
/// One record as a reader found it: <see cref="Id"/> (null when the record has none, then <see cref="Problem"/> says
/// why), <see cref="Position"/> (a unique id-independent name: file and index), and either a problem or a builder
/// that checks images and makes the sample (run only for records that pass the selection's filter).
/// </summary>
internal readonly record struct Candidate(string? Id, string Position, string? Problem, Func<ReadItem>? Build)
{
    public static Candidate Ok(string id, string position, Func<ReadItem> build) => new(id, position, null, build);
    public static Candidate Bad(string? id, string position, string problem) => new(id, position, problem, null);
}
