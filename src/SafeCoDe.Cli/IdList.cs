using System.Security.Cryptography;
using System.Text;

namespace SafeCoDe.Cli;

/// <summary>
/// The ids of <c>eval run --ids FILE</c>: one sample id per line, blank lines and lines starting with <c>#</c> skipped,
/// surrounding white space ignored. <see cref="Fingerprint"/> is what run.json hashes: the list's content (count and a
/// hash of the sorted ids), not the file's path, so shards reading the list from other paths agree.
/// </summary>
public sealed record IdList(IReadOnlySet<string> Ids, string Fingerprint)
{
    /// <summary>Reads <paramref name="path"/>; a missing, unreadable or empty list is a usage error naming the file.</summary>
    public static IdList Read(string path)
    {
        string[] lines;
        // a regular file within the data-file limit: a FIFO or a device given as the list neither blocks nor fills memory
        try { lines = SafeCoDe.Torch.Runtime.BoundedFile.ReadAllText(path, SafeCoDe.Torch.Runtime.InputLimits.Current.MaxDataFileBytes, "id list").Split('\n'); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SafeCoDe.Torch.Runtime.InputLimitException)
        {
            throw new UsageException($"--ids {path}: cannot be read ({e.Message})");
        }
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in lines)
        {
            var line = raw.Trim().TrimStart('\uFEFF');
            if (line.Length > 0 && !line.StartsWith('#')) ids.Add(line);
        }
        if (ids.Count == 0) throw new UsageException($"--ids {path}: no sample ids in the file (one per line; # starts a comment)");
        var canonical = string.Join("\n", ids.Order(StringComparer.Ordinal));
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)).AsSpan(0, 8)).ToLowerInvariant();
        return new IdList(ids, $"{ids.Count} ids, sha256 {hash}");
    }
}
