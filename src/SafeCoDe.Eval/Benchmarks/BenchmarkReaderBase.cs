namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// What the readers share: the root is checked before enumeration starts, duplicate ids are reported under their
/// position (naming the first record's), the subset name is checked against <see cref="Subsets"/>, and the
/// <see cref="ReaderSelection.Ids"/> and <see cref="ReaderSelection.Include"/> filters are applied before any image is opened.
/// </summary>
internal abstract class BenchmarkReaderBase : IBenchmarkReader
{
    public abstract string Name { get; }
    public abstract string Layout { get; }
    public virtual IReadOnlyList<string> Subsets => [];

    public IEnumerable<ReadItem> Read(string root, ReaderSelection selection)
    {
        ArgumentNullException.ThrowIfNull(root);
        selection ??= ReaderSelection.All;
        if (selection.Subset is { } subset) selection = selection with { Subset = CheckSubset(subset) };
        var candidates = Open(root, selection); // throws BenchmarkLayoutException now, not at the first MoveNext
        return Filter(candidates, selection, Name);
    }

    /// <summary>The reader's spelling of <paramref name="subset"/> (matched ignoring case); an unknown name lists the known ones.</summary>
    private string CheckSubset(string subset) =>
        Subsets.FirstOrDefault(s => string.Equals(s, subset.Trim(), StringComparison.OrdinalIgnoreCase))
        ?? throw new BenchmarkLayoutException($"{Name} has no subset '{subset}'; " +
            (Subsets.Count == 0 ? "it has none (--ids FILE selects any list of sample ids)" : $"subsets: {string.Join(", ", Subsets)}"));

    /// <summary>Checks the layout (throwing <see cref="BenchmarkLayoutException"/>) and returns the lazy record sequence.</summary>
    protected abstract IEnumerable<Candidate> Open(string root, ReaderSelection selection);

    private static IEnumerable<ReadItem> Filter(IEnumerable<Candidate> candidates, ReaderSelection selection, string benchmark)
    {
        var include = selection.Include;
        var ids = selection.Ids;
        var found = ids is null ? null : new HashSet<string>(StringComparer.Ordinal);
        // a record outside the user's id list is skipped like one outside the shard; the ids met are kept for the check below
        bool Listed(string key)
        {
            if (ids is null) return true;
            if (!ids.Contains(key)) return false;
            found!.Add(key);
            return true;
        }
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
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
                if (Listed(c.Position) && (include is null || include(c.Position))) yield return ReadItem.Bad(c.Position, c.Problem ?? "record has no id");
                continue;
            }
            if (seen.TryGetValue(c.Id, out var first))
            {
                bool listed = Listed(c.Id) | Listed(c.Position);
                if (listed && (include is null || include(c.Position)))
                    yield return ReadItem.Bad(c.Position, $"duplicate id '{c.Id}' (the first record with this id, {first}, is kept)");
                continue;
            }
            seen[c.Id] = c.Position;
            if (!Listed(c.Id)) continue;
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
        if (ids is not null && found!.Count < ids.Count) throw Missing(ids, found, benchmark);
    }

    /// <summary>The error for ids of the user's list that no record has: a typo must not shrink a run silently.</summary>
    private static BenchmarkLayoutException Missing(IReadOnlySet<string> ids, HashSet<string> found, string benchmark)
    {
        var missing = ids.Where(i => !found.Contains(i)).Order(StringComparer.Ordinal).ToList();
        return new BenchmarkLayoutException(
            $"--ids: {missing.Count} of the {ids.Count} listed id(s) are not in this copy of {benchmark}: " +
            string.Join(", ", missing.Take(10).Select(i => $"'{i}'")) + (missing.Count > 10 ? ", …" : "") +
            " (sample ids as a run's records.jsonl writes them)");
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
