using System.Text;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Harness;

public class RunStoreTests
{
    private static RunManifest Manifest(string seed = "1", string? scorer = "keyword", string? shard = null)
    {
        var options = new SortedDictionary<string, string> { ["mode"] = "safecode", ["seed"] = seed };
        return new RunManifest
        {
            Model = "m", ModelFingerprint = "m#0", Benchmark = "jsonl", Mode = "safecode", Options = options,
            OptionsHash = RunManifest.Hash("m#0", "jsonl", options), Scorer = scorer, Shard = shard,
        };
    }

    [Test]
    public void AppendResumeAndTornTail()
    {
        var dir = NewDir();
        using (var s = RunStore.OpenOrCreate(dir, Manifest()))
        {
            s.Append(Rec("a", "jsonl", null, Out("answer", "safe", "héllo — 你好")));
            s.Append(Rec("b", "jsonl", null, Out("answer", "unsafe")));
            s.AddProblem(new ProblemRecord("c", "field 'image' missing"));
            s.AddProblem(new ProblemRecord("c", "again"));
            Assert.Throws<InvalidOperationException>(() => s.Append(Rec("a", "jsonl", null, Out("answer", "safe"))));
        }
        // a kill in the middle of a write leaves a torn tail
        File.AppendAllText(Path.Combine(dir, RunStore.RecordsFile), "{\"id\":\"d\",\"benchm");
        using (var s = RunStore.OpenOrCreate(dir, Manifest()))
        {
            Assert.That(s.RepairedBytes, Is.EqualTo(Encoding.UTF8.GetByteCount("{\"id\":\"d\",\"benchm")));
            Assert.That(s.IsFinished("a") && s.IsFinished("b") && s.IsFinished("c"), Is.True);
            Assert.That(s.IsFinished("d"), Is.False);
            s.Append(Rec("d", "jsonl", null, Out("answer", "safe")));
        }
        var lines = File.ReadAllLines(Path.Combine(dir, RunStore.RecordsFile));
        Assert.That(lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()), Is.EqualTo(new[] { "a", "b", "d" }));
        Assert.That(RunStore.ReadRecords(dir)[0].Outputs[0].Answer, Is.EqualTo("héllo — 你好"));
        Assert.That(RunStore.ReadProblems(dir), Has.Count.EqualTo(1));
    }

    [Test]
    public void TheMismatchMessage_NamesTheFlags_NotTheRunJsonKeys()
    {
        RunManifest Of(DecodingOptions d)
        {
            var options = RunOptions.Flatten(d, new Dictionary<string, string?> { ["prompt_style"] = "official" });
            return new RunManifest { Model = "m", ModelFingerprint = "m#0", Benchmark = "jsonl", Mode = "safecode", Options = options, OptionsHash = RunManifest.Hash("m#0", "jsonl", options), Scorer = "keyword" };
        }
        var dir = NewDir();
        using (RunStore.OpenOrCreate(dir, Of(new SafeCoDeOptions { Seed = 1 }))) { }
        var e = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(dir, Of(new SafeCoDeOptions { Seed = 2, LambdaBoost = 10 })));
        Assert.That(e!.Message, Does.Contain("--seed 1 vs 2").And.Contain("--lambda-boost 1 vs 10"));
        Assert.That(e.Message, Does.Not.Contain("decoding."));
    }

    [Test]
    public void ARunWrittenWithTheOldDashedKeys_ResumesAndMerges_AndItsRunJsonIsLeftAsWritten()
    {
        RunManifest Of(string promptKey, string formatKey, string? shard)
        {
            var options = RunOptions.Flatten(new SafeCoDeOptions { Seed = 1 }, new Dictionary<string, string?> { [promptKey] = "official", [formatKey] = "llavaguard" });
            return new RunManifest
            {
                Model = "m", ModelFingerprint = "m#0", Benchmark = "jsonl", Mode = "safecode", Options = options,
                OptionsHash = RunManifest.Hash("m#0", "jsonl", options), Scorer = "keyword", Shard = shard,
            };
        }
        var old = Of("prompt-style", "judge-format", "0/2");
        var now = Of("prompt_style", "judge_format", "1/2");
        Assert.That(old.OptionsHash, Is.Not.EqualTo(now.OptionsHash), "the keys are hashed as written");
        Assert.That(old.IdentityHash(), Is.EqualTo(now.IdentityHash()));
        Assert.That(now.IdentityHash(), Is.EqualTo(now.OptionsHash));

        var a = NewDir();
        using (var s = RunStore.OpenOrCreate(a, old)) s.Append(Rec("x", "jsonl", null, Out("answer", "safe")));
        var written = File.ReadAllText(Path.Combine(a, RunStore.ManifestFile));
        using (var s = RunStore.OpenOrCreate(a, now with { Shard = "0/2" })) s.Append(Rec("z", "jsonl", null, Out("answer", "safe")));
        Assert.That(File.ReadAllText(Path.Combine(a, RunStore.ManifestFile)), Is.EqualTo(written));
        Assert.That(RunStore.ReadRecords(a).Select(r => r.Id), Is.EqualTo(new[] { "x", "z" }));

        var b = NewDir();
        using (var s = RunStore.OpenOrCreate(b, now)) s.Append(Rec("y", "jsonl", null, Out("answer", "unsafe")));
        var merged = RunMerge.Merge([a, b], Path.Combine(NewDir(), "m"));
        Assert.That(merged.Records, Is.EqualTo(3));

        // another value under an old key is still another run, named by its flag
        var other = Of("prompt-style", "judge-format", null) is var o ? o with { Options = new(o.Options) { ["prompt-style"] = "llava" } } : null!;
        other = other with { OptionsHash = RunManifest.Hash("m#0", "jsonl", other.Options) };
        var c = NewDir();
        using (RunStore.OpenOrCreate(c, other)) { }
        var e = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(c, now));
        Assert.That(e!.Message, Does.Contain("--prompt-style llava vs official"));
    }

    [Test]
    public void OtherOptionsOrScorerAreRefused()
    {
        var dir = NewDir();
        using (RunStore.OpenOrCreate(dir, Manifest())) { }
        var e = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(dir, Manifest(seed: "2")));
        Assert.That(e!.Message, Does.Contain("--seed 1 vs 2"));
        var e2 = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(dir, Manifest(scorer: "openai:gpt-4o")));
        Assert.That(e2!.Message, Does.Contain("eval score"));
        // the shard is not part of the hash
        Assert.DoesNotThrow(() => RunStore.OpenOrCreate(dir, Manifest(shard: "0/2")).Dispose());
    }

    [Test]
    public void ShardsAreDeterministicDisjointAndComplete()
    {
        var ids = Enumerable.Range(0, 500).Select(i => $"chat/{i}/q{i % 3}").ToList();
        var parts = Enumerable.Range(0, 4).Select(i => ids.Where(new ShardSpec(i, 4).Contains).ToList()).ToList();
        Assert.That(parts.Sum(p => p.Count), Is.EqualTo(500));
        Assert.That(parts.SelectMany(p => p).Distinct().Count(), Is.EqualTo(500));
        Assert.That(parts.All(p => p.Count > 80), Is.True, "a roughly even split");
        Assert.That(ShardSpec.Of("chat/0/q0", 4), Is.EqualTo(ShardSpec.Of("chat/0/q0", 4)));
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c: a fixed value, so the split never changes between versions
        Assert.That(ShardSpec.Of("a", 1000), Is.EqualTo((int)(0xaf63dc4c8601ec8cUL % 1000)));
    }

    [Test]
    public void ShardParsing_ExplicitSlurmAndKubernetes()
    {
        Assert.That(ShardSpec.Parse("2/5"), Is.EqualTo(new ShardSpec(2, 5)));
        Assert.Throws<FormatException>(() => ShardSpec.Parse("5/5"));
        Assert.Throws<FormatException>(() => ShardSpec.Parse("x"));
        var slurm = new Dictionary<string, string> { ["SLURM_ARRAY_TASK_ID"] = "12", ["SLURM_ARRAY_TASK_MIN"] = "10", ["SLURM_ARRAY_TASK_COUNT"] = "4" };
        Assert.That(ShardSpec.Parse("auto", env: k => slurm.GetValueOrDefault(k)), Is.EqualTo(new ShardSpec(2, 4)));
        var k8s = new Dictionary<string, string> { ["JOB_COMPLETION_INDEX"] = "3" };
        Assert.That(ShardSpec.Parse("auto", count: 8, env: k => k8s.GetValueOrDefault(k)), Is.EqualTo(new ShardSpec(3, 8)));
        Assert.Throws<FormatException>(() => ShardSpec.Parse("auto", env: k => k8s.GetValueOrDefault(k)));
        Assert.Throws<FormatException>(() => ShardSpec.Parse("auto", env: _ => null));
    }

    [Test]
    public void MergeChecksHashAndDeduplicates()
    {
        var a = NewDir(); var b = NewDir(); var c = NewDir(); var outDir = Path.Combine(NewDir(), "merged");
        using (var s = RunStore.OpenOrCreate(a, Manifest(shard: "0/2"))) { s.Append(Rec("x", "jsonl", null, Out("answer", "safe"))); s.AddProblem(new("p", "bad")); }
        using (var s = RunStore.OpenOrCreate(b, Manifest(shard: "1/2"))) { s.Append(Rec("y", "jsonl", null, Out("answer", "unsafe"))); s.Append(Rec("x", "jsonl", null, Out("answer", "unsafe"))); }
        using (RunStore.OpenOrCreate(c, Manifest(seed: "9"))) { }
        Assert.Throws<RunStoreException>(() => RunMerge.Merge([a, c], Path.Combine(NewDir(), "m")));
        var r = RunMerge.Merge([a, b], outDir);
        Assert.That((r.Records, r.Problems, r.Duplicates, r.Warnings.Count), Is.EqualTo((2, 1, 1, 0)));
        Assert.That(RunStore.ReadManifest(outDir).Shard, Is.Null);
        Assert.That(RunStore.ReadRecords(outDir).Single(x => x.Id == "x").Outputs[0].Score!.Label, Is.EqualTo("safe"));
        var partial = RunMerge.Merge([a], Path.Combine(NewDir(), "m2"));
        Assert.That(partial.Warnings.Single(), Does.Contain("1/2 are missing"));
    }
}
