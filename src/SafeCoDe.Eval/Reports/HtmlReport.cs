using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Runs;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Processing;

namespace SafeCoDe.Eval.Reports;

/// <summary>One cell of an HTML table: its text and, for a rate, the metric it shows and its value (a fraction).</summary>
/// <param name="Text">What the cell shows.</param>
/// <param name="Cell">Which run or study cell the value comes from (a data attribute; null for plain text).</param>
/// <param name="Metric">The metric path (a data attribute).</param>
/// <param name="Value">The rate as a fraction (a data attribute).</param>
public sealed record HtmlCell(string Text, string? Cell = null, string? Metric = null, double? Value = null);

/// <summary>One table of the HTML report: rows named in their first column.</summary>
/// <param name="Id">A stable name (the table's <c>data-table</c> attribute).</param>
/// <param name="Title">Its heading.</param>
/// <param name="Caption">A line under the heading.</param>
/// <param name="Columns">The header, first column included.</param>
/// <param name="Rows">Each row's name and cells.</param>
public sealed record HtmlTable(string Id, string Title, string? Caption, IReadOnlyList<string> Columns, IReadOnlyList<(string Name, IReadOnlyList<HtmlCell> Cells)> Rows);

/// <summary>A RUN folder whose answers the sample browser shows: the benchmark it belongs to and the method's column name.</summary>
/// <param name="Benchmark">The browser's benchmark entry (runs with the same name sit side by side).</param>
/// <param name="Method">The column name of this run.</param>
/// <param name="Run">The RUN folder.</param>
public sealed record HtmlRun(string Benchmark, string Method, string Run);

/// <summary>
/// <c>report.html</c>: one self-contained page (no network; styles, script, charts and image thumbnails inside) with
/// the report's tables, its charts and a sample browser. The page is the embedded resource <c>Reports/report.html</c>;
/// everything shown goes into its one JSON element, serialised with every <c>&lt;</c>, <c>&gt;</c> and <c>&amp;</c>
/// escaped, so no text of a run (an answer, a question) can end the element or become markup.
/// </summary>
public static class HtmlReport
{
    /// <summary>The longest side of an image thumbnail, in pixels.</summary>
    public const int ThumbnailSize = 192;

    /// <summary>Answers per page of the sample browser.</summary>
    public const int PageSize = 50;

    private const string Placeholder = "{{DATA}}";

    private static readonly JsonSerializerOptions Escaped = new() { Encoder = JavaScriptEncoder.Default, WriteIndented = false };

    /// <summary>The page template, as shipped inside the assembly.</summary>
    public static string Template()
    {
        using var s = typeof(HtmlReport).Assembly.GetManifestResourceStream("SafeCoDe.Eval.Reports.report.html")
            ?? throw new InvalidOperationException("the report.html template is missing from SafeCoDe.Eval's resources");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>Writes the page to <paramref name="path"/>.</summary>
    /// <param name="path">The file to write.</param>
    /// <param name="title">The page's heading.</param>
    /// <param name="subtitle">A line under it.</param>
    /// <param name="notes">Paragraphs above the tables.</param>
    /// <param name="tables">The tables.</param>
    /// <param name="charts">Each chart's title and PNG file (embedded as it is).</param>
    /// <param name="runs">The runs whose answers the sample browser shows.</param>
    public static void Write(string path, string title, string? subtitle, IReadOnlyList<string> notes, IReadOnlyList<HtmlTable> tables,
        IReadOnlyList<(string Title, string Png)> charts, IReadOnlyList<HtmlRun> runs)
    {
        var data = Data(title, subtitle, notes, tables, charts, runs);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllText(path, Page(data));
    }

    /// <summary>The page with <paramref name="data"/> in its JSON element.</summary>
    public static string Page(JsonObject data)
    {
        // JavaScriptEncoder.Default writes <, > and & as \u003C, \u003E and \u0026: "</script" and "<!--" cannot occur in the element
        var json = data.ToJsonString(Escaped);
        return Template().Replace(Placeholder, json, StringComparison.Ordinal);
    }

    /// <summary>The JSON the page reads: title, notes, tables, charts (data URIs), image thumbnails and each benchmark's answers.</summary>
    public static JsonObject Data(string title, string? subtitle, IReadOnlyList<string> notes, IReadOnlyList<HtmlTable> tables,
        IReadOnlyList<(string Title, string Png)> charts, IReadOnlyList<HtmlRun> runs)
    {
        var images = new JsonObject();
        var imageIds = new Dictionary<string, string?>(StringComparer.Ordinal);
        string? ImageId(string? origin)
        {
            if (origin is null) return null;
            if (!imageIds.TryGetValue(origin, out var id))
            {
                id = null;
                if (Thumbnail(origin) is { } uri)
                {
                    id = $"i{images.Count}";
                    images[id] = uri;
                }
                imageIds[origin] = id;
            }
            return id;
        }
        var benchmarks = new JsonArray();
        foreach (var group in runs.GroupBy(r => r.Benchmark))
        {
            var methods = group.Select(r => r.Method).ToList();
            var samples = new Dictionary<(string Id, string Key), JsonObject>();
            var order = new List<(string, string)>();
            foreach (var run in group)
            {
                foreach (var rec in RunStore.ReadRecords(run.Run))
                    foreach (var o in rec.Outputs)
                    {
                        var k = (rec.Id, o.Key);
                        if (!samples.TryGetValue(k, out var s))
                        {
                            var img = ImageId(o.Image);
                            samples[k] = s = new JsonObject
                            {
                                ["id"] = rec.Id, ["key"] = o.Key, ["question"] = o.Question,
                                ["groups"] = new JsonObject(rec.Groups.Select(g => KeyValuePair.Create(g.Key, (JsonNode?)g.Value))),
                                ["image"] = img, ["image_origin"] = img is null ? o.Image : null, ["answers"] = new JsonObject(),
                            };
                            order.Add(k);
                        }
                        s["answers"]![run.Method] = new JsonObject
                        {
                            ["answer"] = o.Answer,
                            ["outcome"] = RunCompare.Outcome(rec.Benchmark, o),
                            ["label"] = o.Score is null ? null : o.Score.Parsed ? o.Score.Label : $"{o.Score.Label} (the judge's reply did not follow the rubric)",
                            ["verdict"] = o.Verdict ?? "none", ["caption"] = o.Caption, ["guided"] = o.GuidedText,
                            ["decoded"] = o.DecodedText, ["scorer"] = o.Score?.Scorer, ["reason"] = o.Score?.Raw,
                            ["judge_reason"] = o.JudgeRationale, ["error"] = o.Score?.Error,
                        };
                    }
            }
            benchmarks.Add(new JsonObject
            {
                ["name"] = group.Key, ["methods"] = new JsonArray(methods.Select(m => (JsonNode)m).ToArray()),
                ["samples"] = new JsonArray(order.Select(k => (JsonNode)samples[k]).ToArray()),
            });
        }
        return new JsonObject
        {
            ["title"] = title, ["subtitle"] = subtitle, ["page_size"] = PageSize,
            ["notes"] = new JsonArray(notes.Select(n => (JsonNode)n).ToArray()),
            ["tables"] = new JsonArray(tables.Select(t => (JsonNode)new JsonObject
            {
                ["id"] = t.Id, ["title"] = t.Title, ["caption"] = t.Caption,
                ["columns"] = new JsonArray(t.Columns.Select(c => (JsonNode)c).ToArray()),
                ["rows"] = new JsonArray(t.Rows.Select(r => (JsonNode)new JsonObject
                {
                    ["name"] = r.Name,
                    ["cells"] = new JsonArray(r.Cells.Select(c => (JsonNode)new JsonObject { ["text"] = c.Text, ["cell"] = c.Cell, ["metric"] = c.Metric, ["value"] = c.Value }).ToArray()),
                }).ToArray()),
            }).ToArray()),
            ["charts"] = new JsonArray(charts.Where(c => File.Exists(c.Png)).Select(c => (JsonNode)new JsonObject
            {
                ["title"] = c.Title, ["src"] = "data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(c.Png)),
            }).ToArray()),
            ["images"] = images,
            ["benchmarks"] = benchmarks,
        };
    }

    /// <summary>
    /// A JPEG data URI of the image at <paramref name="origin"/>, its longest side at most <see cref="ThumbnailSize"/>;
    /// null when the origin is not an image file on disk (an image embedded in a data file, or one moved away since).
    /// </summary>
    public static string? Thumbnail(string origin)
    {
        if (!File.Exists(origin)) return null;
        try
        {
            using var img = Image.Load(origin);
            if (img.Width > ThumbnailSize || img.Height > ThumbnailSize)
                img.Mutate(x => x.Resize(new ResizeOptions { Size = new Size(ThumbnailSize, ThumbnailSize), Mode = ResizeMode.Max }));
            using var ms = new MemoryStream();
            img.SaveAsJpeg(ms, new JpegEncoder { Quality = 80 });
            return "data:image/jpeg;base64," + Convert.ToBase64String(ms.ToArray());
        }
        catch (UnknownImageFormatException) { return null; }
        catch (InvalidImageContentException) { return null; }
    }
}
