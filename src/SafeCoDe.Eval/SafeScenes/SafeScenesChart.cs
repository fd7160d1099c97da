namespace SafeCoDe.Eval.SafeScenes;

/// <summary>A bar chart of the answer scores per decoding mode (MSSBench-style total accuracy, unsafe-scene refusal, over-refusal).</summary>
public static class SafeScenesChart
{
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
