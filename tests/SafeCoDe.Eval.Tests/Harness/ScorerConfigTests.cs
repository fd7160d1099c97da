using NUnit.Framework;
using SafeCoDe.Eval.Scoring;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Eval.Tests.Harness;

/// <summary>What the openai scorer says when it has no endpoint configured.</summary>
[NonParallelizable]
public class ScorerConfigTests
{
    private static readonly string[] Variables =
        ["SAFECODE_EVAL_API_KEY", "SAFECODE_EVAL_BASE_URL", "SAFECODE_JUDGE_API_KEY", "SAFECODE_JUDGE_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"];

    /// <summary>The missing-key error names the scorer's own variables (SAFECODE_EVAL_*) first, then the fallbacks it also reads.</summary>
    [Test]
    public void OpenAiScorerWithoutKeyOrUrl_NamesTheEvalVariables()
    {
        var saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
        try
        {
            foreach (var v in Variables) Environment.SetEnvironmentVariable(v, null);
            var ex = Assert.Throws<JudgeException>(() => Scorers.Create("openai:gpt-4o", new ScorerSettings { Benchmark = "mssbench" }))!;
            Assert.That(ex.Message, Does.StartWith("the openai scorer needs an API key (SAFECODE_EVAL_API_KEY"));
            Assert.That(ex.Message, Does.Contain("SAFECODE_EVAL_BASE_URL"));
        }
        finally
        {
            foreach (var (k, v) in saved) Environment.SetEnvironmentVariable(k, v);
        }
    }
}
