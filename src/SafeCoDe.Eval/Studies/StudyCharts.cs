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
        var plt = new Plot();
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var color = Palette.GetColor(i);
            if (p.HelpfulnessCi is { } hc) { var l = plt.Add.Line(hc.Low, p.Safety, hc.High, p.Safety); l.Color = color; l.LineWidth = 1.5f; }
            if (p.SafetyCi is { } sc) { var l = plt.Add.Line(p.Helpfulness, sc.Low, p.Helpfulness, sc.High); l.Color = color; l.LineWidth = 1.5f; }
            var marker = plt.Add.Marker(p.Helpfulness, p.Safety, MarkerShape.FilledCircle, 12, color);
            marker.LegendText = p.Method;
            var text = plt.Add.Text(p.Method, p.Helpfulness, p.Safety);
            text.LabelFontSize = 12;
            text.OffsetX = 8;
            text.OffsetY = -8;
        }
        plt.Axes.SetLimits(-5, 120, -5, 110);
        plt.XLabel($"helpfulness, % ({hLabel})");
        plt.YLabel($"safety, % ({sLabel})");
        plt.Title($"{plan.Name} — {model}: safety vs helpfulness");
        plt.ShowLegend(Alignment.LowerLeft);
        plt.SavePng(path, 900, 700);
        return true;
    }
}
