using SafeCoDe.Eval.Metrics;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>One decoding of an ablation measured through the evaluation harness: its label, its MSSBench run and (optionally) its MOSSBench run.</summary>
/// <param name="Label">The legend text ("vanilla", "SafeCoDe", "α = 0", …).</param>
/// <param name="Mss">Metrics of the <c>eval run --benchmark mssbench</c> run.</param>
/// <param name="Moss">Metrics of the <c>eval run --benchmark mossbench</c> run of the same decoding, if any.</param>
public sealed record AblationRun(string Label, RunMetrics Mss, RunMetrics? Moss = null);

/// <summary>A bar chart of the answer scores per decoding mode (MSSBench-style total accuracy, unsafe-scene refusal, over-refusal).</summary>
public static class SafeScenesChart
{
    /// <summary>The bars of an ablation chart: label and the run's metric path (MSSBench for the first three, MOSSBench for the last).</summary>
    public static readonly IReadOnlyList<(string Label, string Metric, bool Moss)> AblationMetrics =
    [
        ("MSSBench total acc", "total_acc", false), ("unsafe scenes refused", "unsafe_acc", false),
        ("safe scenes answered", "safe_acc", false), ("benign refused (MOSSBench)", "refusal_rate", true),
    ];

    /// <summary>The value (0–1) of one of <see cref="AblationMetrics"/> for a run, or null when the run does not have it.</summary>
    public static double? AblationValue(AblationRun run, int metric)
    {
        var (_, name, moss) = AblationMetrics[metric];
        var m = moss ? run.Moss : run.Mss;
        // the whole run's row, else the chat split's (a SafeScenes world has no embodied items)
        var row = m?.Rows.FirstOrDefault(r => r.Group.Length == 0 && r.Metric == name) ?? m?.Rows.FirstOrDefault(r => r.Group == "chat" && r.Metric == name);
        return row?.Rate.Value;
    }

    /// <summary>
    /// Writes a grouped bar chart of harness runs (one group per metric of <see cref="AblationMetrics"/>, one bar per
    /// decoding) as a PNG to <paramref name="path"/>.
    /// </summary>
    public static void SaveAblation(IReadOnlyList<AblationRun> runs, string path, string title)
    {
        var plot = new ScottPlot.Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var bars = new List<ScottPlot.Bar>();
        int groups = AblationMetrics.Count;
        for (int m = 0; m < runs.Count; m++)
            for (int k = 0; k < groups; k++)
                if (AblationValue(runs[m], k) is { } v)
                    bars.Add(new ScottPlot.Bar { Position = k * (runs.Count + 1) + m, Value = 100 * v, FillColor = palette.GetColor(m), Label = (100 * v).ToString("F0") });
        plot.Add.Bars(bars);
        for (int m = 0; m < runs.Count; m++)
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = runs[m].Label, FillColor = palette.GetColor(m) });
        plot.ShowLegend();
        plot.Legend.Alignment = ScottPlot.Alignment.UpperRight;
        var ticks = AblationMetrics.Select((t, k) => new ScottPlot.Tick(k * (runs.Count + 1) + (runs.Count - 1) / 2.0, t.Label)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.Left.Label.Text = "%";
        plot.Axes.SetLimitsY(0, 140);
        plot.Title(title);
        plot.SavePng(path, 900, 420);
    }

    /// <summary>Writes the chart of <paramref name="scores"/> as a PNG to <paramref name="path"/>.</summary>
    public static void Save(SafeScenesScores scores, string path)
    {
        var plot = new ScottPlot.Plot();
        var modes = scores.Answers.Keys.ToList();
        string[] metrics = ["total acc", "unsafe-scene refusal", "over-refusal"];
        var palette = new ScottPlot.Palettes.Category10();
        var bars = new List<ScottPlot.Bar>();
        for (int m = 0; m < modes.Count; m++)
        {
            var a = scores.Answers[modes[m]];
            double[] values = [100 * a.TotalAcc, 100 * a.UnsafeAcc.Value, 100 * a.OverRefusal.Value];
            for (int k = 0; k < values.Length; k++)
                bars.Add(new ScottPlot.Bar { Position = k * (modes.Count + 1) + m, Value = values[k], FillColor = palette.GetColor(m), Label = values[k].ToString("F0") });
        }
        plot.Add.Bars(bars);
        for (int m = 0; m < modes.Count; m++)
            plot.Legend.ManualItems.Add(new ScottPlot.LegendItem { LabelText = modes[m], FillColor = palette.GetColor(m) });
        plot.ShowLegend();
        plot.Legend.Alignment = ScottPlot.Alignment.UpperRight;
        var ticks = metrics.Select((t, k) => new ScottPlot.Tick(k * (modes.Count + 1) + (modes.Count - 1) / 2.0, t)).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.Left.Label.Text = "%";
        plot.Axes.SetLimitsY(0, 140);
        plot.Title($"SafeScenes: captions {100 * scores.CaptionExact.Value:F0}% exact, verdicts {100 * scores.Verdict.Value:F0}% correct");
        plot.SavePng(path, 720, 400);
    }
}
