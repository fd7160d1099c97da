using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Eval.Benchmarks;

/// <summary>
/// The one rule for files a benchmark copy names (image paths, ids that become file names): after <c>..</c> and
/// symbolic links are resolved the file must lie under the data folder, and it must be a regular file. A name that
/// leads outside (an absolute path elsewhere, <c>../../x</c>, a link out of the folder) is refused before anything
/// is opened, unless <see cref="InputLimits.AllowDataOutsideRoot"/> is set; a Hugging Face cache snapshot may link
/// into its repository's <c>blobs/</c>. Every reader goes through <see cref="Check"/> (via <c>ImageCheck.File</c>
/// and <c>ParquetRows.Image</c>), so the rule lives here once.
/// </summary>
internal static class DataFiles
{
    /// <summary>
    /// Null when <paramref name="path"/> may be read as a data file of <paramref name="root"/>; otherwise why not,
    /// naming <paramref name="shown"/> (outside the data folder, missing, a directory, a FIFO or device).
    /// </summary>
    public static string? Check(string root, string path, string shown)
    {
        if (!InputLimits.Current.AllowDataOutsideRoot && Outside(root, path) is { } why) return $"'{shown}' {why}";
        if (Directory.Exists(path)) return $"'{shown}' is a directory, not a file";
        if (!File.Exists(path)) return $"'{shown}' does not exist";
        var kind = BoundedFile.FileKind(path);
        if (kind is not null and not "regular file") return $"'{shown}' is a {kind}, not a regular file";
        return null;
    }

    /// <summary>Why <paramref name="path"/> is not under <paramref name="root"/>, or null when it is.</summary>
    private static string? Outside(string root, string path)
    {
        string full, fullRoot;
        try { full = Path.GetFullPath(path); fullRoot = Path.GetFullPath(root); }
        catch (ArgumentException) { return "is not a valid path"; }
        if (!SafeFiles.IsUnder(full, Path.TrimEndingDirectorySeparator(fullRoot)))
            return "leads outside the data folder (names in benchmark files must stay under --data; allow with --allow-outside-data)";
        if (!File.Exists(full) && !Directory.Exists(full)) return null; // nothing to resolve: the existence check reports it
        var real = SafeFiles.RealPath(full);
        if (real is null) return "is a link that cannot be resolved (a loop or a missing target)";
        if (AllowedRoots(fullRoot).Any(r => SafeFiles.IsUnder(real, r))) return null;
        return "is a link that leads outside the data folder (allow with --allow-outside-data)";
    }

    /// <summary>The data folder's real path, plus <c>…/blobs</c> when it lies inside a Hub cache snapshot (<c>…/snapshots/REV/…</c>).</summary>
    private static List<string> AllowedRoots(string root)
    {
        var roots = new List<string> { Path.TrimEndingDirectorySeparator(SafeFiles.RealPath(root) ?? root) };
        for (var d = new DirectoryInfo(root); d?.Parent is { } parent; d = parent)
            if (parent.Name == "snapshots" && parent.Parent is { } repo)
            {
                var blobs = Path.Combine(repo.FullName, "blobs");
                roots.Add(SafeFiles.RealPath(blobs) ?? blobs);
                break;
            }
        return roots;
    }

    /// <summary>Opens a data file (JSON, CSV, JSON Lines) of at most <see cref="InputLimits.MaxDataFileBytes"/>, regular files only.</summary>
    /// <exception cref="InputFileException">Not a regular file.</exception>
    public static CappedStream Open(string path, string what) => BoundedFile.OpenCapped(path, InputLimits.Current.MaxDataFileBytes, what);
}
