using System.Text;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Tests.Hardening;

namespace SafeCoDe.Eval.Tests.Hardening;

/// <summary>
/// Issue 33, items 4 and 6 for the readers: FIFOs, devices and link loops in a benchmark copy, files and lines over
/// their limits, and seeded mutants of each benchmark's data file. Every case ends within the suite's time limit in
/// problems or a typed error naming the file.
/// </summary>
[NonParallelizable]
public class HostileDataFolderTests
{
    private string _dir = null!;

    [SetUp] public void SetUp() => _dir = Directory.CreateTempSubdirectory("safecode-hostile-data-").FullName;
    [TearDown] public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    /// <summary>Reads everything; returns the problems' reasons and the layout error, if any (other errors fail the case).</summary>
    private static (List<ReadItem> Items, string Text) ReadAll(string benchmark, string root, string name)
    {
        var items = new List<ReadItem>();
        var e = Hostile.Run(name, () => items.AddRange(BenchmarkReaders.Get(benchmark).Read(root, ReaderSelection.All)));
        if (e is not null) Assert.That(e, Is.InstanceOf<BenchmarkLayoutException>().Or.InstanceOf<InputLimitException>(), name);
        var text = string.Join("\n", items.Where(i => i.Problem is not null).Select(i => i.Problem!.Reason)) + (e is null ? "" : "\n" + e.Message);
        return (items, text);
    }

    [TestCase("mssbench", "combined.json")]
    [TestCase("mssbench", "chat/c0_safe.jpg")]
    [TestCase("mossbench", "data/images_information/information.json")]
    [TestCase("mossbench", "data/images/1.png")]
    [TestCase("mm-safetybench", "data/processed_questions/01-Illegal_Activitiy.json")]
    [TestCase("figstep", "data/question/safebench.csv")]
    [TestCase("hades", "data/test-00000-of-00002.parquet")]
    [TestCase("msts", "data/english-00000-of-00001.parquet")]
    [TestCase("jsonl", "prompts.jsonl")]
    [TestCase("jsonl", "imgs/a.png")]
    public void AFifoInABenchmarkCopy_IsRefusedByName_WithoutBlocking(string benchmark, string file)
    {
        var folder = BenchmarkFolders.Write(benchmark, _dir);
        var path = Path.Combine(_dir, file);
        File.Delete(path);
        Hostile.MkFifo(path);
        var (_, text) = ReadAll(benchmark, folder.Root, $"{benchmark}: FIFO {file}");
        Assert.That(text, Does.Contain("FIFO"));
    }

    [Test]
    public void ADeviceAsTheDataFile_IsRefusedByName()
    {
        var folder = BenchmarkFolders.Write("mssbench", _dir);
        File.Delete(Path.Combine(_dir, "combined.json"));
        File.CreateSymbolicLink(Path.Combine(_dir, "combined.json"), "/dev/zero");
        Assert.That(ReadAll("mssbench", folder.Root, "combined.json -> /dev/zero").Text, Does.Contain("character device"));
        Assert.That(ReadAll("jsonl", "/dev/zero", "--data /dev/zero").Text, Does.Contain("character device"));
    }

    [Test]
    public void TheParquetSearch_DoesNotFollowALinkLoop_AndIsBounded()
    {
        // no data/*.parquet and none at the top: the reader searches below, where a link points back up
        var root = Directory.CreateDirectory(Path.Combine(_dir, "hades")).FullName;
        var deep = Directory.CreateDirectory(Path.Combine(root, "a", "b", "c")).FullName;
        File.CreateSymbolicLink(Path.Combine(root, "a", "b", "loop"), root);
        var hades = BenchmarkFolders.WriteHades(Path.Combine(_dir, "src"));
        File.Copy(Path.Combine(hades.Root, "data", "test-00000-of-00002.parquet"), Path.Combine(deep, "test-00000.parquet"));
        var (items, _) = ReadAll("hades", root, "hades with a link loop");
        Assert.That(items.Count(i => i.Sample is not null), Is.EqualTo(3), "the one real shard, read once");

        var saved = InputLimits.Current;
        InputLimits.Current = saved with { MaxWalkEntries = 50 };
        try
        {
            for (int i = 0; i < 60; i++) File.WriteAllText(Path.Combine(deep, $"f{i}.txt"), "x");
            var e = Assert.Throws<InputLimitException>(() => BenchmarkReaders.Get("hades").Read(root, ReaderSelection.All));
            Assert.That(e!.Message, Does.Contain("MaxWalkEntries"));
        }
        finally { InputLimits.Current = saved; }
    }

    [Test]
    public void ADataFileOverItsLimit_IsAProblemNamingTheLimit()
    {
        var folder = BenchmarkFolders.Write("mssbench", _dir);
        var saved = InputLimits.Current;
        InputLimits.Current = saved with { MaxDataFileBytes = 512 };
        try { Assert.That(ReadAll("mssbench", folder.Root, "combined.json over 512 bytes").Text, Does.Contain("combined.json").And.Contain("MaxDataFileBytes")); }
        finally { InputLimits.Current = saved; }
    }

    [Test]
    public void AJsonlLineOverItsLimit_IsOneProblem_AndTheNextLinesStillRead()
    {
        var folder = BenchmarkFolders.WriteJsonl(_dir);
        var lines = File.ReadAllLines(folder.Root).ToList();
        lines.Insert(1, "{\"id\": \"huge\", \"prompt\": \"" + new string('x', 300_000) + "\", \"image\": \"imgs/a.png\"}");
        File.WriteAllLines(folder.Root, lines);
        var saved = InputLimits.Current;
        InputLimits.Current = saved with { MaxJsonlLineBytes = 100_000 };
        try
        {
            var (items, text) = ReadAll("jsonl", folder.Root, "a 300 kB line");
            Assert.That(text, Does.Contain("line 2").And.Contain("MaxJsonlLineBytes"));
            Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(folder.ValidIds));
        }
        finally { InputLimits.Current = saved; }
    }

    private static readonly (string Benchmark, string File)[] DataFiles =
    [
        ("mssbench", "combined.json"), ("mossbench", "data/images_information/information.json"),
        ("mm-safetybench", "data/processed_questions/01-Illegal_Activitiy.json"), ("figstep", "data/question/safebench.csv"),
        ("hades", "data/test-00000-of-00002.parquet"), ("msts", "data/english-00000-of-00001.parquet"), ("jsonl", "prompts.jsonl"),
    ];

    private static readonly string[] Benchmarks = ["mssbench", "mossbench", "mm-safetybench", "figstep", "hades", "msts", "jsonl"];

    /// <summary>
    /// Seeded hostile folders: a random file or folder of each benchmark copy replaced by a FIFO, a link to
    /// /dev/zero, a link out of the folder, a folder that links to itself, or an empty file; and a FIFO or a link loop
    /// added next to the data. Every read ends within the case limit in samples, problems or a layout error, and no
    /// sample points outside the folder.
    /// </summary>
    [Test]
    public void SeededHostileFolders_EndCleanly_AndNeverLeaveTheFolder()
    {
        var rng = new Random(Hostile.Seed + 11);
        var outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
        File.WriteAllBytes(Path.Combine(outside, "secret.png"), BenchmarkFolders.Png(3));
        int n = Hostile.Count(3), cases = 0;
        foreach (var benchmark in Benchmarks)
            for (int i = 0; i < n; i++, cases++)
            {
                var dir = Path.Combine(_dir, $"{benchmark}-h{i}");
                var folder = BenchmarkFolders.Write(benchmark, dir);
                var entries = Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
                var victim = entries[rng.Next(entries.Count)];
                var kind = rng.Next(6);
                if (kind < 5)
                {
                    if (Directory.Exists(victim)) Directory.Delete(victim, true); else File.Delete(victim);
                    switch (kind)
                    {
                        case 0: Hostile.MkFifo(victim); break;
                        case 1: File.CreateSymbolicLink(victim, "/dev/zero"); break;
                        case 2: File.CreateSymbolicLink(victim, Path.Combine(outside, "secret.png")); break;
                        case 3: Directory.CreateSymbolicLink(victim, Path.GetDirectoryName(victim)!); break;
                        default: File.WriteAllBytes(victim, []); break;
                    }
                }
                else
                {
                    var parent = Directory.Exists(victim) ? victim : Path.GetDirectoryName(victim)!;
                    Hostile.MkFifo(Path.Combine(parent, "zz-fifo.parquet"));
                    Directory.CreateSymbolicLink(Path.Combine(parent, "zz-loop"), parent);
                }
                var name = $"{benchmark} hostile {i} ({kind}: {Path.GetRelativePath(dir, victim)})";
                var (items, _) = ReadAll(benchmark, folder.Root, name);
                var real = SafeFiles.RealPath(dir)!;
                foreach (var f in items.Where(x => x.Sample is not null).SelectMany(x => x.Sample!.Prompts).Select(p => p.Image).OfType<ImageRef.File>())
                    Assert.That(SafeFiles.IsUnder(SafeFiles.RealPath(f.Path) ?? f.Path, real), $"{name}: {f.Path} is outside");
            }
        TestContext.Out.WriteLine($"{cases} hostile folders read cleanly");
    }

    /// <summary>
    /// Seeded mutants of each benchmark's data file (bits flipped, bytes cut, an escape inserted into a string,
    /// duplicated spans): reading must end in problems or a layout error, and no sample may point outside the folder.
    /// </summary>
    [Test]
    public void SeededDataFileMutants_EndCleanly_AndNeverLeaveTheFolder()
    {
        var rng = new Random(Hostile.Seed);
        int n = Hostile.Count(8), cases = 0;
        foreach (var (benchmark, file) in DataFiles)
        {
            var clean = Path.Combine(_dir, "clean-" + benchmark);
            BenchmarkFolders.Write(benchmark, clean);
            var original = File.ReadAllBytes(Path.Combine(clean, file));
            for (int i = 0; i < n; i++, cases++)
            {
                var dir = Path.Combine(_dir, $"{benchmark}-{i}");
                var folder = BenchmarkFolders.Write(benchmark, dir);
                File.WriteAllBytes(Path.Combine(dir, file), Mutate(original, rng));
                var (items, _) = ReadAll(benchmark, folder.Root, $"{benchmark} mutant {i}");
                var real = SafeFiles.RealPath(dir)!;
                foreach (var f in items.Where(x => x.Sample is not null).SelectMany(x => x.Sample!.Prompts).Select(p => p.Image).OfType<ImageRef.File>())
                    Assert.That(SafeFiles.IsUnder(SafeFiles.RealPath(f.Path) ?? f.Path, real), $"{benchmark} mutant {i}: {f.Path} is outside");
            }
        }
        TestContext.Out.WriteLine($"{cases} data-file mutants read cleanly");
    }

    private static byte[] Mutate(byte[] b, Random rng)
    {
        var list = b.ToList();
        int at = rng.Next(list.Count);
        switch (rng.Next(4))
        {
            case 0: for (int k = 0; k < 1 + rng.Next(8); k++) list[rng.Next(list.Count)] ^= (byte)(1 << rng.Next(8)); break;
            case 1: list.RemoveRange(at, Math.Min(list.Count - at, 1 + rng.Next(64))); break;
            case 2:
                int quote = list.IndexOf((byte)'"', at);
                list.InsertRange(quote < 0 ? at : quote + 1, Encoding.UTF8.GetBytes(rng.Next(2) == 0 ? "../../../../../../etc/" : "/etc/passwd#"));
                break;
            default: list.InsertRange(at, list.Skip(rng.Next(list.Count)).Take(1 + rng.Next(200)).ToList()); break;
        }
        return list.ToArray();
    }
}
