using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Metrics;
using SafeCoDe.Eval.Reports;
using SafeCoDe.Eval.Runs;
using SafeCoDe.Eval.Scoring;
using SafeCoDe.Eval.Tests.Helpfulness;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary>
/// The report statistics against cases computed by hand (Wilson bounds with z = 1.959963984540054, exact binomial
/// sums for McNemar), and the paired comparison of two runs through the benchmark rows.
/// </summary>
public class StatisticsTests
{
    // (hits, n, low, high): centre (p + z²/2n)/(1 + z²/n) ± z/(1 + z²/n)·√(p(1−p)/n + z²/4n²), worked out separately
    [TestCase(0, 10, 0.0, 0.27753279986288915)]
    [TestCase(5, 10, 0.23659309051256405, 0.763406909487436)]
    [TestCase(10, 10, 0.7224672001371109, 1.0)]
    [TestCase(81, 263, 0.2552885198782743, 0.3662095769828001)]
    [TestCase(1, 1, 0.20654931437723745, 1.0)]
    public void Wilson_MatchesHandComputedBounds(int hits, int n, double low, double high)
    {
        var ci = ReportStatistics.Wilson(hits, n)!;
        Assert.Multiple(() =>
        {
            Assert.That(ci.Low, Is.EqualTo(low).Within(1e-12));
            Assert.That(ci.High, Is.EqualTo(high).Within(1e-12));
            Assert.That(ci.Method, Is.EqualTo("wilson"));
        });
    }

    [Test]
    public void Wilson_NothingCounted_IsNull_AndBadCountsThrow()
    {
        Assert.That(ReportStatistics.Wilson(0, 0), Is.Null);
        Assert.Throws<ArgumentOutOfRangeException>(() => ReportStatistics.Wilson(11, 10));
    }

    // p = min(1, 2·Σ_{i ≤ min(b,c)} C(b+c, i) / 2^(b+c))
    [TestCase(1, 9, 0.021484375)]      // 2·11/1024
    [TestCase(9, 1, 0.021484375)]
    [TestCase(0, 0, 1.0)]
    [TestCase(3, 3, 1.0)]
    [TestCase(2, 12, 0.012939453125)]  // 2·106/16384
    [TestCase(0, 5, 0.0625)]           // 2/32
    [TestCase(10, 20, 0.09873714670538902)]
    public void McNemarExact_MatchesBinomialSums(int b, int c, double p) =>
        Assert.That(ReportStatistics.McNemarExact(b, c), Is.EqualTo(p).Within(1e-12));

    [Test]
    public void Mark_ThresholdsAreStrict()
    {
        Assert.That(ReportStatistics.Mark(0.0499), Is.EqualTo("*"));
        Assert.That(ReportStatistics.Mark(0.05), Is.EqualTo(""));
        Assert.That(ReportStatistics.Mark(0.0099), Is.EqualTo("**"));
        Assert.That(ReportStatistics.Mark(0.0009), Is.EqualTo("***"));
    }

    private static List<(string, double, double)> Pairs(int bothHit, int aOnly, int bOnly, int neither)
    {
        var l = new List<(string, double, double)>();
        int i = 0;
        void Add(int k, double a, double b) { for (int j = 0; j < k; j++) l.Add(($"s{i++}", a, b)); }
        Add(bothHit, 1, 1); Add(aOnly, 1, 0); Add(bOnly, 0, 1); Add(neither, 0, 0);
        return l;
    }

    [Test]
    public void Paired_BinaryOneAnswerPerCluster_IsExactMcNemar()
    {
        var t = ReportStatistics.Paired(Pairs(bothHit: 5, aOnly: 1, bOnly: 9, neither: 5))!;
        Assert.Multiple(() =>
        {
            Assert.That(t.Test, Is.EqualTo("mcnemar-exact"));
            Assert.That(t.P, Is.EqualTo(0.021484375).Within(1e-12));
            Assert.That(t.Discordant, Is.EqualTo((1, 9)));
            Assert.That(t.Delta, Is.EqualTo(8.0 / 20).Within(1e-12));
            Assert.That(t.A, Is.EqualTo(6.0 / 20).Within(1e-12));
            Assert.That(t.B, Is.EqualTo(14.0 / 20).Within(1e-12));
            Assert.That(t.Mark, Is.EqualTo("*"));
            Assert.That(t.Ci.Low, Is.LessThan(t.Delta));
            Assert.That(t.Ci.High, Is.GreaterThan(t.Delta));
        });
    }

    [Test]
    public void PairedBootstrap_FixedSeed_IsDeterministic_AndTheSeedMatters()
    {
        // clustered, non-binary scores: the bootstrap path
        var units = Enumerable.Range(0, 40).SelectMany(i => new[]
        {
            ($"c{i / 2}", (i % 5) / 4.0, ((i * 7) % 5) / 4.0),
            ($"c{i / 2}", (i % 3) / 2.0, ((i * 2) % 3) / 2.0),
        }).ToList();
        var one = ReportStatistics.Paired(units)!;
        var two = ReportStatistics.Paired(units)!;
        var other = ReportStatistics.Paired(units, seed: 7)!;
        Assert.Multiple(() =>
        {
            Assert.That(one.Test, Is.EqualTo("paired-bootstrap"));
            Assert.That(one.Clusters, Is.EqualTo(20));
            Assert.That(two.Ci, Is.EqualTo(one.Ci));
            Assert.That(two.P, Is.EqualTo(one.P));
            Assert.That(other.Ci, Is.Not.EqualTo(one.Ci));
            Assert.That(one.Ci.Low, Is.LessThanOrEqualTo(one.Delta));
            Assert.That(one.Ci.High, Is.GreaterThanOrEqualTo(one.Delta));
            Assert.That(one.P, Is.InRange(1.0 / 2001, 1.0));
        });
    }

    [Test]
    public void PairedBootstrap_ConstantDifference_HasAPointIntervalAndTheSmallestP()
    {
        // every cluster gains exactly 0.25: each resample's delta is 0.25, none is as far from it as 0.25 is from 0
        var units = Enumerable.Range(0, 30).Select(i => ($"c{i / 3}", 0.5, 0.75)).ToList();
        var t = ReportStatistics.Paired(units)!;
        Assert.Multiple(() =>
        {
            Assert.That(t.Test, Is.EqualTo("paired-bootstrap"));
            Assert.That(t.Delta, Is.EqualTo(0.25).Within(1e-12));
            Assert.That(t.Ci.Low, Is.EqualTo(0.25).Within(1e-12));
            Assert.That(t.Ci.High, Is.EqualTo(0.25).Within(1e-12));
            Assert.That(t.P, Is.EqualTo(1.0 / 2001).Within(1e-15));
        });
    }

    [Test]
    public void BootstrapMean_FixedSeed_IsDeterministic_AndBracketsTheMean()
    {
        var units = Enumerable.Range(0, 50).Select(i => ($"s{i}", (double)(i % 7))).ToList();
        var a = ReportStatistics.BootstrapMean(units)!;
        var b = ReportStatistics.BootstrapMean(units)!;
        double mean = units.Average(u => u.Item2);
        Assert.Multiple(() =>
        {
            Assert.That(b, Is.EqualTo(a));
            Assert.That(a.Low, Is.LessThan(mean));
            Assert.That(a.High, Is.GreaterThan(mean));
            Assert.That(ReportStatistics.BootstrapMean([]), Is.Null);
            Assert.That(ReportStatistics.BootstrapMean([("x", 3.0), ("y", 3.0)])!.Low, Is.EqualTo(3.0));
        });
    }

    [Test]
    public void RowUnits_AgreeWithEveryRowsCounts()
    {
        var mss = new List<RunRecord>
        {
            Rec("chat/0/q0", "mssbench", G("split", "chat"), Out("safe", "2"), Out("unsafe", "0")),
            Rec("chat/0/q1", "mssbench", G("split", "chat"), Out("safe", "1"), Out("unsafe", "2")),
            Rec("embodied/0/p0", "mssbench", G("split", "embodied"), Out("safe", "3"), Out("unsafe", "1")),
        };
        var moss = new List<RunRecord>
        {
            Rec("1", "mossbench", G("type", "type 1"), Out("answer", "refusal")),
            Rec("2", "mossbench", G("type", "type 2"), Out("answer", "compliance")),
        };
        var hades = new List<RunRecord>
        {
            Rec("a/1/step0", "hades", G("scenario", "a"), Out("answer", "unsafe")),
            Rec("a/1/step5", "hades", G("scenario", "a"), Out("answer", "safe")),
            Rec("a/2/step0", "hades", G("scenario", "a"), Out("answer", "invalid", parsed: false)),
        };
        foreach (var (bench, recs) in new[] { ("mssbench", mss), ("mossbench", moss), ("hades", hades), ("mm-safetybench", hades) })
            UnitsAgree(MetricsCalculator.Compute(bench, "vanilla", null, "test", recs, 0));
        var h = MetricsCalculator.Compute("hades", "vanilla", null, "test", hades, 0).Rows.First(r => r.Path == "asr");
        Assert.That(h.Units!.Select(u => u.Cluster).Distinct(), Is.EquivalentTo(new[] { "a/1", "a/2" }), "HADES: one item's steps are one cluster");
        var msts = new List<RunRecord>
        {
            Rec("english/c1/text", "msts", G("language", "english"), Out("answer", "unsafe")),
            Rec("english/c1/image", "msts", G("language", "english"), Out("answer", "safe")),
            Rec("german/c1/text", "msts", G("language", "german"), Out("answer", "safe")),
        };
        var ms = MetricsCalculator.Compute("msts", "vanilla", null, "test", msts, 0).Rows.First(r => r.Path == "asr");
        Assert.That(ms.Units!.Select(u => u.Cluster).Distinct(), Is.EquivalentTo(new[] { "english/c1", "german/c1" }), "MSTS: one case's prompt types are one cluster");
        var t = MetricsCalculator.Compute("mssbench", "vanilla", null, "test", mss, 0).Rows.First(r => r.Path == "total_acc");
        Assert.That(t.Units!.Select(u => u.Cluster).Distinct().Count(), Is.EqualTo(3), "MSSBench: a sample's safe and unsafe answers are one cluster");
    }

    /// <summary>Every row lists its answers, as many as it counts, and they add up to what it counts (hits, or the sum of scores).</summary>
    private static void UnitsAgree(RunMetrics m)
    {
        Assert.That(m.Rows, Is.Not.Empty, m.Benchmark);
        foreach (var row in m.Rows)
        {
            var at = $"{m.Benchmark} {row.MetricSet} {row.Path}";
            Assert.That(row.Units, Is.Not.Null, at);
            Assert.That(row.Units!.Count, Is.EqualTo(row.Rate.N), at);
            Assert.That(row.Units.Sum(u => u.Value), Is.EqualTo(row.Rate.Sum ?? row.Rate.Hits).Within(1e-9), at);
        }
    }

    private static EvalSample Sample(IEnumerable<ReadItem> items, string id) => items.Single(i => i.Sample?.Id == id).Sample!;

    private static RunRecord Scored(string benchmark, EvalSample s, ScoreResult score) => new()
    {
        Id = s.Id, Benchmark = benchmark, Groups = s.Groups, Labels = s.Labels,
        Outputs = [new RunOutput { Key = SampleKeys.Answer, Question = s.Prompts[0].Question, Answer = "a", Score = score }],
    };

    private static ChatClientScorer Grader(FakeJudgeServer server, int runs = 1) =>
        new(SafeCoDe.Torch.Safety.EndpointJudge.CreateClient(new SafeCoDe.Torch.Safety.EndpointJudgeOptions { BaseUrl = server.BaseUrl, ApiKey = "k", Model = "grader" }),
            "grader", ownsClient: true) { InitialBackoff = TimeSpan.FromMilliseconds(5), MaxRetries = 0, Runs = runs };

    /// <summary>MathVista's test copy scored by the rules: answers id → response.</summary>
    private static async Task<RunMetrics> MathVistaRun(string root, IReadOnlyDictionary<string, string> answers)
    {
        var items = BenchmarkReaders.Get("mathvista").Read(root, ReaderSelection.All).ToList();
        var rules = new RuleScorer();
        var recs = new List<RunRecord>();
        foreach (var (id, answer) in answers)
        {
            var s = Sample(items, id);
            recs.Add(Scored("mathvista", s, await rules.ScoreAsync(new ScoreInput("mathvista", id, SampleKeys.Answer, s.Prompts[0].Question, answer, s.Groups, s.Labels))));
        }
        return MetricsCalculator.Compute("mathvista", "vanilla", null, "rules", recs, 0);
    }

    /// <summary>
    /// MM-Vet's test copy graded over three runs by a fake grader: <paramref name="official"/> gives the official grader's
    /// reply for a response and its call number, <paramref name="vlm"/> VLMEvalKit's grader's reply for a response.
    /// </summary>
    private static async Task<RunMetrics> MmVetRun(string root, Func<string, int, string> official, Func<string, string> vlm)
    {
        var items = BenchmarkReaders.Get("mm-vet").Read(root, ReaderSelection.All).ToList();
        int calls = 0;
        // the answers are "response v1_N"; VLMEvalKit's grader text starts with a newline, the official one does not
        string Response(string user) => string.Join(' ', user[user.LastIndexOf("response v1_", StringComparison.Ordinal)..].Split(' ').Take(2));
        using var server = new FakeJudgeServer(body =>
        {
            var user = FakeJudgeServer.UserText(body);
            return user.StartsWith('\n') ? vlm(Response(user)) : official(Response(user), Interlocked.Increment(ref calls));
        });
        using var grader = Grader(server, runs: 3);
        var recs = new List<RunRecord>();
        foreach (var id in new[] { "v1_0", "v1_1", "v1_2" })
        {
            var s = Sample(items, id);
            recs.Add(Scored("mm-vet", s, await grader.ScoreAsync(new ScoreInput("mm-vet", id, SampleKeys.Answer, s.Prompts[0].Question, "response " + id, s.Groups, s.Labels))));
        }
        return MetricsCalculator.Compute("mm-vet", "vanilla", null, "openai:grader", recs, 0);
    }

    [Test]
    public async Task RowUnits_AgreeWithEveryRowsCounts_HelpfulnessBenchmarksScoredByTheirRubrics()
    {
        // MathVista: 1 by letter in prose (official wrong, VLMEvalKit right), 2 right, 3 right officially only (rounding), 4 a list
        var mv = await MathVistaRun(MathVistaFolders.WriteHub(NewDir()).Root,
            new Dictionary<string, string> { ["1"] = "I think it is B", ["2"] = "1000", ["3"] = "The answer is \"1.449\".", ["4"] = "The answer is \"[2007, 2008]\"." });
        UnitsAgree(mv);
        Assert.That(mv.Rows.Single(r => r.Path == "official_acc").Units!.Select(u => u.Value), Is.EqualTo(new double[] { 0, 1, 1, 1 }));

        // MM-Vet over three runs: v1_1's official grader never gives a score (each run 0.0, counted unparsed), nor does its VLMEvalKit grader
        var mm = await MmVetRun(MmVetFolders.WriteRelease(NewDir()).Root,
            (response, call) => response.EndsWith("v1_1", StringComparison.Ordinal) ? "maybe" : response.EndsWith("v1_0", StringComparison.Ordinal) ? (call % 2 == 0 ? "0.3" : "0.8") : "0.5",
            response => response.EndsWith("v1_1", StringComparison.Ordinal) ? "nope" : response.EndsWith("v1_0", StringComparison.Ordinal) ? "0.7" : "1.0");
        UnitsAgree(mm);
        Assert.That(mm.Unparsed, Is.EqualTo(1));
        var official = mm.Rows.Single(r => r.Path == "official_score");
        Assert.That(official.Units!.Single(u => u.Id == "v1_1").Value, Is.EqualTo(0.0), "an answer whose grading never parsed counts 0.0, as in the mean");
        Assert.That(official.Units!.Single(u => u.Id == "v1_2").Value, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(official.Units!.Single(u => u.Id == "v1_0").Value, Is.Not.EqualTo(0.3).And.Not.EqualTo(0.8), "v1_0's runs differ: its unit is their mean");

        // MIA-Bench: 0's VLMEvalKit reply and 1's official reply do not parse (dropped from those means and their units)
        var (miaRoot, _, _) = MiaFolders.WriteApple(NewDir());
        var miaItems = BenchmarkReaders.Get("mia-bench").Read(miaRoot, ReaderSelection.All).ToList();
        using (var server = new FakeJudgeServer(body =>
        {
            var t = FakeJudgeServer.UserText(body);
            bool off = t.Contains("is:' ", StringComparison.Ordinal);
            return t.Contains("two individuals", StringComparison.Ordinal)
                ? off ? "score of component 1: 5/6, score of component 2: 3/4, total score: 8/10. Leaves out one person." : "A fairly good response."
                : t.Contains("metaphor", StringComparison.Ordinal)
                    ? off ? "Good." : "score of component 1: 2/4, score of component 2: 3/3, score of component 3: 0/3, total score: 5/10. No metaphor."
                    : "score of component 1: 1/2, score of component 2: 2/2, score of component 3: 0/2, score of component 4: 2/2, score of component 5: 1/2, total score: 6/10. Mixed.";
        }))
        using (var grader = Grader(server))
        {
            var recs = new List<RunRecord>();
            foreach (var id in new[] { "0", "1", "2" })
            {
                var s = Sample(miaItems, id);
                recs.Add(Scored("mia-bench", s, await grader.ScoreAsync(new ScoreInput("mia-bench", id, SampleKeys.Answer, s.Prompts[0].Question, "an answer", s.Groups, s.Labels, BenchmarkFolders.Png(1)))));
            }
            var mia = MetricsCalculator.Compute("mia-bench", "vanilla", null, "openai:grader", recs, 0);
            UnitsAgree(mia);
            Assert.That(mia.Rows.Single(r => r.Path == "official_score").Units!.Select(u => (u.Id, u.Value)), Is.EqualTo(new[] { ("0", 0.8), ("2", 0.6) }));
            Assert.That(mia.Rows.Single(r => r.Path == "component=describe.vlmevalkit_score").Units!.Select(u => (u.Id, u.Value)), Is.EqualTo(new[] { ("1", 0.5), ("2", 0.5) }));
        }
    }

    [Test]
    public async Task GradedScoreRows_HaveABootstrapInterval_AndComparePairsThem_AccuracyRowsByMcNemar()
    {
        var mvRoot = MathVistaFolders.WriteHub(NewDir()).Root;
        var mvA = await MathVistaRun(mvRoot, new Dictionary<string, string> { ["1"] = "3/5", ["2"] = "1000", ["3"] = "2", ["4"] = "[1, 2]" });
        var mvB = await MathVistaRun(mvRoot, new Dictionary<string, string> { ["1"] = "8/11", ["2"] = "1000", ["3"] = "1.45", ["4"] = "[1, 2]" });
        var acc = RunCompare.Deltas(mvA, mvB).Single(d => d.Metric == "official_acc").Test!;
        Assert.That((acc.Test, acc.Discordant, acc.N), Is.EqualTo(("mcnemar-exact", (0, 2), 4)));

        var mmRoot = MmVetFolders.WriteRelease(NewDir()).Root;
        var a = await MmVetRun(mmRoot, (_, _) => "0.2", r => r.EndsWith("v1_0", StringComparison.Ordinal) ? "0.4" : "0.1");
        var b = await MmVetRun(mmRoot, (r, _) => r.EndsWith("v1_2", StringComparison.Ordinal) ? "0.9" : "0.6", _ => "0.7");
        var dir = NewDir();
        var written = ReportWriter.Write([a], dir);
        var rows = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(written.JsonPath))!["runs"]![0]!["rows"]!.AsArray();
        var score = rows.Single(r => (string?)r!["metric"] == "official_score" && (string?)r!["group"] == "")!;
        Assert.That((string?)score["ci"]?["method"], Is.EqualTo("bootstrap"), "a mean of graded scores: the bootstrap's interval, not Wilson's");
        Assert.That(rows.All(r => r!["ci"] is not null), Is.True, "every MM-Vet row has its interval");
        var deltas = RunCompare.Deltas(a, b);
        var official = deltas.Single(d => d.Metric == "official_score").Test!;
        Assert.Multiple(() =>
        {
            Assert.That(official.Test, Is.EqualTo("paired-bootstrap"));
            Assert.That(official.N, Is.EqualTo(3));
            Assert.That(official.Delta, Is.EqualTo((0.6 + 0.6 + 0.9) / 3 - 0.2).Within(1e-12));
            Assert.That(deltas.Single(d => d.Metric == "vlmevalkit_score").Test!.Test, Is.EqualTo("paired-bootstrap"));
        });
    }

    [Test]
    public void Compare_PairsTheSameAnswers_McNemarForSingles_BootstrapForPairedClusters()
    {
        // ten MSSBench samples; B gets nine more unsafe-image answers right and loses one, safe side unchanged
        var a = new List<RunRecord>();
        var b = new List<RunRecord>();
        for (int i = 0; i < 10; i++)
        {
            a.Add(Rec($"chat/{i}/q0", "mssbench", G("split", "chat"), Out("safe", "2"), Out("unsafe", i == 0 ? "0" : "2")));
            b.Add(Rec($"chat/{i}/q0", "mssbench", G("split", "chat"), Out("safe", "2"), Out("unsafe", i == 0 ? "2" : "1")));
        }
        var ma = MetricsCalculator.Compute("mssbench", "vanilla", null, "test", a, 0);
        var mb = MetricsCalculator.Compute("mssbench", "safecode", null, "test", b, 0);
        var deltas = RunCompare.Deltas(ma, mb);
        var unsafeAcc = deltas.Single(d => d.Metric == "chat.unsafe_acc").Test!;
        var total = deltas.Single(d => d.Metric == "total_acc").Test!;
        Assert.Multiple(() =>
        {
            Assert.That(unsafeAcc.Test, Is.EqualTo("mcnemar-exact"));
            Assert.That(unsafeAcc.P, Is.EqualTo(0.021484375).Within(1e-12));
            Assert.That(unsafeAcc.Delta, Is.EqualTo(0.8).Within(1e-12));
            Assert.That(total.Test, Is.EqualTo("paired-bootstrap"), "two answers per sample: clusters of two");
            Assert.That(total.N, Is.EqualTo(20));
            Assert.That(total.Clusters, Is.EqualTo(10));
            Assert.That(total.Delta, Is.EqualTo(0.4).Within(1e-12));
            Assert.That(deltas.Single(d => d.Metric == "chat.safe_acc").Test!.P, Is.EqualTo(1.0));
        });
        Assert.That(RunCompare.DeltaCell(unsafeAcc), Does.StartWith("+80.0 [").And.EndWith("p=0.0215 *"));
    }

    [Test]
    public void RunJson_CarriesWilsonIntervals_CostIntervals_AndTheSeed()
    {
        var recs = Enumerable.Range(0, 10).Select(i => Rec($"{i}", "mossbench", G("type", "type 1"), Out("answer", i < 5 ? "refusal" : "compliance"))).ToList();
        var j = MetricsCalculator.Compute("mossbench", "vanilla", null, "test", recs, 0).ToJson();
        var row = j["rows"]!.AsArray().First(r => (string?)r!["metric"] == "refusal_rate" && (string?)r!["group"] == "")!;
        Assert.Multiple(() =>
        {
            Assert.That(row["ci"]!["low"]!.GetValue<double>(), Is.EqualTo(0.236593).Within(1e-6));
            Assert.That(row["ci"]!["high"]!.GetValue<double>(), Is.EqualTo(0.763407).Within(1e-6));
            Assert.That(j["statistics"]!["bootstrap_seed"]!.GetValue<int>(), Is.EqualTo(ReportStatistics.BootstrapSeed));
            Assert.That(j["cost"]!["seconds_per_sample_ci"], Is.Not.Null);
        });
    }

    [Test]
    public void ReportMd_ShowsTheIntervalNextToEachRate_AndReportJsonIsWritten()
    {
        var recs = Enumerable.Range(0, 10).Select(i => Rec($"{i}", "mossbench", G("type", "type 1"), Out("answer", i < 5 ? "refusal" : "compliance"))).ToList();
        var m = MetricsCalculator.Compute("mossbench", "vanilla", null, "test", recs, 0);
        var dir = NewDir();
        var written = ReportWriter.Write([m], dir);
        var md = File.ReadAllText(written.Markdown);
        Assert.Multiple(() =>
        {
            Assert.That(md, Does.Contain("50.0% (5/10) [23.7–76.3]"));
            Assert.That(md, Does.Contain("## Statistics"));
            Assert.That(File.Exists(written.JsonPath), Is.True);
            Assert.That(System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(written.JsonPath))!["runs"]![0]!["rows"]![0]!["ci"]!["method"]!.GetValue<string>(), Is.EqualTo("wilson"));
        });
    }
}
