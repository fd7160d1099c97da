using NUnit.Framework;
using SafeCoDe.Eval.SafeScenes;
using SafeCoDe.Torch.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SafeCoDe.Eval.Tests;

/// <summary>The trainer's scalar-safe AdamW updates parameters exactly as TorchSharp's AdamW (the trainer's old optimizer).</summary>
public class ScopedScalarAdamWTests
{
    [OneTimeSetUp]
    public void Init() => NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });

    private static Parameter[] Params(long seed)
    {
        using var gen = new torch.Generator((ulong)seed);
        return [new Parameter(randn([5, 7], generator: gen)), new Parameter(randn([7], generator: gen)), new Parameter(randn([3, 2, 4], generator: gen))];
    }

    /// <summary>A loss whose gradients are fixed random tensors of step <paramref name="step"/> (same for both copies).</summary>
    private static void Backward(Parameter[] ps, int step)
    {
        using var scope = NewDisposeScope();
        using var gen = new torch.Generator((ulong)(100 + step));
        var loss = ps.Select(p => (p * randn(p.shape, generator: gen)).sum()).Aggregate((a, b) => a.add(b));
        loss.backward();
    }

    [Test]
    public void Updates_AreBitwiseThoseOfTorchSharpAdamW()
    {
        var a = Params(7); var b = Params(7);
        using var reference = torch.optim.AdamW(a, lr: 2e-3, weight_decay: 0.01);
        using var ours = new ScopedScalarAdamW(b, lr: 2e-3, weightDecay: 0.01);
        for (int step = 0; step < 6; step++)
        {
            double lr = 2e-3 * (step + 1) / 3; // changes every step, as the trainer's schedule does
            foreach (var g in reference.ParamGroups) g.LearningRate = lr;
            ours.LearningRate = lr;
            reference.zero_grad(); ours.ZeroGrad();
            Backward(a, step); Backward(b, step);
            reference.step(); ours.Step();
            for (int i = 0; i < a.Length; i++)
                Assert.That(a[i].eq(b[i]).all().item<bool>(), Is.True, $"parameter {i} after step {step}");
        }
        Assert.That(a[0].eq(Params(7)[0]).all().item<bool>(), Is.False, "the parameters moved");
        foreach (var p in a.Concat(b)) p.Dispose();
    }
}
