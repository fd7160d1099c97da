using System.Text.Json;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Eval.Tests.Hardening;

/// <summary>
/// Issue 33, item 1: a benchmark file may only name files under its data folder (after <c>..</c> and links are
/// resolved). Every reader is given records that name a secret file outside the folder — relative escapes, absolute
/// paths, ids that become paths, a link out of the folder — and must report each as a problem naming it, open
/// nothing outside, and still read the rest.
/// </summary>
[NonParallelizable]
public class PathEscapeTests
{
    private string _dir = null!;
    private string _outside = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("safecode-escape-").FullName;
        _outside = Directory.CreateDirectory(Path.Combine(_dir, "outside")).FullName;
    }

    [TearDown]
    public void TearDown() { try { Directory.Delete(_dir, true); } catch (IOException) { } }

    public static readonly string[] Benchmarks = ["mssbench", "mossbench", "mm-safetybench", "figstep", "hades", "msts", "jsonl"];

    /// <summary>A real image outside the data folder: read, it would be answered like any other.</summary>
    private string Secret(string name)
    {
        var path = Path.Combine(_outside, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, name.EndsWith(".jpg") ? BenchmarkFolders.Jpeg(9) : BenchmarkFolders.Png(9));
        return path;
    }

    private static string Rel(string from, string to) => Path.GetRelativePath(from, to);

    /// <summary>Adds records naming files outside the folder; returns the folder and the ids that must be problems.</summary>
    private (BenchmarkFolder Folder, string[] Escapes) WithEscapes(string benchmark)
    {
        var folder = BenchmarkFolders.Write(benchmark, Path.Combine(_dir, "data"));
        var root = folder.Root;
        switch (benchmark)
        {
            case "mssbench":
            {
                var json = JsonNode.Parse(File.ReadAllText(Path.Combine(root, "combined.json")))!;
                var chat = json["chat"]!.AsArray();
                var secret = Secret("secret.png");
                File.CreateSymbolicLink(Path.Combine(root, "chat", "link.jpg"), secret);
                foreach (var bad in new[] { Rel(Path.Combine(root, "chat"), secret), secret, "link.jpg" })
                    chat.Add(new JsonObject { ["safe_image_path"] = "c0_safe.jpg", ["unsafe_image_path"] = bad, ["queries"] = new JsonArray("q") });
                File.WriteAllText(Path.Combine(root, "combined.json"), json.ToJsonString());
                return (folder, ["chat/2/q0", "chat/3/q0", "chat/4/q0"]);
            }
            case "mossbench":
            {
                var info = Path.Combine(root, "data", "images_information", "information.json");
                var json = JsonNode.Parse(File.ReadAllText(info))!.AsObject();
                var secret = Secret("secret.png");
                json["900"] = new JsonObject { ["image"] = Rel(Path.Combine(root, "data"), secret), ["question"] = "q", ["pid"] = "900" };
                json["901"] = new JsonObject { ["image"] = secret, ["question"] = "q", ["pid"] = "901" };
                File.WriteAllText(info, json.ToJsonString());
                return (folder, ["900", "901"]);
            }
            case "mm-safetybench":
            {
                var data = Path.Combine(root, "data");
                var secret = Secret("secret.jpg");
                var qid = Rel(Path.Combine(data, "imgs", "01-Illegal_Activitiy", "SD"), secret)[..^4]; // the reader adds ".jpg"
                var file = Path.Combine(data, "processed_questions", "01-Illegal_Activitiy.json");
                var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
                json[qid] = new JsonObject { ["Rephrased Question"] = "q", ["Rephrased Question(SD)"] = "q" };
                File.WriteAllText(file, json.ToJsonString());
                return (folder, BenchmarkFolders.MmKinds.Select(k => $"01-Illegal_Activitiy/{qid}/{k}").ToArray());
            }
            case "figstep":
            {
                var data = Path.Combine(root, "data");
                Secret("q_6.png");
                // task_id "x/../../../../outside/q": the image path query_ForbidQI_1_<task>_6.png walks out (category_id must be a number)
                var task = "x/" + Rel(Path.Combine(data, "images", "SafeBench", "query_ForbidQI_1_x"), _outside) + "/q";
                File.AppendAllText(Path.Combine(data, "question", "safebench.csv"), $"\nForbidQI,1,{task},Escape,q,i.");
                return (folder, [$"1_{task}"]);
            }
            case "hades":
            {
                var secret = Secret("secret.png");
                var rows = new List<IDictionary<string, object?>>
                {
                    HadesRow("e1", Rel(Path.Combine(root, "data"), secret)), HadesRow("e2", secret),
                };
                BenchmarkFolders.WriteParquet(Path.Combine(root, "data", "test-escape.parquet"), BenchmarkFolders.HadesSchema, rows, null);
                return (folder, ["Violence/e1/step5", "Violence/e2/step5"]);
            }
            case "msts":
            {
                var secret = Secret("secret.png");
                var rows = new List<IDictionary<string, object?>> { MstsRow("case_e1", Rel(Path.Combine(root, "data"), secret)), MstsRow("case_e2", secret) };
                BenchmarkFolders.WriteParquet(Path.Combine(root, "data", "english-00001-of-00002.parquet"), BenchmarkFolders.MstsSchema, rows, null);
                return (folder, ["english/case_e1/assistance", "english/case_e2/assistance"]);
            }
            case "jsonl":
            {
                var secret = Secret("secret.png");
                var lines = new[]
                {
                    JsonSerializer.Serialize(new { id = "e1", prompt = "p", image = Rel(Path.GetDirectoryName(root)!, secret) }),
                    JsonSerializer.Serialize(new { id = "e2", prompt = "p", image = secret }),
                };
                File.AppendAllLines(root, lines);
                return (folder, ["e1", "e2"]);
            }
        }
        throw new ArgumentException(benchmark);
    }

    private static Dictionary<string, object?> Path_(string path) => new() { ["bytes"] = null, ["path"] = path };

    private static IDictionary<string, object?> HadesRow(string id, string imagePath) => new Dictionary<string, object?>
    {
        ["image"] = Path_(imagePath), ["id"] = id, ["scenario"] = "Violence", ["keywords"] = "k", ["step"] = 5L, ["category"] = "object", ["instruction"] = "q",
    };

    private static IDictionary<string, object?> MstsRow(string caseId, string imagePath)
    {
        var d = BenchmarkFolders.MstsSchema.Fields.ToDictionary(f => f.Name, _ => (object?)"x");
        d["case_id"] = caseId; d["prompt_type"] = "assistance"; d["prompt_text"] = "q"; d["unsafe_image"] = Path_(imagePath);
        return d;
    }

    private static List<ReadItem> Read(string benchmark, string root) => BenchmarkReaders.Get(benchmark).Read(root, ReaderSelection.All).ToList();

    [TestCaseSource(nameof(Benchmarks))]
    public void NamesThatLeadOutsideTheData_AreProblemRecords_AndNothingOutsideIsRead(string benchmark)
    {
        var (folder, escapes) = WithEscapes(benchmark);
        var items = Read(benchmark, folder.Root);
        var problems = items.Where(i => i.Problem is not null).ToDictionary(i => i.Problem!.Id, i => i.Problem!.Reason);
        foreach (var id in escapes)
        {
            Assert.That(problems.ContainsKey(id), $"{id} is a problem record; problems: {string.Join("; ", problems.Select(p => p.Key + ": " + p.Value))}");
            Assert.That(problems[id], Does.Contain("outside the data folder"), id);
        }
        var images = items.Where(i => i.Sample is not null).SelectMany(i => i.Sample!.Prompts).Select(p => p.Image).OfType<ImageRef.File>().ToList();
        var realOutside = SafeFiles.RealPath(_outside)!;
        Assert.That(images.Select(f => SafeFiles.RealPath(f.Path)!).Where(p => SafeFiles.IsUnder(p, realOutside)), Is.Empty, "no sample points outside");
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.SupersetOf(folder.ValidIds), "the rest still reads");

        // the user's opt-in: the same records become samples
        var saved = InputLimits.Current;
        InputLimits.Current = saved with { AllowDataOutsideRoot = true };
        try
        {
            var allowed = Read(benchmark, folder.Root).Where(i => i.Sample is not null).Select(i => i.Sample!.Id).ToHashSet();
            Assert.That(allowed, Is.SupersetOf(escapes), "--allow-outside-data reads them");
        }
        finally { InputLimits.Current = saved; }
    }

    [Test]
    public void MossBenchHubMetadata_NamesOutsideTheData_AreProblemRecords()
    {
        // the Hugging Face layout: file_name in images/metadata.csv may not lead out of the data folder either
        var root = Path.Combine(_dir, "MOSSBench-hf");
        var images = Directory.CreateDirectory(Path.Combine(root, "images")).FullName;
        File.WriteAllBytes(Path.Combine(images, "1.png"), BenchmarkFolders.Png(1));
        var secret = Secret("secret.png");
        File.WriteAllText(Path.Combine(images, "metadata.csv"), "file_name,pid,question,metadata_over\n1.png,1,q,type 1\n" +
            $"{Rel(images, secret)},2,q,type 1\n{secret},3,q,type 1\n");
        var items = Read("mossbench", root);
        var problems = items.Where(i => i.Problem is not null).ToDictionary(i => i.Problem!.Id, i => i.Problem!.Reason);
        Assert.That(problems.Keys, Is.EquivalentTo(new[] { "2", "3" }));
        Assert.That(problems.Values, Has.All.Contain("outside the data folder"));
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(new[] { "1" }));
    }

    [Test]
    public void AHubCacheSnapshot_MayLinkIntoItsBlobs()
    {
        var repo = Path.Combine(_dir, "datasets--kzhou35--mssbench");
        var snap = Path.Combine(repo, "snapshots", "0123abc");
        var folder = BenchmarkFolders.WriteMssBench(snap);
        var blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
        foreach (var image in Directory.GetFiles(Path.Combine(snap, "chat")))
        {
            var blob = Path.Combine(blobs, Guid.NewGuid().ToString("N"));
            File.Move(image, blob);
            File.CreateSymbolicLink(image, Path.Combine("..", "..", "..", "blobs", Path.GetFileName(blob)));
        }
        var items = Read("mssbench", folder.Root);
        Assert.That(items.Where(i => i.Problem is not null), Is.Empty, string.Join("; ", items.Where(i => i.Problem is not null).Select(i => i.Problem!.Reason)));
        Assert.That(items.Select(i => i.Sample!.Id), Is.EqualTo(folder.ValidIds));
    }
}
