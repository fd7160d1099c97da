using System.Text;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Torch.Tests.Hardening;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Hardening;

/// <summary>
/// Issue 33, item 2: resuming never loses a record. Only a torn last line is repaired (its bytes saved first); any
/// other unreadable line stops the resume naming the line and leaves the file as it is; an edited run.json is
/// refused. Plus the run-folder corruption mutants of the seeded suite.
/// </summary>
[NonParallelizable]
public class RunFolderTests
{
    private static RunManifest Manifest(string seed = "1")
    {
        var options = new SortedDictionary<string, string> { ["mode"] = "safecode", ["seed"] = seed };
        return new RunManifest
        {
            Model = "m", ModelFingerprint = "m#0", Benchmark = "jsonl", Mode = "safecode", Options = options,
            OptionsHash = RunManifest.Hash("m#0", "jsonl", options), Scorer = "keyword",
        };
    }

    private static string RunWith(params string[] ids)
    {
        var dir = NewDir();
        using var s = RunStore.OpenOrCreate(dir, Manifest());
        foreach (var id in ids) s.Append(Rec(id, "jsonl", null, Out("answer", "safe")));
        s.AddProblem(new ProblemRecord("p1", "bad image"));
        return dir;
    }

    private static string Records(string dir) => Path.Combine(dir, RunStore.RecordsFile);

    [Test]
    public void AWrongTypedFieldInACompleteRecord_StopsTheResume_NamingTheLine_AndNothingIsDeleted()
    {
        var dir = RunWith("a", "b", "c");
        var lines = File.ReadAllLines(Records(dir));
        var node = JsonNode.Parse(lines[1])!;
        node["outputs"]![0]!["prompt_tokens"] = "many";
        lines[1] = node.ToJsonString();
        File.WriteAllText(Records(dir), string.Join("\n", lines) + "\n");
        var before = File.ReadAllBytes(Records(dir));

        var e = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(dir, Manifest()).Dispose());
        Assert.That(e!.Message, Does.Contain("records.jsonl line 2").And.Contain("prompt_tokens").And.Contain("not resumed"));
        Assert.That(e.Message, Does.Not.Contain("System."), "no .NET type names");
        Assert.That(File.ReadAllBytes(Records(dir)), Is.EqualTo(before), "the file is left as it is");
        Assert.That(Directory.GetFiles(dir, "*.torn-*"), Is.Empty);
        // readers fail visibly too, instead of dropping the record (re-scoring rewrites the file from what they return)
        var r = Assert.Throws<RunStoreException>(() => RunStore.ReadRecords(dir));
        Assert.That(r!.Message, Does.Contain("line 2"));
    }

    [Test]
    public void ATornLastLine_IsCut_AfterItsBytesAreSaved()
    {
        var dir = RunWith("a", "b");
        const string torn = "{\"id\":\"c\",\"benchmark\":\"jso";
        File.AppendAllText(Records(dir), torn);
        using (var s = RunStore.OpenOrCreate(dir, Manifest()))
        {
            Assert.That(s.RepairedBytes, Is.EqualTo(torn.Length));
            Assert.That(s.Repairs.Single(), Does.Contain("line 3").And.Contain("torn"));
            Assert.That(s.IsFinished("a") && s.IsFinished("b") && !s.IsFinished("c"), Is.True);
        }
        var backup = Directory.GetFiles(dir, RunStore.RecordsFile + ".torn-*").Single();
        Assert.That(File.ReadAllText(backup), Is.EqualTo(torn), "the cut bytes are kept");
        Assert.That(RunStore.ReadRecords(dir).Select(x => x.Id), Is.EqualTo(new[] { "a", "b" }));
    }

    [Test]
    public void AWholeLastRecordWithoutItsNewline_IsKept()
    {
        var dir = RunWith("a", "b");
        var text = File.ReadAllText(Records(dir));
        File.WriteAllText(Records(dir), text.TrimEnd('\n'));
        using (var s = RunStore.OpenOrCreate(dir, Manifest()))
        {
            Assert.That(s.RepairedBytes, Is.Zero);
            Assert.That(s.IsFinished("b"), Is.True);
            s.Append(Rec("c", "jsonl", null, Out("answer", "safe")));
        }
        Assert.That(RunStore.ReadRecords(dir).Select(x => x.Id), Is.EqualTo(new[] { "a", "b", "c" }));
    }

    [Test]
    public void ARepeatedLine_StaysInTheFile_AndCountsOnce()
    {
        var dir = RunWith("a", "b");
        var lines = File.ReadAllLines(Records(dir));
        File.AppendAllText(Records(dir), lines[0] + "\n");
        var before = File.ReadAllBytes(Records(dir));
        using (var s = RunStore.OpenOrCreate(dir, Manifest())) Assert.That(s.RecordIds, Has.Count.EqualTo(2));
        Assert.That(File.ReadAllBytes(Records(dir)), Is.EqualTo(before), "nothing deleted");
        Assert.That(RunStore.ReadRecords(dir).Select(x => x.Id), Is.EqualTo(new[] { "a", "b" }));
    }

    [Test]
    public void ARunJsonWhoseOptionsNoLongerMatchItsHash_IsRefused()
    {
        var dir = RunWith("a");
        var path = Path.Combine(dir, RunStore.ManifestFile);
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        json["options"]!["seed"] = "2"; // an edit that keeps the hash
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(dir, Manifest()).Dispose());
        Assert.That(e!.Message, Does.Contain("no longer match its options hash"));
    }

    [Test]
    public void AFifoAsRecordsOrRunJson_IsRefusedWithoutBlocking()
    {
        foreach (var file in new[] { RunStore.RecordsFile, RunStore.ManifestFile })
        {
            var dir = RunWith("a");
            File.Delete(Path.Combine(dir, file));
            Hostile.MkFifo(Path.Combine(dir, file));
            var e = Hostile.Run("fifo " + file, () => RunStore.OpenOrCreate(dir, Manifest()).Dispose());
            Assert.That(e, Is.TypeOf<RunStoreException>(), file);
            Assert.That(e!.Message, Does.Contain("FIFO"));
        }
    }

    [Test]
    public void ALineOverTheLimit_StopsTheResume_WithoutReadingItIntoMemory()
    {
        var dir = RunWith("a");
        var saved = Torch.Runtime.InputLimits.Current;
        Torch.Runtime.InputLimits.Current = saved with { MaxJsonlLineBytes = 1 << 16 };
        try
        {
            File.AppendAllText(Records(dir), "{\"id\":\"x\",\"benchmark\":\"" + new string('y', 1 << 17) + "\"}\n");
            var e = Assert.Throws<RunStoreException>(() => RunStore.OpenOrCreate(dir, Manifest()).Dispose());
            Assert.That(e!.Message, Does.Contain("line 2").And.Contain("MaxJsonlLineBytes"));
        }
        finally { Torch.Runtime.InputLimits.Current = saved; }
    }

    [Test]
    public void ARepairIsReported_EvenWithQuiet()
    {
        var folder = BenchmarkFolders.WriteJsonl(NewDir());
        var run = Path.Combine(NewDir(), "run");
        string[] args = ["eval", "run", "-b", "jsonl", "-d", folder.Root, "-m", TinyModel, "-o", run, "--device", "cpu", "--max-new-tokens", "1",
            "--max-steps", "1", "--seed", "1", "--greedy", "--quiet", "--judge", "fixed:safe", "--limit", "2"];
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.That(SafeCoDe.Cli.Cli.Run(args, o, e), Is.EqualTo(0), e.ToString());
        File.AppendAllText(Records(run), "{\"id\":\"7\",\"bench");
        e = new StringWriter();
        Assert.That(SafeCoDe.Cli.Cli.Run(args, o, e), Is.EqualTo(0), e.ToString());
        Assert.That(e.ToString(), Does.Contain("warning").And.Contain("torn").And.Contain(".torn-"));
    }

    /// <summary>
    /// Seeded corruption of a run folder (bytes flipped, cut, lines duplicated or swapped, run.json edited): opening
    /// it must succeed or refuse cleanly, and it never loses a complete record it did not refuse.
    /// </summary>
    [Test]
    public void SeededRunFolderMutants_NeverLoseARecord()
    {
        var rng = new Random(Hostile.Seed);
        int n = Hostile.Count(40), refused = 0;
        for (int i = 0; i < n; i++)
        {
            var dir = RunWith("a", "b", "c", "d");
            var original = File.ReadAllBytes(Records(dir));
            var mutated = Mutate(original, rng);
            File.WriteAllBytes(Records(dir), mutated);
            RunStore? store = null;
            var e = Hostile.Run($"run-folder mutant {i}", () => store = RunStore.OpenOrCreate(dir, Manifest()));
            store?.Dispose();
            if (e is not null) { Assert.That(e, Is.TypeOf<RunStoreException>()); refused++; continue; }
            var after = File.ReadAllBytes(Records(dir));
            // what is left is the mutated file, or it minus a torn tail that was saved to a .torn-* copy first
            Assert.That(mutated.AsSpan().StartsWith(after) || after.AsSpan().StartsWith(mutated), Is.True, $"mutant {i}: only the tail changes");
            if (after.Length < mutated.Length)
                Assert.That(File.ReadAllBytes(Directory.GetFiles(dir, "*.torn-*").Single()), Is.EqualTo(mutated[after.Length..]), $"mutant {i}: cut bytes saved");
        }
        TestContext.Out.WriteLine($"{n} run-folder mutants: {refused} refused with a message, the rest opened without losing a line");
    }

    private static byte[] Mutate(byte[] b, Random rng)
    {
        var list = b.ToList();
        switch (rng.Next(5))
        {
            case 0: list[rng.Next(list.Count)] ^= (byte)(1 << rng.Next(8)); break;
            case 1: list.RemoveRange(rng.Next(list.Count), 1 + rng.Next(Math.Min(40, list.Count / 4))); break;
            case 2: list.RemoveRange(list.Count - 1 - rng.Next(60), 1 + rng.Next(10)); break; // a torn tail
            case 3: list.AddRange(list.Take(list.IndexOf((byte)'\n') + 1)); break; // a repeated line
            default: list.InsertRange(rng.Next(list.Count), Encoding.UTF8.GetBytes("\"prompt_tokens\":\"many\",")); break;
        }
        return list.ToArray();
    }
}
