using NUnit.Framework;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Models.Common;
using static TorchSharp.torch;
using static SafeCoDe.Torch.Tests.TestMath;

namespace SafeCoDe.Torch.Tests.Decoding;

/// <summary>
/// Drives requests that join, drop a row and leave one batch, and checks every batched step against the same
/// request stepped alone: logits within 1e-5 relative, greedy tokens equal wherever the top-2 margin exceeds 1e-4.
/// Shared by the batched-states conformance tests and IDEFICS' own batching test.
/// </summary>
internal static class JoinLeaveDriver
{
    /// <summary>
    /// Runs <paramref name="steps"/> steps: request i is prefilled (capacity <paramref name="capacity"/>) at step
    /// <c>joinAt[i]</c> and leaves after step <c>leaveAfter[i]</c>; request 0 keeps only its first row after step
    /// <paramref name="dropRowAfter"/>. <paramref name="stepTogether"/> steps the live states as one batch.
    /// Returns how many steps ran more than one request together. Disposes the states; the caller owns the prompts.
    /// </summary>
    public static int Run(IBackbone model, BackboneInputs[] prompts, int[] joinAt, int[] leaveAfter, int dropRowAfter, int steps, int capacity,
        Func<List<DecodeState>, List<Tensor>, Tensor[]> stepTogether)
    {
        int n = prompts.Length, batchedSteps = 0;
        var together = new DecodeState?[n]; var alone = new DecodeState?[n]; var tokens = new Tensor?[n];
        using var scope = NewDisposeScope();
        try
        {
            for (int step = 0; step < steps; step++)
            {
                for (int i = 0; i < n; i++)
                {
                    if (step == joinAt[i])
                    {
                        Tensor l;
                        (together[i], l) = model.Prefill(prompts[i], capacity);
                        (alone[i], _) = model.Prefill(prompts[i], capacity);
                        tokens[i] = l.argmax(1);
                    }
                    if (step == leaveAfter[i] + 1) { together[i]!.Dispose(); alone[i]!.Dispose(); together[i] = alone[i] = null; }
                }
                if (step == dropRowAfter + 1) { together[0]!.KeepRows([0]); alone[0]!.KeepRows([0]); tokens[0] = tokens[0]!.narrow(0, 0, 1); }
                var live = Enumerable.Range(0, n).Where(i => together[i] is not null).ToArray();
                if (live.Length == 0) break;
                var batched = stepTogether(live.Select(i => together[i]!).ToList(), live.Select(i => tokens[i]!).ToList());
                if (live.Length > 1) batchedSteps++;
                for (int k = 0; k < live.Length; k++)
                {
                    int i = live[k];
                    var single = model.Step(alone[i]!, tokens[i]!);
                    Assert.That(RelErr(batched[k], single), Is.LessThanOrEqualTo(1e-5), $"step {step}, request {i}");
                    var top = single.topk(2, 1).values;
                    var decided = (top[.., 0] - top[.., 1]).gt(1e-4);
                    Assert.That(batched[k].argmax(1).eq(single.argmax(1)).logical_or(decided.logical_not()).all().item<bool>(), Is.True,
                        $"greedy token, step {step}, request {i}");
                    tokens[i] = single.argmax(1);
                }
            }
            return batchedSteps;
        }
        finally
        {
            foreach (var s in together.Concat(alone)) s?.Dispose();
        }
    }
}
