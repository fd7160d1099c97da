using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Microsoft.Playwright.NUnit;
using NUnit.Framework;
using SafeCoDe.Eval.Reports;
using SafeCoDe.Eval.Runs;
using static SafeCoDe.Eval.Tests.Harness.T;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary>What the report.html tests share: a real study on the shipped model with one hostile answer, and reading the page's data.</summary>
internal static class HtmlFixture
{
    public const string Hostile = "</script><script>window.__pwned = 1; alert(1)</script><img src=x onerror=\"window.__pwned = 2\"> & <!-- done";

    /// <summary>
    /// A 2 methods × 2 benchmarks study (StudyTests' plan) whose safecode answer to the first MSSBench sample is
    /// replaced by a hostile text and scored again with the keyword scorer; the hostile text refuses exactly when
    /// vanilla's answer did not, so the two methods' outcomes differ on it. Returns the study folder and the answer's sample id and key.
    /// </summary>
    public static (string Study, string Id, string Key) HostileStudy()
    {
        var root = NewDir();
        var (mss, moss) = StudyTests.Data(root);
        var plan = StudyTests.Plan(root, mss, moss);
        var study = Path.Combine(root, "study");
        var run = RunCli("eval", "study", plan, "--out", study, "--quiet");
        Assert.That(run.code, Is.EqualTo(0), run.stderr);
        var vanilla = RunStore.ReadRecords(Path.Combine(study, "cells", "tiny", "mss", "vanilla"));
        var first = vanilla[0].Outputs[0];
        var cell = Path.Combine(study, "cells", "tiny", "mss", "safecode");
        var file = Path.Combine(cell, RunStore.RecordsFile);
        var lines = File.ReadAllLines(file);
        var i = Array.FindIndex(lines, l => (string?)JsonNode.Parse(l)!["id"] == vanilla[0].Id);
        var rec = JsonNode.Parse(lines[i])!;
        var output = rec["outputs"]!.AsArray().First(o => (string?)o!["key"] == first.Key)!;
        bool vanillaRefused = first.Score!.Label == RefusalLabel(first);
        output["answer"] = (vanillaRefused ? "" : "I must refuse. ") + Hostile;
        lines[i] = rec.ToJsonString();
        File.WriteAllLines(file, lines);
        var score = RunCli("eval", "score", cell, "--scorer", "keyword", "--quiet");
        Assert.That(score.code, Is.EqualTo(0), score.stderr);
        var report = RunCli("eval", "study", plan, "--out", study, "--report");
        Assert.That(report.code, Is.EqualTo(0), report.stderr);
        return (study, vanilla[0].Id, first.Key);
    }

    /// <summary>The keyword scorer's label for a refusal on this answer's benchmark (what it gives an empty answer).</summary>
    private static string RefusalLabel(RunOutput o) =>
        new SafeCoDe.Eval.Scoring.KeywordScorer().ScoreAsync(new("mssbench", "x", o.Key, o.Question, "I must refuse.", new Dictionary<string, string>(), new Dictionary<string, string>()))
            .GetAwaiter().GetResult().Label;

    /// <summary>The page's JSON element, as the browser reads it.</summary>
    public static JsonObject Blob(string html, out string raw)
    {
        const string open = "<script type=\"application/json\" id=\"report-data\">";
        int a = html.IndexOf(open, StringComparison.Ordinal);
        Assert.That(a, Is.GreaterThanOrEqualTo(0), "the data element");
        a += open.Length;
        int b = html.IndexOf("</script>", a, StringComparison.Ordinal);
        raw = html[a..b];
        return JsonNode.Parse(raw)!.AsObject();
    }

    /// <summary>The outcome the page shows for each method's answer of one benchmark entry, by (id, key).</summary>
    public static Dictionary<(string, string), Dictionary<string, string>> Outcomes(JsonObject blob, string bench) =>
        blob["benchmarks"]!.AsArray().Single(b => (string?)b!["name"] == bench)!["samples"]!.AsArray().ToDictionary(
            s => ((string)s!["id"]!, (string)s["key"]!),
            s => s!["answers"]!.AsObject().ToDictionary(kv => kv.Key, kv => (string)kv.Value!["outcome"]!));
}

/// <summary>report.html without a browser: where it is written, its data element, the escaping of hostile text, its numbers and thumbnails.</summary>
public class ReportHtmlTests
{
    [Test]
    public void Study_WritesReportHtml_WhoseDataIsInertAndCarriesReportJsonsNumbers()
    {
        var (study, id, key) = HtmlFixture.HostileStudy();
        var html = File.ReadAllText(Path.Combine(study, "report.html"));
        var blob = HtmlFixture.Blob(html, out var raw);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!;
        Assert.Multiple(() =>
        {
            Assert.That(raw, Does.Not.Contain("<"), "no '<' at all inside the data element: it cannot be closed or opened from the data");
            Assert.That(html, Does.Not.Contain("<script><script>").And.Not.Contain("alert(1)</script>"));
            Assert.That(html, Does.Not.Contain("http://").And.Not.Contain("https://"), "nothing is fetched");
            var answer = blob["benchmarks"]!.AsArray().Single(b => (string?)b!["name"] == "tiny/mss")!["samples"]!.AsArray()
                .Single(s => (string?)s!["id"] == id && (string?)s["key"] == key)!["answers"]!["safecode"]!["answer"]!.GetValue<string>();
            Assert.That(answer, Does.EndWith(HtmlFixture.Hostile), "the hostile answer survives as text");
            Assert.That(blob["charts"]!.AsArray().Select(c => (string?)c!["title"]), Is.EqualTo(new[]
            {
                "tiny-study — tiny: safety vs helpfulness", "tiny-study — tiny: over-refusal vs under-sensitivity", "tiny-study — tiny: cost per sample",
            }));
            foreach (var chart in blob["charts"]!.AsArray())
                Assert.That(chart!["src"]!.GetValue<string>(), Does.StartWith("data:image/png;base64,"));
            Assert.That(blob["images"]!.AsObject().Count, Is.GreaterThan(0));
            foreach (var img in blob["images"]!.AsObject())
                Assert.That(img.Value!.GetValue<string>(), Does.StartWith("data:image/jpeg;base64,"));
        });
        // outcomes in the benchmark's terms: the page's flips between two methods are eval compare's flips between their cells
        var outcomes = HtmlFixture.Outcomes(blob, "tiny/mss");
        var pageFlips = outcomes.Where(o => o.Value["vanilla"] != o.Value["safecode"]).Select(o => (o.Key.Item1, o.Key.Item2, o.Value["vanilla"], o.Value["safecode"])).ToList();
        var compare = RunCompare.Compare(Path.Combine(study, "cells", "tiny", "mss", "vanilla"), Path.Combine(study, "cells", "tiny", "mss", "safecode"));
        Assert.Multiple(() =>
        {
            Assert.That(outcomes.Values.SelectMany(v => v.Values).Distinct(), Is.SubsetOf(new[] { "correct", "wrong" }));
            Assert.That(pageFlips, Is.EquivalentTo(compare.Flips.Select(f => (f.Id, f.Key, f.A, f.B))));
            Assert.That(pageFlips.Select(f => (f.Item1, f.Item2)), Does.Contain((id, key)));
        });

        // every rate of report.json is in the results table with the same value
        var cells = blob["tables"]!.AsArray().Single(t => (string?)t!["id"] == "results-tiny")!["rows"]!.AsArray().SelectMany(r => r!["cells"]!.AsArray()).ToList();
        int checkedRows = 0;
        foreach (var c in report["cells"]!.AsArray())
            foreach (var row in c!["rows"]!.AsArray())
            {
                var shown = cells.Single(x => (string?)x!["cell"] == (string?)c["cell"] && (string?)x!["metric"] == (string?)row!["metric"])!;
                Assert.That(shown["value"]?.GetValue<double>(), Is.EqualTo(row!["value"]?.GetValue<double>()));
                Assert.That((string?)shown["text"], Does.Contain($"({row["hits"]}/{row["n"]})"));
                checkedRows++;
            }
        Assert.That(checkedRows, Is.EqualTo(4 + 4));
    }

    [Test]
    public void Thumbnail_DownscalesToTheLongestSide_AndIsNullForWhatIsNotAnImageFile()
    {
        var dir = NewDir();
        var big = Path.Combine(dir, "big.png");
        File.WriteAllBytes(big, BenchmarkFolders.Png(1, size: 600));
        var uri = HtmlReport.Thumbnail(big)!;
        using var img = SixLabors.ImageSharp.Image.Load(Convert.FromBase64String(uri["data:image/jpeg;base64,".Length..]));
        Assert.Multiple(() =>
        {
            Assert.That(Math.Max(img.Width, img.Height), Is.EqualTo(HtmlReport.ThumbnailSize));
            Assert.That(HtmlReport.Thumbnail(Path.Combine(dir, "absent.png")), Is.Null);
            File.WriteAllBytes(Path.Combine(dir, "text.png"), BenchmarkFolders.Garbage);
            Assert.That(HtmlReport.Thumbnail(Path.Combine(dir, "text.png")), Is.Null);
        });
    }

    [Test]
    public void EvalReport_Html_WritesRunReportHtml_OrWhereOutSays()
    {
        var (study, _, _) = HtmlFixture.HostileStudy();
        var run = Path.Combine(study, "cells", "tiny", "moss", "safecode");
        var r = RunCli("eval", "report", run, "--html");
        Assert.That(r.code, Is.EqualTo(0), r.stderr);
        Assert.That(r.stdout, Does.Contain(Path.Combine(run, "report.html")));
        var blob = HtmlFixture.Blob(File.ReadAllText(Path.Combine(run, "report.html")), out _);
        var metrics = SafeCoDe.Eval.Metrics.MetricsCalculator.ForRun(run);
        var table = blob["tables"]!.AsArray().Single(t => (string?)t!["id"] == "metrics-mossbench")!;
        var refusal = table["rows"]!.AsArray().Single(x => (string?)x!["name"] == "refusal_rate")!["cells"]!.AsArray()[1]!;
        Assert.Multiple(() =>
        {
            Assert.That(refusal["value"]!.GetValue<double>(), Is.EqualTo(metrics.Rows.Single(x => x.Path == "refusal_rate").Rate.Value));
            Assert.That(blob["benchmarks"]!.AsArray().Single()!["samples"]!.AsArray(), Has.Count.EqualTo(3));
            Assert.That(blob["charts"]!.AsArray(), Is.Not.Empty);
        });
        var other = Path.Combine(NewDir(), "elsewhere");
        Assert.That(RunCli("eval", "report", run, "--html", "--out", other).code, Is.EqualTo(0));
        Assert.That(File.Exists(Path.Combine(other, "report.html")), Is.True);
    }
}

/// <summary>
/// report.html in a real browser: Debian's chromium (<c>/usr/bin/chromium</c>, or <c>SAFECODE_CHROMIUM</c>) driven by
/// Playwright opens the page of a real study from disk, checks the table against report.json, uses the filters, the
/// flip filter and the keyboard, opens the hostile answer (which must stay text), and keeps a screenshot.
/// </summary>
public class ReportHtmlBrowserTests : PlaywrightTest
{
    private static string Chromium()
    {
        var path = Environment.GetEnvironmentVariable("SAFECODE_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";
        if (!File.Exists(path))
            Assert.Fail($"the report.html browser test needs chromium at {path}: install it with 'sudo apt-get install -y chromium' (Debian/Ubuntu; .ci/run does this), or point SAFECODE_CHROMIUM at a chromium executable");
        return path;
    }

    /// <summary>An open page of a study's report.html, with every alert and script error it raised.</summary>
    internal sealed record OpenPage(IPage Page, JsonObject Blob, JsonNode Report, List<string> Dialogs, List<string> Errors);

    internal static async Task<OpenPage> Open(IBrowser browser, string study)
    {
        var file = Path.Combine(study, "report.html");
        var blob = HtmlFixture.Blob(File.ReadAllText(file), out _);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(study, "report.json")))!;
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var dialogs = new List<string>();
        var errors = new List<string>();
        page.Dialog += async (_, d) => { dialogs.Add(d.Message); await d.DismissAsync(); };
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(new Uri(file).AbsoluteUri);
        await page.WaitForSelectorAsync("body[data-ready=true]");
        return new OpenPage(page, blob, report, dialogs, errors);
    }

    /// <summary>
    /// What holds for any study's page: every rate of report.json in the results table with its value and counts, the
    /// charts decoded, and per benchmark entry the filters (category, outcome, verdict), the flip filter between the
    /// baseline and <paramref name="other"/>, opening an answer with the keyboard and j/k.
    /// </summary>
    internal static async Task CheckStudyPage(OpenPage open, string other)
    {
        var (page, blob, report) = (open.Page, open.Blob, open.Report);
        foreach (var c in report["cells"]!.AsArray())
            foreach (var row in c!["rows"]!.AsArray())
            {
                var td = page.Locator($"table[data-table=\"results-{c["model"]}\"] td[data-cell=\"{c["cell"]}\"][data-metric=\"{row!["metric"]}\"]");
                var value = await td.GetAttributeAsync("data-value");
                var expected = row["value"]?.GetValue<double>();
                Assert.That(value is null ? (double?)null : double.Parse(value, CultureInfo.InvariantCulture), Is.EqualTo(expected).Within(1e-12), $"{c["cell"]} {row["metric"]}");
                var text = await td.TextContentAsync();
                Assert.That(text, Does.Contain($"({row["hits"]}/{row["n"]})"));
                if (expected is { } v) Assert.That(text, Does.StartWith((v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%"));
            }
        var charts = page.Locator("#chart-list img");
        Assert.That(await charts.CountAsync(), Is.EqualTo(blob["charts"]!.AsArray().Count).And.GreaterThan(0));
        Assert.That(await charts.First.EvaluateAsync<int>("i => i.naturalWidth"), Is.GreaterThan(100), "the chart is embedded and decodes");
        var baseline = (string)report["baseline"]!;
        async Task<int> Shown() => await page.Locator("#sample-list tbody tr").CountAsync();
        int Paged(int n) => Math.Min(n, HtmlReport.PageSize);
        foreach (var entry in blob["benchmarks"]!.AsArray())
        {
            var name = (string)entry!["name"]!;
            var group = entry["samples"]!.AsArray();
            var outcomes = HtmlFixture.Outcomes(blob, name);
            await page.SelectOptionAsync("#f-bench", new SelectOptionValue { Label = $"{name} ({group.Count})" });
            Assert.That(await Shown(), Is.EqualTo(Paged(outcomes.Count)), name);
            Assert.That(await page.Locator("#count").TextContentAsync(), Does.StartWith($"{outcomes.Count} of {outcomes.Count} answer(s)"));

            var label = outcomes.Values.First()[baseline];
            await page.SelectOptionAsync("#f-outcome", label);
            Assert.That(await Shown(), Is.EqualTo(Paged(outcomes.Count(o => o.Value.Values.Contains(label)))), $"{name}: outcome filter (any method has it)");
            await page.ClickAsync("#f-reset");

            var (g, gv) = group.Select(x => x!["groups"]!.AsObject().Select(kv => (kv.Key, (string)kv.Value!)).First()).First();
            await page.SelectOptionAsync("#f-cat", $"{g} = {gv}");
            Assert.That(await Shown(), Is.EqualTo(Paged(group.Count(x => (string?)x!["groups"]![g] == gv))), $"{name}: category filter");
            await page.ClickAsync("#f-reset");

            var verdicts = group.SelectMany(x => x!["answers"]!.AsObject().Select(a => (string)a.Value!["verdict"]!)).Distinct().ToList();
            var verdict = verdicts.FirstOrDefault(v => v != "none") ?? "none";
            await page.SelectOptionAsync("#f-verdict", verdict);
            Assert.That(await Shown(), Is.EqualTo(Paged(group.Count(x => x!["answers"]!.AsObject().Any(a => (string?)a.Value!["verdict"] == verdict)))), $"{name}: verdict filter");
            await page.ClickAsync("#f-reset");

            await page.SelectOptionAsync("#f-flip-a", baseline);
            await page.SelectOptionAsync("#f-flip-b", other);
            var flips = outcomes.Where(o => o.Value.ContainsKey(baseline) && o.Value.ContainsKey(other) && o.Value[baseline] != o.Value[other]).ToList();
            Assert.That(await Shown(), Is.EqualTo(Paged(flips.Count)), $"{name}: flips between {baseline} and {other}");
            Assert.That(await page.Locator("#count").TextContentAsync(), Does.StartWith($"{flips.Count} of {outcomes.Count} answer(s) shown — outcome differs between {baseline} and {other}"));
            if (flips.Count > 0)
                Assert.That(await page.Locator($"#sample-list tbody tr").First.Locator($"td[data-method=\"{other}\"]").TextContentAsync(), Does.StartWith("⇄ "), "a flip is marked with a symbol, not only a colour");
            await page.ClickAsync("#f-reset");

            // the keyboard: Enter opens the first answer and focuses it; j j k ↑ step through the list
            await page.Locator("#sample-list tbody tr button").First.FocusAsync();
            await page.Keyboard.PressAsync("Enter");
            Assert.That(await page.EvaluateAsync<bool>("() => document.activeElement === document.getElementById('detail')"), Is.True, "focus moves to the opened sample");
            Assert.That(await page.Locator("#detail article.card").CountAsync(), Is.EqualTo(entry["methods"]!.AsArray().Count), "every method's answer side by side");
            var firstOpen = await page.GetAttributeAsync("#detail", "data-sample");
            await page.Keyboard.PressAsync("j");
            await page.Keyboard.PressAsync("j");
            Assert.That(await page.Locator("#detail h3").TextContentAsync(), Does.Contain($"({Math.Min(3, outcomes.Count)} of {outcomes.Count})"));
            await page.Keyboard.PressAsync("k");
            await page.Keyboard.PressAsync("ArrowUp");
            Assert.That(await page.Locator("#detail h3").TextContentAsync(), Does.Contain($"(1 of {outcomes.Count})"));
            Assert.That(await page.GetAttributeAsync("#detail", "data-sample"), Is.EqualTo(firstOpen));
        }
    }

    [Test]
    public async Task StudyReportHtml_InChromium_TableFiltersFlipsKeyboardAndInertHostileText()
    {
        var exe = Chromium();
        var (study, id, key) = HtmlFixture.HostileStudy();
        await using var browser = await BrowserType.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = exe, Headless = true });
        var open = await Open(browser, study);
        await CheckStudyPage(open, "safecode");
        var page = open.Page;

        // the hostile answer: among the flips between vanilla and safecode, opened from its row, shown as text
        await page.SelectOptionAsync("#f-bench", new SelectOptionValue { Label = $"tiny/mss ({HtmlFixture.Outcomes(open.Blob, "tiny/mss").Count})" });
        await page.SelectOptionAsync("#f-flip-a", "vanilla");
        await page.SelectOptionAsync("#f-flip-b", "safecode");
        var row = page.Locator($"#sample-list tbody tr[data-sample=\"{id}\"][data-key=\"{key}\"]");
        Assert.That(await row.CountAsync(), Is.EqualTo(1), "the hostile answer flipped");
        await row.Locator("button").ClickAsync();
        var answer = page.Locator("#detail article[data-method=safecode] dd[data-field=answer]");
        Assert.That(await answer.TextContentAsync(), Does.EndWith(HtmlFixture.Hostile));
        Assert.Multiple(async () =>
        {
            Assert.That(await page.Locator("#detail script, #detail img[src=x]").CountAsync(), Is.EqualTo(0), "no element made from the answer");
            Assert.That(await page.EvaluateAsync<int>("() => document.scripts.length"), Is.EqualTo(2), "only the page's own two scripts");
            Assert.That(await page.EvaluateAsync<bool>("() => window.__pwned === undefined"), Is.True, "the hostile text did not run");
            Assert.That(await page.Locator("#detail img").CountAsync(), Is.EqualTo(1), "the sample's thumbnail");
            Assert.That(await page.Locator("#detail img").EvaluateAsync<int>("i => i.naturalWidth"), Is.GreaterThan(0), "the thumbnail decodes");
            Assert.That(await page.Locator("#detail-question").TextContentAsync(), Is.Not.Empty);
            Assert.That(await page.Locator("#detail article[data-method=safecode] dd[data-field=verdict]").TextContentAsync(), Is.Not.Empty);
        });

        // paging: the same data at 5 answers a page; the buttons and j cross pages
        var blob = open.Blob.DeepClone().AsObject();
        blob["page_size"] = 5;
        var paged = Path.Combine(study, "report-paged.html");
        File.WriteAllText(paged, HtmlReport.Page(blob));
        var p2 = await browser.NewPageAsync();
        await p2.GotoAsync(new Uri(paged).AbsoluteUri);
        await p2.WaitForSelectorAsync("body[data-ready=true]");
        await p2.SelectOptionAsync("#f-bench", new SelectOptionValue { Label = "tiny/mss (12)" });
        Assert.That(await p2.Locator("#page-info").TextContentAsync(), Is.EqualTo("page 1 of 3"));
        Assert.That(await p2.Locator("#sample-list tbody tr").CountAsync(), Is.EqualTo(5));
        Assert.That(await p2.Locator("#page-prev").IsDisabledAsync(), Is.True);
        await p2.ClickAsync("#page-next");
        await p2.ClickAsync("#page-next");
        Assert.That(await p2.Locator("#page-info").TextContentAsync(), Is.EqualTo("page 3 of 3"));
        Assert.That(await p2.Locator("#sample-list tbody tr").CountAsync(), Is.EqualTo(2));
        Assert.That(await p2.Locator("#page-next").IsDisabledAsync(), Is.True);
        await p2.ClickAsync("#page-prev");
        await p2.Locator("#sample-list tbody tr button").Last.FocusAsync();
        await p2.Keyboard.PressAsync("Enter");
        Assert.That(await p2.Locator("#detail h3").TextContentAsync(), Does.Contain("(10 of 12)"));
        await p2.Keyboard.PressAsync("j");
        Assert.That(await p2.Locator("#detail h3").TextContentAsync(), Does.Contain("(11 of 12)"));
        Assert.That(await p2.Locator("#page-info").TextContentAsync(), Is.EqualTo("page 3 of 3"), "j moves on to the next page");
        Assert.That(await p2.Locator("#sample-list tbody tr[aria-current=true]").CountAsync(), Is.EqualTo(1));

        var shots = Path.Combine(TestContext.CurrentContext.WorkDirectory, "TestResults");
        Directory.CreateDirectory(shots);
        var shot = Path.Combine(shots, "report-html.png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot, FullPage = true });
        TestContext.AddTestAttachment(shot, "report.html of a study on the shipped model, the hostile answer opened");
        Assert.Multiple(() =>
        {
            Assert.That(new FileInfo(shot).Length, Is.GreaterThan(10_000));
            Assert.That(open.Dialogs, Is.Empty, "no alert ran");
            Assert.That(open.Errors, Is.Empty, "no script error");
        });
    }
}
