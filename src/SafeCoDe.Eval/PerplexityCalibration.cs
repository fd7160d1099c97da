using System.Globalization;
using System.Text.Json.Nodes;
using SafeCoDe.Eval.Benchmarks;
using SafeCoDe.Torch;

namespace SafeCoDe.Eval;

/// <summary>What a perplexity calibration measured.</summary>
/// <param name="Threshold">The highest perplexity over the prompt set: the threshold the filter's authors define.</param>
/// <param name="Prompts">Questions scored (those of fewer than two tokens have no perplexity and are not counted).</param>
/// <param name="Median">Median perplexity.</param>
/// <param name="P95">95th percentile (nearest rank).</param>
/// <param name="HighestId">The sample whose question set the threshold.</param>
public sealed record PerplexityCalibrationResult(double Threshold, int Prompts, double Median, double P95, string HighestId)
{
    /// <summary>Records of the benchmark copy that could not be read (left out of the calibration, and said so).</summary>
    public int Problems { get; init; }

    /// <summary>The calibration as a model folder stores it (<see cref="SafeCoDeEngine.PerplexityCalibrationFile"/>).</summary>
    public JsonObject ToJson(string model, string benchmark, string data) => new()
    {
        ["threshold"] = Threshold, ["prompts"] = Prompts, ["median"] = Median, ["p95"] = P95, ["highest_id"] = HighestId, ["problems"] = Problems,
        ["model"] = model, ["benchmark"] = benchmark, ["data"] = Path.GetFullPath(data), ["created"] = DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture),
        ["definition"] = "the highest perplexity of the raw questions (no chat template, no image) of a prompt set of plain (non-adversarial) requests, as Jain et al. and SafeDecoding set their filter's threshold",
    };
}

/// <summary>
/// Calibrates the perplexity filter's threshold for a model: the perplexity of every question of a benchmark copy (raw,
/// no template, no image) under the model's language model, and the highest of them — how the filter's authors set
/// GPT-2's 175.57 (over 50 AdvBench goals).
/// </summary>
public static class PerplexityCalibration
{
    /// <summary>Scores every question of the benchmark at <paramref name="data"/>; <paramref name="progress"/> gets (done, total).</summary>
    public static PerplexityCalibrationResult Run(SafeCoDeEngine engine, string benchmark, string data, ReaderSelection selection, Action<int, int>? progress = null,
        CancellationToken cancel = default)
    {
        var items = BenchmarkReaders.Get(benchmark).Read(data, selection).ToList();
        var problems = items.Where(i => i.Problem is not null).Select(i => i.Problem!).ToList();
        var questions = items.Where(i => i.Sample is not null)
            .SelectMany(i => i.Sample!.Prompts.Select(p => (i.Sample!.Id, p.Question)))
            .DistinctBy(q => q.Question).ToList();
        if (questions.Count == 0)
            throw new InvalidDataException($"{data}: no {benchmark} question to score" +
                (problems.Count == 0 ? "" : $" ({problems.Count} record(s) not readable; the first, '{problems[0].Id}': {problems[0].Reason})"));
        var scored = new List<(string Id, double Ppl)>();
        for (int i = 0; i < questions.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            double ppl = engine.Perplexity(questions[i].Question, cancel);
            if (double.IsFinite(ppl)) scored.Add((questions[i].Id, ppl));
            progress?.Invoke(i + 1, questions.Count);
        }
        if (scored.Count == 0) throw new InvalidDataException($"{data}: every question is shorter than two tokens: no perplexity to calibrate on");
        var sorted = scored.Select(s => s.Ppl).Order().ToList();
        var top = scored.MaxBy(s => s.Ppl);
        double At(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
        return new PerplexityCalibrationResult(top.Ppl, scored.Count, At(0.5), At(0.95), top.Id) { Problems = problems.Count };
    }
}
