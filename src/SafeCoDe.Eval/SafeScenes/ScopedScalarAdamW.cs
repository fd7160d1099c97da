using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SafeCoDe.Eval.SafeScenes;

/// <summary>
/// AdamW with decoupled weight decay, the same update as TorchSharp 0.107's <c>torch.optim.AdamW</c> op for op (so
/// training is bit-for-bit what it was), but every number handed to libtorch is a <see cref="Scalar"/> kept alive
/// for the call. TorchSharp's optimizer passes its hyper-parameters as implicitly converted scalars that only the
/// finalizer frees; a garbage collection on another thread could free one while libtorch still reads it and abort
/// training (see <c>Runtime/Scalars.cs</c> in SafeCoDe.Torch).
/// </summary>
internal sealed class ScopedScalarAdamW : IDisposable
{
    private sealed class Slot(Parameter p)
    {
        public readonly Parameter Param = p;
        public readonly Tensor ExpAvg = zeros_like(p);
        public readonly Tensor ExpAvgSq = zeros_like(p);
        public long Step;
    }

    private readonly List<Slot> _slots;
    private readonly double _beta1, _beta2, _eps, _weightDecay;

    /// <summary>The learning rate of the next <see cref="Step"/>.</summary>
    public double LearningRate { get; set; }

    /// <summary>The optimizer over <paramref name="parameters"/> (defaults: those of TorchSharp 0.107's <c>torch.optim.AdamW</c>).</summary>
    public ScopedScalarAdamW(IEnumerable<Parameter> parameters, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        using var noGrad = no_grad();
        _slots = parameters.Select(p => new Slot(p)).ToList();
        LearningRate = lr;
        (_beta1, _beta2, _eps, _weightDecay) = (beta1, beta2, eps, weightDecay);
    }

    /// <summary>Clears the gradients of every parameter.</summary>
    public void ZeroGrad()
    {
        foreach (var s in _slots) s.Param.grad?.zero_();
    }

    /// <summary>One update of every parameter that has a gradient.</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        double lr = LearningRate;
        using var decay = (1 - lr * _weightDecay).ToScalar();
        using var beta1 = _beta1.ToScalar();
        using var oneMinusBeta1 = (1 - _beta1).ToScalar();
        using var beta2 = _beta2.ToScalar();
        using var oneMinusBeta2 = (1 - _beta2).ToScalar();
        using var eps = _eps.ToScalar();
        using var one = 1.ToScalar();
        foreach (var s in _slots)
        {
            using var scope = NewDisposeScope();
            var grad = s.Param.grad;
            if (grad is null) continue;
            s.Step += 1;
            s.Param.mul_(decay);
            double correction1 = 1 - Math.Pow(_beta1, s.Step);
            double correction2 = 1 - Math.Pow(_beta2, s.Step);
            s.ExpAvg.mul_(beta1).add_(grad, alpha: oneMinusBeta1);
            s.ExpAvgSq.mul_(beta2).addcmul_(grad, grad, value: oneMinusBeta2);
            using var sqrtCorrection2 = Math.Sqrt(correction2).ToScalar();
            var denom = s.ExpAvgSq.sqrt().div(sqrtCorrection2).add_(eps, one);
            using var stepSize = (-(lr / correction1)).ToScalar();
            s.Param.addcdiv_(s.ExpAvg, denom, value: stepSize);
        }
    }

    /// <summary>Frees the moment estimates.</summary>
    public void Dispose()
    {
        foreach (var s in _slots) { s.ExpAvg.Dispose(); s.ExpAvgSq.Dispose(); }
    }
}
