using SafeCoDe.Torch.Runtime;
#pragma warning disable CS1591 // public fields mirror the checkpoint's tensor names; the class summaries document them
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SafeCoDe.Torch.Models.Common;

/// <summary>Where and in which dtype a model's parameters live; parameters are allocated uninitialised there and filled by the loader.</summary>
public sealed record ParamFactory(Device Device, ScalarType DType)
{
    public Parameter Make(params long[] shape) => new(empty(shape, DType, Device), requires_grad: false);
}

/// <summary>Base for this engine's modules: parameters are created empty on the target device (no CPU init, no fp32 copy).</summary>
internal abstract class Block : nn.Module
{
    protected Block(string name) : base(name) { }
}

/// <summary>y = x·Wᵀ + b, named like torch.nn.Linear (weight [out, in], bias [out]).</summary>
internal sealed class Linear : Block
{
#pragma warning disable IDE1006 // names follow the checkpoint
    public Parameter weight;
    public readonly Parameter? bias;
#pragma warning restore IDE1006

    public Linear(ParamFactory f, long inFeatures, long outFeatures, bool hasBias) : base(nameof(Linear))
    {
        weight = f.Make(outFeatures, inFeatures);
        if (hasBias) bias = f.Make(outFeatures);
        RegisterComponents();
    }

    /// <summary>A layer whose weight (and bias) are views of a larger, fused tensor (see <see cref="FusedLinear"/>).</summary>
    public Linear(Tensor weightView, Tensor? biasView) : base(nameof(Linear))
    {
        weight = new Parameter(weightView, requires_grad: false);
        if (biasView is not null) bias = new Parameter(biasView, requires_grad: false);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => F.linear(x, weight, bias);

    /// <summary>
    /// <see cref="Forward"/> over rows [R, in] (the static decode step), with the values <see cref="Forward"/> gives
    /// for [R, 1, in]: ATen computes a biased 3-D linear as a GEMM followed by adding the bias, but a 2-D one as one
    /// fused addmm, which rounds once instead of twice (different bfloat16 results), so the bias is added separately.
    /// </summary>
    public Tensor ForwardRows(Tensor x) => LinearRows(x, weight, bias);

    /// <summary>See <see cref="ForwardRows"/>.</summary>
    internal static Tensor LinearRows(Tensor x, Tensor weight, Tensor? bias)
    {
        var y = F.linear(x, weight);
        return bias is null ? y : y.add_(bias);
    }

    /// <summary>
    /// Uses <paramref name="shared"/> as this layer's weight (tied embeddings: the lm_head reads the embedding table)
    /// instead of holding a second copy; the layer's own, never-loaded weight is freed.
    /// </summary>
    public void ShareWeight(Parameter shared)
    {
        if (!shared.shape.SequenceEqual(weight.shape))
            throw new ArgumentException($"cannot tie a [{string.Join(",", shared.shape)}] tensor to a [{string.Join(",", weight.shape)}] weight");
        var own = weight;
        _internal_params.Remove("weight");
        register_parameter("weight", shared);
        weight = shared;
        own.Dispose();
    }
}

/// <summary>
/// Several projections of the same input stored as one [Σ out, in] weight (and bias): each part is a
/// <see cref="Linear"/> whose parameters are row views of the fused tensor, so checkpoint names, loading and
/// inspection see the separate projections while the fast decode step runs one GEMM for all of them.
/// </summary>
internal sealed class FusedLinear : IDisposable
{
    private readonly long[] _outs;

    /// <summary>[Σ out, in].</summary>
    public Tensor Weight { get; }
    /// <summary>[Σ out], or null without biases.</summary>
    public Tensor? Bias { get; }
    /// <summary>The parts, in order, as layers over views of <see cref="Weight"/> / <see cref="Bias"/>.</summary>
    public Linear[] Parts { get; }

    public FusedLinear(ParamFactory f, long inFeatures, long[] outs, bool hasBias)
    {
        _outs = outs;
        long total = outs.Sum();
        Weight = empty([total, inFeatures], f.DType, f.Device).DetachFromDisposeScope();
        Bias = hasBias ? empty([total], f.DType, f.Device).DetachFromDisposeScope() : null;
        _weightT = Weight.t().DetachFromDisposeScope(); // a view: the loader fills Weight in place
        Parts = new Linear[outs.Length];
        long offset = 0;
        for (int i = 0; i < outs.Length; i++)
        {
            Parts[i] = new Linear(Weight.narrow(0, offset, outs[i]), Bias?.narrow(0, offset, outs[i]));
            offset += outs[i];
        }
    }

    /// <summary>All parts at once: [.., Σ out].</summary>
    public Tensor Forward(Tensor x) => F.linear(x, Weight, Bias);

    /// <summary>All parts at once over rows [R, in] (see <see cref="Linear.ForwardRows"/>).</summary>
    public Tensor ForwardRows(Tensor x) => Linear.LinearRows(x, Weight, Bias);

    /// <summary>
    /// <see cref="ForwardRows"/> written into <paramref name="output"/> [R, Σ out] (returned): the same GEMM
    /// (<c>linear</c> without a bias is <c>mm</c>, i.e. <c>addmm</c> with β = 0), then the bias added.
    /// </summary>
    public Tensor ForwardRowsInto(Tensor x, Tensor output)
    {
        output.addmm_(x, _weightT, 0, 1);
        return Bias is null ? output : output.add_(Bias);
    }

    private readonly Tensor _weightT;

    public void Dispose() { _weightT.Dispose(); Weight.Dispose(); Bias?.Dispose(); }
}

/// <summary>Llama/Qwen RMSNorm: computed in float32, weight applied after casting back (as HF does).</summary>
internal sealed partial class RmsNorm : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
#pragma warning restore IDE1006
    private readonly Scalar _eps; // held for the module's lifetime (see Runtime/Scalars.cs)

    public RmsNorm(ParamFactory f, long dim, double eps) : base(nameof(RmsNorm))
    {
        weight = f.Make(dim);
        _eps = eps.ToScalar();
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var dtype = x.dtype;
        var h = x.to(ScalarType.Float32);
        var v = h.pow(Scalars.Two).mean([-1L], keepdim: true);
        h = h * rsqrt(v.Plus(_eps));
        return (weight * h.to(dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>torch.nn.LayerNorm over the last dimension, with weight and bias.</summary>
internal sealed class LayerNorm : Block
{
#pragma warning disable IDE1006
    public readonly Parameter weight;
    public readonly Parameter bias;
#pragma warning restore IDE1006
    private readonly double _eps;
    private readonly long _dim;

    public LayerNorm(ParamFactory f, long dim, double eps) : base(nameof(LayerNorm))
    {
        weight = f.Make(dim);
        bias = f.Make(dim);
        _eps = eps;
        _dim = dim;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => F.layer_norm(x, [_dim], weight, bias, _eps);
}

/// <summary>Activation functions by their HF config names.</summary>
internal static class Activations
{
    public static Func<Tensor, Tensor> Get(string name) => name switch
    {
        "silu" or "swish" => x => F.silu(x),
        "gelu" => x => F.gelu(x),
        "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" => GeluTanh,
        "quick_gelu" => x => { using var s = sigmoid(x.mul(Scalars.QuickGelu)); return x * s; },
        "relu" => x => F.relu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not supported"),
    };

    /// <summary>GELU with the tanh approximation (TorchSharp 0.107 exposes no approximate argument).</summary>
    public static Tensor GeluTanh(Tensor x)
    {
        using var scope = NewDisposeScope();
        var inner = x.Plus(x.pow(Scalars.Three).mul(Scalars.GeluCubic)).mul(Scalars.SqrtTwoOverPi);
        return x.mul(Scalars.HalfDouble).mul(inner.tanh().Plus(Scalars.OneDouble)).MoveToOuterDisposeScope();
    }
}
