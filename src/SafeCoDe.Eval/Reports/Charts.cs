using ScottPlot;
using SafeCoDe.Eval.Metrics;

namespace SafeCoDe.Eval.Reports;

/// <summary>PNG charts of a report (ScottPlot).</summary>
public static class Charts
{
    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>
    /// Grouped bars: one group per metric, one bar per run (mode/preset), values in percent. Returns false (and
    /// writes nothing) when there is nothing to plot.
    /// </summary>
    public static bool MetricsChart(IReadOnlyList<RunMetrics> runs, string path, string title)
    {
        var metrics = runs.SelectMany(r => r.Rows).Select(r => r.Path).Distinct().Take(24).ToList();
        if (metrics.Count == 0) return false;
        var plt = new Plot();
        var bars = new List<Bar>();
        double width = 0.8 / runs.Count;
        // horizontal bars: metric names sit on the left axis, which sizes itself to fit them
        int n = metrics.Count;
        for (int ri = 0; ri < runs.Count; ri++)
        {
            var color = Palette.GetColor(ri);
            for (int mi = 0; mi < n; mi++)
            {
                var row = runs[ri].Rows.FirstOrDefault(r => r.Path == metrics[mi]);
                if (row?.Rate.Value is not { } v) continue;
                bars.Add(new Bar
                {
                    Position = (n - 1 - mi) + ((runs.Count - 1) / 2.0 - ri) * width, Value = v * 100, FillColor = color, Size = width * 0.95,
                    Label = $"{v * 100:F1}% ({row.Rate.Counted}/{row.Rate.N})",
                });
            }
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = Label(runs[ri]), FillColor = color });
        }
        var plot = plt.Add.Bars(bars);
        plot.Horizontal = true;
        plot.ValueLabelStyle.FontSize = 11;
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, n).Select(i => (double)(n - 1 - i)).ToArray(), metrics.ToArray());
        plt.Axes.SetLimitsX(0, 118);
        plt.XLabel("% (hits/n)");
        plt.Title(title);
        plt.ShowLegend(Alignment.LowerRight);
        plt.SavePng(path, 900, Math.Max(320, 60 + n * (28 + 14 * runs.Count)));
        return true;
    }

    /// <summary>Latency per phase (mean, median, p95 in ms) for each run, and tokens/s in the title.</summary>
    public static bool LatencyChart(IReadOnlyList<RunMetrics> runs, string path)
    {
        var phases = new[] { "judge", "prefill", "guided", "decode" };
        if (runs.All(r => r.Latency.Phases.All(p => p.N == 0))) return false;
        var plt = new Plot();
        var bars = new List<Bar>();
        var stats = new[] { "mean", "median", "p95" };
        int series = runs.Count * stats.Length;
        double width = 0.8 / series;
        int si = 0;
        foreach (var run in runs)
            for (int k = 0; k < stats.Length; k++, si++)
            {
                var color = Palette.GetColor(si);
                for (int pi = 0; pi < phases.Length; pi++)
                {
                    var p = run.Latency.Phases.First(x => x.Phase == phases[pi]);
                    double v = k switch { 0 => p.Mean, 1 => p.Median, _ => p.P95 };
                    bars.Add(new Bar { Position = pi + (si - (series - 1) / 2.0) * width, Value = v, FillColor = color, Size = width * 0.95 });
                }
                plt.Legend.ManualItems.Add(new LegendItem { LabelText = $"{Short(run, runs)} {stats[k]}", FillColor = color });
            }
        plt.Add.Bars(bars);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([0, 1, 2, 3], phases);
        plt.Axes.Margins(bottom: 0);
        plt.YLabel("ms per answer");
        plt.Title("Latency per answer and phase (ms)");
        plt.XLabel(string.Join("   ", runs.Select(r => $"{Short(r, runs)}: {r.Latency.OverallTokensPerSecond:F1} tokens/s")));
        plt.ShowLegend(Edge.Right);
        plt.SavePng(path, 1000, 520);
        return true;
    }

    /// <summary>The run's label without the benchmark when all runs share one.</summary>
    private static string Short(RunMetrics r, IReadOnlyList<RunMetrics> all) =>
        all.Select(x => x.Benchmark).Distinct().Count() == 1 ? $"{r.Mode}{(r.Preset is null ? "" : "/" + r.Preset)}" : Label(r);

    /// <summary>"benchmark mode/preset".</summary>
    public static string Label(RunMetrics r) => $"{r.Benchmark} {r.Mode}{(r.Preset is null ? "" : "/" + r.Preset)}";
}
