namespace SafeCoDe.Eval.Runs;

/// <summary>Combines shard RUN folders into one RUN folder.</summary>
public static class RunMerge
{
    /// <summary>What a merge found.</summary>
    public sealed record Result(int Records, int Problems, int Duplicates, IReadOnlyList<string> Warnings);

    /// <summary>
    /// Merges <paramref name="runs"/> into <paramref name="outDir"/> (which must not hold a run already). All runs must
    /// share one options hash and scorer; records are kept once per id (first run wins), problems likewise.
    /// </summary>
    public static Result Merge(IReadOnlyList<string> runs, string outDir)
    {
        if (runs.Count == 0) throw new RunStoreException("eval merge needs at least one RUN folder");
        if (File.Exists(Path.Combine(outDir, RunStore.ManifestFile)))
            throw new RunStoreException($"{outDir} already holds a run; merge into a new folder");
        var manifests = runs.Select(RunStore.ReadManifest).ToList();
        var first = manifests[0];
        for (int i = 1; i < runs.Count; i++)
        {
            if (manifests[i].IdentityHash() != first.IdentityHash())
                throw new RunStoreException($"{runs[i]} has options hash {manifests[i].OptionsHash}, {runs[0]} has {first.OptionsHash}: these runs are not shards of one evaluation");
            if (manifests[i].Scorer != first.Scorer)
                throw new RunStoreException($"{runs[i]} was scored with '{manifests[i].Scorer}', {runs[0]} with '{first.Scorer}': re-score them with one scorer first (safecode eval score)");
        }
        var warnings = new List<string>();
        var shards = manifests.Select(m => m.Shard).Where(s => s is not null).Select(s => ShardSpec.Parse(s!)).ToList();
        if (shards.Count > 0)
        {
            var counts = shards.Select(s => s.Count).Distinct().ToList();
            if (counts.Count > 1) warnings.Add($"the runs were split into different shard counts ({string.Join(", ", counts)})");
            else
            {
                var missing = Enumerable.Range(0, counts[0]).Except(shards.Select(s => s.Index)).ToList();
                if (missing.Count > 0) warnings.Add($"shard(s) {string.Join(", ", missing.Select(m => $"{m}/{counts[0]}"))} are missing: the merged run is incomplete");
            }
            var repeated = shards.GroupBy(s => s.Index).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            if (repeated.Count > 0) warnings.Add($"shard(s) {string.Join(", ", repeated)} given more than once");
        }
        var records = new List<RunRecord>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        int dups = 0;
        foreach (var run in runs)
            foreach (var r in RunStore.ReadRecords(run))
                if (ids.Add(r.Id)) records.Add(r); else dups++;
        var problems = runs.SelectMany(RunStore.ReadProblems).Where(p => !ids.Contains(p.Id)).DistinctBy(p => p.Id).ToList();
        Directory.CreateDirectory(outDir);
        RunStore.RewriteRecords(outDir, records);
        RunStore.RewriteProblems(outDir, problems);
        RunStore.WriteManifest(outDir, first with { Shard = null, MergedFrom = runs.Select(Path.GetFullPath).ToList(), Created = DateTime.UtcNow.ToString("o") });
        return new Result(records.Count, problems.Count, dups, warnings);
    }
}
