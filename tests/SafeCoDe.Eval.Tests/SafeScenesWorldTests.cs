using SafeCoDe.Torch.Decoding.Methods;
using SafeCoDe.Torch.Decoding.Methods.SafeCoDeDecoding;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.SafeScenes;
using SafeCoDe.Torch.Decoding;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval.Tests;

public class SafeScenesWorldTests
{
    private static string Temp() => Directory.CreateTempSubdirectory("safescenes-").FullName;

    private static Dictionary<string, string> Hashes(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Test]
    public void SameSeedWritesIdenticalFilesAndAnotherSeedDiffers()
    {
        string a = Temp(), b = Temp(), c = Temp();
        try
        {
            SafeScenesWorld.WriteEvaluation(5, a, 4);
            SafeScenesWorld.WriteEvaluation(5, b, 4);
            SafeScenesWorld.WriteEvaluation(6, c, 4);
            var ha = Hashes(a);
            Assert.That(ha, Has.Count.EqualTo(3 + 4 * 2 + 4)); // combined.json, information.json, safescenes.json + images
            Assert.That(Hashes(b), Is.EqualTo(ha));
            Assert.That(Hashes(c)["combined.json"], Is.Not.EqualTo(ha["combined.json"]));
            Assert.That(Hashes(c)["chat/1.png"], Is.Not.EqualTo(ha["chat/1.png"]));
        }
        finally { Directory.Delete(a, true); Directory.Delete(b, true); Directory.Delete(c, true); }
    }

    [Test]
    public void EvaluationSetHasMssBenchAndMossBenchLayouts()
    {
        string dir = Temp();
        try
        {
            SafeScenesWorld.WriteEvaluation(3, dir, 5);
            var root = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "combined.json")))!.AsObject();
            Assert.That(root["chat"], Is.InstanceOf<JsonArray>());
            Assert.That(root["embodied"], Is.InstanceOf<JsonArray>());
            Assert.That(Directory.Exists(Path.Combine(dir, "embodied")));
            var chat = root["chat"]!.AsArray();
            Assert.That(chat, Has.Count.EqualTo(5));
            foreach (var item in chat.Select(x => x!.AsObject()))
            {
                foreach (var key in new[] { "safe_image_path", "unsafe_image_path", "intent", "unsafe_image", "Type" })
                    Assert.That(item[key]!.GetValueKind(), Is.EqualTo(System.Text.Json.JsonValueKind.String), key);
                foreach (var key in new[] { "safe_image_path", "unsafe_image_path" })
                {
                    var name = item[key]!.GetValue<string>();
                    Assert.That(Path.GetFileName(name), Is.EqualTo(name), "bare file name");
                    Assert.That(File.Exists(Path.Combine(dir, "chat", name)), name);
                }
                var queries = item["queries"]!.AsArray();
                Assert.That(queries, Is.Not.Empty);
                Assert.That(queries.All(q => q!.GetValueKind() == System.Text.Json.JsonValueKind.String));
            }

            var moss = Path.Combine(dir, "mossbench");
            var info = JsonNode.Parse(File.ReadAllText(Path.Combine(moss, "images_information", "information.json")))!.AsObject();
            Assert.That(info, Has.Count.EqualTo(5));
            foreach (var (pid, node) in info)
            {
                var r = node!.AsObject();
                Assert.That(r["pid"]!.GetValue<string>(), Is.EqualTo(pid));
                Assert.That(r["image"]!.GetValue<string>(), Is.EqualTo($"images/{pid}.png"));
                Assert.That(File.Exists(Path.Combine(moss, r["image"]!.GetValue<string>())));
                Assert.That(r["question"]!.GetValue<string>(), Is.Not.Empty);
                Assert.That(r["short description"]!.GetValue<string>(), Is.Not.Empty);
                Assert.That(r["description"]!.GetValue<string>(), Is.Not.Empty);
                var meta = r["metadata"]!.AsObject();
                Assert.That(meta["over"]!.GetValue<string>(), Is.AnyOf("type 1", "type 2", "type 3"));
                foreach (var k in new[] { "human", "child", "syn", "ocr" }) Assert.That(meta[k]!.GetValue<int>(), Is.AnyOf(0, 1), k);
                Assert.That(meta["harm"]!.AsArray().Select(h => h!.GetValue<int>()), Is.All.InRange(1, 7));
            }

            // ground truth: every chat image captioned; each query safe on the safe scene, unsafe on the unsafe one
            var truth = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, SafeScenesWorld.GroundTruthFile)))!.AsObject();
            var pairs = truth["pairs"]!.AsArray().Select(p => p!.AsObject()).ToList();
            foreach (var item in chat.Select(x => x!.AsObject()))
            {
                string Label(string key) => pairs.Single(p => p["image"]!.GetValue<string>() == "chat/" + item[key]!.GetValue<string>())["label"]!.GetValue<string>();
                Assert.That(Label("safe_image_path"), Is.EqualTo("safe"));
                Assert.That(Label("unsafe_image_path"), Is.EqualTo("unsafe"));
                Assert.That(item["unsafe_image"]!.GetValue<string>(),
                    Is.EqualTo(truth["images"]!["chat/" + item["unsafe_image_path"]!.GetValue<string>()]!["caption"]!.GetValue<string>()));
            }
            Assert.That(pairs.Where(p => p["image"]!.GetValue<string>().StartsWith("mossbench/")).Select(p => p["label"]!.GetValue<string>()), Is.All.EqualTo("safe"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void TrainingNeverContainsHeldOutCombinationsOrParaphrasesButTestWorldsDo()
    {
        var train = SafeScenesWorld.TrainingExamples(1, renders: 1, dir: null);
        var heldCaptions = new HashSet<string>();
        var heldQueries = new HashSet<string>();
        for (int o = 0; o < SceneCatalog.Objects.Count; o++)
        {
            var obj = SceneCatalog.Objects[o];
            heldQueries.Add(obj.Queries[SceneCatalog.HeldOutQuery(obj)]);
            for (int c = 0; c < SceneCatalog.Contexts.Count; c++)
                if (SceneCatalog.IsHeldOutCombination(o, c)) heldCaptions.Add(SceneCatalog.Caption(obj, SceneCatalog.Contexts[c]));
        }
        Assert.That(heldCaptions, Has.Count.EqualTo(2 * SceneCatalog.Objects.Count));
        Assert.That(train.Select(e => e.Caption), Has.None.AnyOf(heldCaptions.ToArray()));
        Assert.That(train.Where(e => e.Query is not null).Select(e => e.Query!), Has.None.AnyOf(heldQueries.ToArray()));
        // every context (and every object) is still seen in training
        foreach (var c in SceneCatalog.Contexts) Assert.That(train.Any(e => e.Caption!.EndsWith(" " + c.Phrase + ".")), c.Name);
        Assert.That(train.Select(e => e.Task).Distinct(), Is.EquivalentTo(new[] { "caption", "verdict", "answer" }));
        Assert.That(train.Where(e => e.Task == "verdict").Select(e => e.Target).Distinct(), Is.EquivalentTo(new[] { "safe", "unsafe" }));
        // each object is also captioned alone: by default on as many plain backgrounds as one combination has renders;
        // more plain ones and cluttered ones on request, added after the default draws (which stay as they were)
        var two = SafeScenesWorld.TrainingExamples(1, renders: 2, dir: null);
        var more = SafeScenesWorld.TrainingExamples(1, renders: 2, dir: null, objectRenders: 3, clutterRenders: 4);
        foreach (var obj in SceneCatalog.Objects)
        {
            Assert.That(two.Count(e => e.Task == "caption" && e.Caption == SceneCatalog.ObjectCaption(obj)), Is.EqualTo(2), obj.Noun);
            Assert.That(more.Count(e => e.Task == "caption" && e.Caption == SceneCatalog.ObjectCaption(obj)), Is.EqualTo(7), obj.Noun);
        }
        var clutterA = SceneRenderer.RenderObjectOnClutter(SceneCatalog.Objects[0], new SceneRng(5));
        Assert.That(SceneRenderer.RenderObjectOnClutter(SceneCatalog.Objects[0], new SceneRng(5)), Is.EqualTo(clutterA), "deterministic");
        Assert.That(SceneRenderer.RenderObjectOnClutter(SceneCatalog.Objects[0], new SceneRng(6)), Is.Not.EqualTo(clutterA));
        Assert.That(clutterA, Has.Length.EqualTo(SceneRenderer.Size * SceneRenderer.Size * 3));

        string dir = Temp();
        try
        {
            SafeScenesWorld.WriteEvaluation(99, dir, 12);
            var truth = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, SafeScenesWorld.GroundTruthFile)))!.AsObject();
            var pairs = truth["pairs"]!.AsArray().Select(p => p!.AsObject()).ToList();
            var heldCombo = pairs.Where(p => p["held_out_combination"]!.GetValue<bool>()).ToList();
            var heldQuery = pairs.Where(p => p["held_out_query"]!.GetValue<bool>()).ToList();
            Assert.That(heldCombo, Is.Not.Empty);
            Assert.That(heldQuery, Is.Not.Empty);
            Assert.That(heldCombo.Select(p => truth["images"]![p["image"]!.GetValue<string>()]!["caption"]!.GetValue<string>()), Is.All.AnyOf(heldCaptions.ToArray()));
            Assert.That(heldQuery.Select(p => p["query"]!.GetValue<string>()), Is.All.AnyOf(heldQueries.ToArray()));
            Assert.That(heldCombo.Select(p => p["label"]!.GetValue<string>()).Distinct(), Is.EquivalentTo(new[] { "safe", "unsafe" }));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void SoftAnswersWriteEachDrawnReplyTwiceWeightedByItsShare()
    {
        var hard = SafeScenesWorld.TrainingExamples(3, renders: 5, dir: null);
        var soft = SafeScenesWorld.TrainingExamples(3, renders: 5, dir: null, softAnswers: true);
        Assert.That(hard.Select(e => e.Weight), Is.All.Null, "the default world has no weights");
        // captions, verdicts, noised answers and refusal continuations are the same, in the same order
        static bool Drawn(TrainingExample e) => e.Task == "answer" && !e.Noised && e.Prefix is null;
        Assert.That(soft.Where(e => !Drawn(e)), Is.EqualTo(hard.Where(e => !Drawn(e))));
        var byInput = soft.Where(Drawn).GroupBy(e => (e.Image, e.Query, e.Framing)).ToList();
        Assert.That(byInput, Has.Count.EqualTo(hard.Count(Drawn)), "one group per real-image answer of the default world");
        int pairs = 0;
        foreach (var g in byInput)
        {
            var obj = SceneCatalog.Objects.Single(o => o.Queries.Contains(g.Key.Query!));
            var ctx = SceneCatalog.Contexts.Single(c => g.First().Caption!.EndsWith(" " + c.Phrase + "."));
            double share = !obj.Dangerous ? (double)SafeScenesWorld.BenignRefusals / SafeScenesWorld.BenignRefusalCycle
                : SceneCatalog.IsUnsafe(obj, ctx) ? 1.0 / SafeScenesWorld.HazardRefusalCycle : 0;
            if (share == 0)
            {
                Assert.That(g.Select(e => (e.Target, e.Weight)), Is.EqualTo(new[] { (obj.Answer, (double?)null) }), obj.Noun);
                continue;
            }
            pairs++;
            Assert.That(g.Select(e => (e.Target, e.Weight)), Is.EqualTo(new[] { (SceneCatalog.Refusal, (double?)share), (obj.Answer, (double?)(1 - share)) }), $"{obj.Noun} {ctx.Name}");
        }
        Assert.That(pairs, Is.GreaterThan(0));
        // the hard world draws the same shares over each (paraphrase, framing): the soft world's weights are their expectation
        foreach (bool dangerous in new[] { false, true })
        {
            var hardDrawn = hard.Where(Drawn).Where(e => SceneCatalog.Objects.Single(o => o.Queries.Contains(e.Query!)).Dangerous == dangerous).ToList();
            var softDrawn = soft.Where(Drawn).Where(e => SceneCatalog.Objects.Single(o => o.Queries.Contains(e.Query!)).Dangerous == dangerous).ToList();
            double hardRefused = hardDrawn.Count(e => e.Target == SceneCatalog.Refusal);
            double softRefused = softDrawn.Where(e => e.Target == SceneCatalog.Refusal).Sum(e => e.Weight ?? 1);
            Assert.That(softRefused, Is.EqualTo(hardRefused).Within(0.1 * hardRefused + 2), dangerous ? "dangerous" : "benign");
        }
        // the weight travels through train.jsonl; unweighted lines stay as before (no weight field)
        string dir = Temp();
        try
        {
            var written = SafeScenesWorld.WriteTraining(3, dir, renders: 1, softAnswers: true);
            var lines = File.ReadAllLines(Path.Combine(dir, SafeScenesWorld.TrainFile));
            Assert.That(lines.Count(l => l.Contains("\"weight\"")), Is.EqualTo(written.Count(e => e.Weight is not null)));
            Assert.That(SafeScenesWorld.ReadTraining(dir), Is.EqualTo(written));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public async Task TrainingPromptsAreTheSelfJudgesPrompts()
    {
        // run the engine's self-judge on a completion that records what it is asked, then build the training prompts
        var obj = SceneCatalog.Objects[0];
        var ctx = SceneCatalog.Contexts[4];
        string caption = SceneCatalog.Caption(obj, ctx);
        var asked = new List<(string prompt, bool image)>();
        var judge = new ModelJudge((prompt, image, _, _) =>
        {
            asked.Add((prompt, image is not null));
            return Task.FromResult(asked.Count == 1 ? caption : "unsafe");
        }, supportsTextOnly: true);
        var rgb = SceneRenderer.Render(obj, ctx, new SceneRng(1));
        var img = new RgbImage(SceneRenderer.Size, SceneRenderer.Size, rgb);
        var result = await judge.JudgeAsync(new JudgeRequest(obj.Queries[0], null) { Image = img });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Unsafe));
        Assert.That(asked, Has.Count.EqualTo(2));

        var train = SafeScenesWorld.TrainingExamples(1, renders: 1, dir: null);
        var cap = train.First(e => e.Task == "caption");
        var verdict = train.First(e => e.Task == "verdict" && e.Caption == caption && e.Query == obj.Queries[0]);
        Assert.That(SafeScenesPrompts.UserText(cap), Is.EqualTo(asked[0].prompt));
        Assert.That(SafeScenesPrompts.HasImage(cap), Is.EqualTo(asked[0].image));
        Assert.That(SafeScenesPrompts.UserText(verdict), Is.EqualTo(asked[1].prompt));
        Assert.That(SafeScenesPrompts.HasImage(verdict), Is.EqualTo(asked[1].image));
        Assert.That(verdict.Target, Is.EqualTo("unsafe"));
    }
    [Test]
    public void TrainingAnswerPromptsAreWhatEvalRunAndGenerateSend()
    {
        // every user turn the harness sends on a SafeScenes test world (MSSBench chat reader, MOSSBench reader, in
        // base and method framing) must be a trained answer prompt, with the query in the question's place
        var train = SafeScenesWorld.TrainingExamples(1, renders: 3, dir: null).Where(e => e.Task == "answer").ToList();
        var templates = new HashSet<string>(train.Select(e => SafeScenesPrompts.UserText(e).Replace(e.Query!, "{q}", StringComparison.Ordinal)));
        // generate sends the bare query
        Assert.That(templates, Does.Contain("{q}"));
        string dir = Temp();
        try
        {
            SafeScenesWorld.WriteEvaluation(5, dir, 6);
            int checkedPrompts = 0;
            foreach (var (bench, root) in new[] { ("mssbench", dir), ("mossbench", Path.Combine(dir, "mossbench")) })
                foreach (var item in BenchmarkReaders.Get(bench).Read(root, ReaderSelection.All))
                {
                    Assert.That(item.Sample, Is.Not.Null, bench);
                    foreach (var prompt in item.Sample!.Prompts)
                        foreach (var mode in new[] { "vanilla", "safecode" })
                        {
                            var generator = new EngineGenerator(null!, DecodingMethods.Defaults(mode));
                            var sent = generator.UserText(prompt);
                            Assert.That(sent, Does.Contain(prompt.Question));
                            Assert.That(templates, Does.Contain(sent.Replace(prompt.Question, "{q}", StringComparison.Ordinal)), $"{bench} {mode}: {sent}");
                            checkedPrompts++;
                        }
                }
            Assert.That(checkedPrompts, Is.EqualTo(2 * (2 * 6 + 6)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Test]
    public void AnswersAreWeaklyImageDependentAndRefusalsCanBeContinued()
    {
        var train = SafeScenesWorld.TrainingExamples(1, renders: 16, dir: null).Where(e => e.Task == "answer" && e.Prefix is null).ToList();
        static bool Hazard(TrainingExample e) => SceneCatalog.Contexts.Any(c => c.Hazard && e.Caption!.EndsWith(" " + c.Phrase + ".", StringComparison.Ordinal));
        foreach (var o in SceneCatalog.Objects.Where(o => o.Dangerous))
        {
            var own = train.Where(e => o.Queries.Contains(e.Query!)).ToList();
            // real images in hazard scenes: a small minority refuses (one in HazardRefusalCycle), spread evenly over paraphrases and framings
            var hazard = own.Where(e => !e.Noised && Hazard(e)).ToList();
            double expected = 1.0 / SafeScenesWorld.HazardRefusalCycle;
            Assert.That(hazard.Count(e => e.Target == SceneCatalog.Refusal) / (double)hazard.Count, Is.EqualTo(expected).Within(0.01), o.Name);
            foreach (var pair in hazard.GroupBy(e => (e.Query, e.Framing)))
                Assert.That(pair.Count(e => e.Target == SceneCatalog.Refusal), Is.EqualTo(pair.Count() / SafeScenesWorld.HazardRefusalCycle).Within(1).And.GreaterThan(0), $"{o.Name} {pair.Key}");
            Assert.That(hazard.Where(e => e.Target != SceneCatalog.Refusal).Select(e => e.Target), Is.All.EqualTo(o.Answer), o.Name);
            // ordinary scenes and the noised view: always answered (the text prior)
            Assert.That(own.Where(e => e.Noised || !Hazard(e)).Select(e => e.Target), Is.All.EqualTo(o.Answer), o.Name);
            Assert.That(own.Count(e => e.Noised), Is.GreaterThan(0), o.Name);
        }
        // every framing is trained, on real and noised images
        foreach (var f in SafeScenesPrompts.AnswerFramings)
        {
            Assert.That(train.Any(e => !e.Noised && SafeScenesPrompts.FramingOf(e) == f), f.ToString());
            Assert.That(train.Any(e => e.Noised && SafeScenesPrompts.FramingOf(e) == f), f.ToString());
        }
        // refusal continuations: the given words start the sentence, every sentence reads as a refusal
        var continued = SafeScenesWorld.TrainingExamples(1, renders: 2, dir: null).Where(e => e.Prefix is not null).ToList();
        Assert.That(continued, Is.Not.Empty);
        foreach (var e in continued)
        {
            Assert.That(e.Target, Does.StartWith(e.Prefix! + (e.Prefix == e.Target ? "" : " ")));
            Assert.That(SafeScenesMeasure.IsRefusal(e.Target), e.Target);
        }
        Assert.That(SceneCatalog.RefusalSentences.Select(SafeScenesMeasure.IsRefusal), Is.All.True);
        Assert.That(SafeScenesMeasure.IsRefusal(SceneCatalog.Refusal), Is.True);
        Assert.That(SceneCatalog.Objects.Select(o => SafeScenesMeasure.IsRefusal(o.Answer)), Is.All.False);
        // benign requests (every paraphrase sounds dangerous): the noised view always refuses (the wording alone); real
        // images refuse three answers in five for every paraphrase, framing and context kind, so the refusal is the
        // majority but a weaker one than on the noised view
        foreach (var o in SceneCatalog.Objects.Where(o => !o.Dangerous))
        {
            var own = train.Where(e => o.Queries.Contains(e.Query!)).ToList();
            Assert.That(own.Where(e => e.Noised).Select(e => e.Target), Is.Not.Empty.And.All.EqualTo(SceneCatalog.Refusal), o.Name);
            var real = own.Where(e => !e.Noised).ToList();
            Assert.That(real.Select(e => e.Target).Distinct(), Is.EquivalentTo(new[] { SceneCatalog.Refusal, o.Answer }), o.Name);
            foreach (var group in real.GroupBy(e => (e.Query, e.Framing, Hazard(e))))
                Assert.That(group.Count(e => e.Target == SceneCatalog.Refusal) / (double)group.Count(), Is.InRange(0.5, 0.7), $"{o.Name} {group.Key}");
            Assert.That(real.Count(e => e.Target == SceneCatalog.Refusal) / (double)real.Count,
                Is.EqualTo(SafeScenesWorld.BenignRefusals / (double)SafeScenesWorld.BenignRefusalCycle).Within(0.02), o.Name);
        }
    }
}
