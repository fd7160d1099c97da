using ScottPlot;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Eval.Metrics;

namespace SafeCoDe.Eval.Studies;

/// <summary>The study's charts (ScottPlot PNGs).</summary>
public static class StudyCharts
{
    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>One method's place on the trade-off chart: the mean "goodness" of its headline rows per axis, in percent.</summary>
    /// <param name="Method">The method.</param>
    /// <param name="Helpfulness">Mean over the helpfulness benchmarks (a rate where lower is better counts as 100 − rate).</param>
    /// <param name="Safety">Mean over the safety benchmarks, likewise.</param>
    /// <param name="HelpfulnessCi">The Wilson interval when one benchmark makes the axis, else null.</param>
    /// <param name="SafetyCi">Likewise for safety.</param>
    public sealed record TradeOffPoint(string Method, double Helpfulness, double Safety, (double Low, double High)? HelpfulnessCi, (double Low, double High)? SafetyCi);

    /// <summary>
    /// The points of a model's trade-off chart: per method, each axis averages the first shown row of every benchmark
    /// whose descriptor puts it on that axis (<see cref="IBenchmark.Axis"/>), turned so that higher is better
    /// (<see cref="IBenchmark.HigherIsBetter"/>). Empty when an axis has no benchmark with a value.
    /// </summary>
    public static List<TradeOffPoint> TradeOff(StudyPlan plan, IReadOnlyList<StudyCellResult> results, out string helpfulnessLabel, out string safetyLabel)
    {
        var axisOf = plan.Benchmarks.ToDictionary(b => b, b => EvalBenchmarks.Get(b.Benchmark).Axis);
        string Label(string axis) => string.Join(" + ", plan.Benchmarks.Where(b => axisOf[b] == axis)
            .Select(b => results.FirstOrDefault(r => r.Cell.Benchmark == b && r.Shown.Count > 0) is { } r ? Turned(b, r.Shown[0].Metric) : null)
            .Where(s => s is not null));
        string? Turned(PlanBenchmark b, string metric) => EvalBenchmarks.Get(b.Benchmark).HigherIsBetter(metric) ? $"{b.Name} {metric}" : $"{b.Name} 100 − {metric}";
        helpfulnessLabel = Label("helpfulness");
        safetyLabel = Label("safety");
        var points = new List<TradeOffPoint>();
        foreach (var m in plan.Methods)
        {
            (double Mean, (double, double)? Ci)? Axis(string axis)
            {
                var rows = results.Where(r => r.Cell.Method == m && axisOf[r.Cell.Benchmark] == axis && r.Shown.Count > 0 && r.Shown[0].Rate.Value is not null)
                    .Select(r => (Row: r.Shown[0], Higher: EvalBenchmarks.Get(r.Cell.Benchmark.Benchmark).HigherIsBetter(r.Shown[0].Metric))).ToList();
                if (rows.Count == 0) return null;
                double Good(double v, bool higher) => higher ? v * 100 : 100 - v * 100;
                var mean = rows.Average(x => Good(x.Row.Rate.Value!.Value, x.Higher));
                (double, double)? ci = null;
                if (rows.Count == 1 && rows[0].Row.Ci is { } c)
                {
                    double a = Good(c.Low, rows[0].Higher), b = Good(c.High, rows[0].Higher);
                    ci = (Math.Min(a, b), Math.Max(a, b));
                }
                return (mean, ci);
            }
            if (Axis("helpfulness") is { } h && Axis("safety") is { } s) points.Add(new TradeOffPoint(m.Name, h.Mean, s.Mean, h.Ci, s.Ci));
        }
        return points;
    }

    /// <summary>Writes the safety-vs-helpfulness chart of one model; false (nothing written) when it has no points.</summary>
    public static bool TradeOffChart(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string model, string path)
    {
        var points = TradeOff(plan, results, out var hLabel, out var sLabel);
        if (points.Count == 0) return false;
        Scatter(points.Select(p => new ScatterPoint(p.Method, p.Helpfulness, p.Safety, p.HelpfulnessCi, p.SafetyCi)).ToList(),
            $"helpfulness, % ({hLabel})", $"safety, % ({sLabel})", $"{plan.Name} — {model}: safety vs helpfulness", Alignment.LowerLeft, path);
        return true;
    }

    private sealed record ScatterPoint(string Label, double X, double Y, (double Low, double High)? XCi, (double Low, double High)? YCi);

    /// <summary>One labelled marker per method in percent, with its intervals as lines, saved as a 900×700 PNG.</summary>
    private static void Scatter(IReadOnlyList<ScatterPoint> points, string xLabel, string yLabel, string title, Alignment legend, string path)
    {
        var plt = new Plot();
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var color = Palette.GetColor(i);
            if (p.XCi is { } xc) { var l = plt.Add.Line(xc.Low, p.Y, xc.High, p.Y); l.Color = color; l.LineWidth = 1.5f; }
            if (p.YCi is { } yc) { var l = plt.Add.Line(p.X, yc.Low, p.X, yc.High); l.Color = color; l.LineWidth = 1.5f; }
            var marker = plt.Add.Marker(p.X, p.Y, MarkerShape.FilledCircle, 12, color);
            marker.LegendText = p.Label;
            var text = plt.Add.Text(p.Label, p.X, p.Y);
            text.LabelFontSize = 12;
            text.OffsetX = 8;
            text.OffsetY = -8;
        }
        plt.Axes.SetLimits(-5, 120, -5, 110);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        plt.Title(title);
        plt.ShowLegend(legend);
        plt.SavePng(path, 900, 700);
    }

    /// <summary>One method's place on the over-refusal vs under-sensitivity chart, in percent (lower is better on both axes).</summary>
    /// <param name="Method">The method.</param>
    /// <param name="OverRefusal">Mean over the benchmarks that feed the axis of their pooled over-refusal.</param>
    /// <param name="UnderSensitivity">Likewise for missed risks.</param>
    /// <param name="OverRefusalCi">The 95 % interval when one benchmark makes the axis, else null.</param>
    /// <param name="UnderSensitivityCi">Likewise.</param>
    public sealed record SensitivityPoint(string Method, double OverRefusal, double UnderSensitivity, (double Low, double High)? OverRefusalCi, (double Low, double High)? UnderSensitivityCi);

    /// <summary>
    /// The rows of a cell that feed one axis of the sensitivity chart (<see cref="IBenchmark.Sensitivity"/>), of the
    /// plan's metric set when it names one, else of the metric set of the first feeding row; pooled into one row
    /// (counts added, units joined) so that its interval is the benchmark's own (Wilson for hits, bootstrap for scores).
    /// </summary>
    private static (MetricRow Row, bool Complement)? Feed(StudyCellResult r, string axis)
    {
        if (r.Metrics is null) return null;
        var d = EvalBenchmarks.Get(r.Cell.Benchmark.Benchmark);
        var rows = r.Metrics.Rows.Where(x => r.Cell.Benchmark.MetricSet is null || x.MetricSet == r.Cell.Benchmark.MetricSet)
            .Select(x => (Row: x, Feed: d.Sensitivity(x))).Where(x => x.Feed?.Axis == axis).ToList();
        if (rows.Count == 0) return null;
        var set = rows[0].Row.MetricSet;
        rows = rows.Where(x => x.Row.MetricSet == set).ToList();
        if (rows.Select(x => x.Feed!.Complement).Distinct().Count() > 1)
            throw new InvalidOperationException($"{r.Cell.Benchmark.Benchmark}: rows of the {axis} axis mix rates and complements ({string.Join(", ", rows.Select(x => x.Row.Path))})");
        if (rows.Count == 1) return (rows[0].Row, rows[0].Feed!.Complement);
        var rate = rows.All(x => x.Row.Rate.Sum is null)
            ? new Rate(rows.Sum(x => x.Row.Rate.Hits), rows.Sum(x => x.Row.Rate.N))
            : Rate.Mean(rows.Sum(x => x.Row.Rate.Sum ?? x.Row.Rate.Hits), rows.Sum(x => x.Row.Rate.N));
        var units = rows.All(x => x.Row.Units is not null) ? rows.SelectMany(x => x.Row.Units!).ToList() : null;
        return (new MetricRow("", rows[0].Row.Metric, rate, set, rows[0].Row.Scorer, units), rows[0].Feed!.Complement);
    }

    /// <summary>
    /// The points of a model's over-refusal vs under-sensitivity chart: per method, each axis averages (over the
    /// benchmarks whose descriptors feed it) the pooled rate, or its complement where the descriptor says so. Empty,
    /// with <paramref name="skipped"/> saying why, when an axis has no benchmark or no method has both axes.
    /// </summary>
    public static List<SensitivityPoint> Sensitivity(StudyPlan plan, IReadOnlyList<StudyCellResult> results, out string overLabel, out string underLabel, out string? skipped)
    {
        string Label(string axis) => string.Join(" + ", plan.Benchmarks.Select(b => results.Where(r => r.Cell.Benchmark == b).Select(r => Feed(r, axis)).FirstOrDefault(f => f is not null) is { } f
            ? f.Complement ? $"{b.Name} 100 − {f.Row.Metric}" : $"{b.Name} {f.Row.Metric}" : null).Where(s => s is not null));
        overLabel = Label(SensitivityFeed.OverRefusal);
        underLabel = Label(SensitivityFeed.UnderSensitivity);
        var points = new List<SensitivityPoint>();
        foreach (var m in plan.Methods)
        {
            (double Mean, (double, double)? Ci)? Axis(string axis)
            {
                var feeds = results.Where(r => r.Cell.Method == m).Select(r => Feed(r, axis)).Where(f => f is not null && f.Value.Row.Rate.Value is not null).Select(f => f!.Value).ToList();
                if (feeds.Count == 0) return null;
                double Pct(double v, bool complement) => complement ? 100 - v * 100 : v * 100;
                var mean = feeds.Average(f => Pct(f.Row.Rate.Value!.Value, f.Complement));
                (double, double)? ci = null;
                if (feeds.Count == 1 && feeds[0].Row.Ci is { } c)
                {
                    double a = Pct(c.Low, feeds[0].Complement), b = Pct(c.High, feeds[0].Complement);
                    ci = (Math.Min(a, b), Math.Max(a, b));
                }
                return (mean, ci);
            }
            if (Axis(SensitivityFeed.OverRefusal) is { } o && Axis(SensitivityFeed.UnderSensitivity) is { } u) points.Add(new SensitivityPoint(m.Name, o.Mean, u.Mean, o.Ci, u.Ci));
        }
        skipped = points.Count > 0 ? null
            : overLabel.Length == 0 && underLabel.Length == 0 ? "no benchmark of the study has a metric of over-refusal or of missed risks (a descriptor declares them, e.g. a refusal rate of harmless requests, or the accuracy on the safe and on the unsafe side of paired queries)"
            : overLabel.Length == 0 ? $"no benchmark of the study has a metric of over-refusal (refusing harmless requests); missed risks come from {underLabel}"
            : underLabel.Length == 0 ? $"no benchmark of the study has a metric of missed risks (answering risky requests as if harmless); over-refusal comes from {overLabel}"
            : "no method has a value on both axes yet (run the cells)";
        return points;
    }

    /// <summary>Writes the over-refusal vs under-sensitivity chart of one model; false (nothing written) when it has no points.</summary>
    public static bool SensitivityChart(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string model, string path)
    {
        var points = Sensitivity(plan, results, out var oLabel, out var uLabel, out _);
        if (points.Count == 0) return false;
        Scatter(points.Select(p => new ScatterPoint(p.Method, p.OverRefusal, p.UnderSensitivity, p.OverRefusalCi, p.UnderSensitivityCi)).ToList(),
            $"over-refusal, % ({oLabel})", $"missed risks, % ({uLabel})", $"{plan.Name} — {model}: over-refusal vs under-sensitivity (lower is better)", Alignment.UpperRight, path);
        return true;
    }

    /// <summary>One cell's cost: mean seconds and extra calls per sample with their bootstrap intervals.</summary>
    /// <param name="Method">The method.</param>
    /// <param name="Benchmark">The plan's benchmark name.</param>
    /// <param name="Samples">Samples the means are over.</param>
    /// <param name="SecondsPerSample">Mean seconds per sample.</param>
    /// <param name="SecondsCi">Its bootstrap interval.</param>
    /// <param name="CallsPerSample">Mean extra calls per sample.</param>
    /// <param name="CallsCi">Its bootstrap interval.</param>
    public sealed record CostPoint(string Method, string Benchmark, int Samples, double SecondsPerSample, Interval? SecondsCi, double CallsPerSample, Interval? CallsCi);

    /// <summary>The cost of every cell of a model that has samples, methods in plan order, benchmarks within them in plan order.</summary>
    public static List<CostPoint> Cost(StudyPlan plan, IReadOnlyList<StudyCellResult> results) =>
        plan.Methods.SelectMany(m => plan.Benchmarks.Select(b => results.FirstOrDefault(r => r.Cell.Method == m && r.Cell.Benchmark == b))
            .Where(r => r?.Metrics is { Cost.Samples: > 0 })
            .Select(r => new CostPoint(m.Name, r!.Cell.Benchmark.Name, r.Metrics!.Cost.Samples, r.Metrics.Cost.SecondsPerSample, r.Metrics.Cost.SecondsCi, r.Metrics.Cost.CallsPerSample, r.Metrics.Cost.CallsCi)))
            .ToList();

    /// <summary>
    /// Writes the cost chart of one model: two panels (seconds per sample, extra calls per sample), a group of bars per
    /// method with one bar per benchmark and its 95 % bootstrap interval as a whisker; false (nothing written) without cells.
    /// </summary>
    public static bool CostChart(StudyPlan plan, IReadOnlyList<StudyCellResult> results, string model, string path)
    {
        var points = Cost(plan, results);
        if (points.Count == 0) return false;
        var methods = points.Select(p => p.Method).Distinct().ToList();
        var benchmarks = plan.Benchmarks.Select(b => b.Name).Where(b => points.Any(p => p.Benchmark == b)).ToList();
        var mp = new Multiplot();
        mp.AddPlots(2);
        void Panel(Plot plt, string title, Func<CostPoint, double> value, Func<CostPoint, Interval?> ci)
        {
            double X(CostPoint p) => methods.IndexOf(p.Method) * (benchmarks.Count + 1) + benchmarks.IndexOf(p.Benchmark);
            plt.Add.Bars(points.Select(p => new Bar { Position = X(p), Value = value(p), FillColor = Palette.GetColor(benchmarks.IndexOf(p.Benchmark)), Size = 0.8 }).ToList());
            // whiskers after the bars, so that they are drawn over them
            foreach (var p in points)
                if (ci(p) is { } c) { var l = plt.Add.Line(X(p), c.Low, X(p), c.High); l.Color = Colors.Black; l.LineWidth = 1.5f; }
            plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                methods.Select((_, i) => i * (benchmarks.Count + 1) + (benchmarks.Count - 1) / 2.0).ToArray(), methods.ToArray());
            plt.Axes.Margins(bottom: 0);
            plt.YLabel(title);
            foreach (var (b, i) in benchmarks.Select((b, i) => (b, i)))
                plt.Legend.ManualItems.Add(new LegendItem { LabelText = b, FillColor = Palette.GetColor(i) });
            plt.ShowLegend(Alignment.UpperLeft);
        }
        var top = mp.GetPlot(0);
        Panel(top, "seconds per sample", p => p.SecondsPerSample, p => p.SecondsCi);
        top.Title($"{plan.Name} — {model}: cost per sample (whiskers: 95 % bootstrap intervals)");
        Panel(mp.GetPlot(1), "extra calls per sample", p => p.CallsPerSample, p => p.CallsCi);
        mp.SavePng(path, 900, 800);
        return true;
    }
}
