using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// Scalars that stay alive for as long as libtorch reads them.
/// </summary>
/// <remarks>
/// Why this exists: in TorchSharp 0.107 a C# number given where a <see cref="Scalar"/> is expected (<c>x * 1.702</c>,
/// <c>v + eps</c>, <c>masked_fill(m, -inf)</c>, <c>fill_(0)</c>, <c>pow(2)</c>, ...) becomes a fresh <see cref="Scalar"/>
/// object that nobody disposes: only its finalizer frees the native value. The operator then passes the native
/// handle to libtorch and never touches the managed object again, so from the runtime's point of view the
/// <see cref="Scalar"/> is garbage as soon as its handle has been read. A collection started by any other thread in
/// that window runs the finalizer, which frees the native value while libtorch is still reading it; the process
/// then dies inside native code ("Unknown scalar type", "Expected false to be true", or worse, a silent wrong value).
/// Even operations without a visible number are affected: <c>a + b</c> and <c>a.add(b)</c> on two tensors build an
/// implicit alpha of 1 the same way, and so does <c>t.add(s)</c> with a <see cref="Scalar"/>.
/// <para>
/// The habit that avoids it: hot paths never hand TorchSharp a bare number. Constants come from the static fields
/// here (rooted for the process lifetime, never finalized); values fixed when an object is built (eps, scales,
/// temperatures) become a <see cref="Scalar"/> field of that object; values that change per call are made with
/// <c>using var s = v.ToScalar();</c> so the local stays reachable (its disposal runs after the call) until libtorch
/// is done with it. Each field keeps the C# type the implicit conversion had (int, long, float, double, bool), so
/// results are bit-for-bit what they were.
/// </para>
/// </remarks>
internal static class Scalars
{
    /// <summary>0 as an int scalar.</summary>
    public static readonly Scalar Zero = 0.ToScalar();
    /// <summary>1 as an int scalar (also the alpha TorchSharp uses for a plain tensor add).</summary>
    public static readonly Scalar One = 1.ToScalar();
    /// <summary>2 as an int scalar.</summary>
    public static readonly Scalar Two = 2.ToScalar();
    /// <summary>3 as an int scalar.</summary>
    public static readonly Scalar Three = 3.ToScalar();
    /// <summary>0 as a long scalar.</summary>
    public static readonly Scalar ZeroLong = 0L.ToScalar();
    /// <summary>1 as a long scalar.</summary>
    public static readonly Scalar OneLong = 1L.ToScalar();
    /// <summary>0.0 as a double scalar.</summary>
    public static readonly Scalar ZeroDouble = 0.0.ToScalar();
    /// <summary>0.5 as a double scalar.</summary>
    public static readonly Scalar HalfDouble = 0.5.ToScalar();
    /// <summary>1.0 as a double scalar.</summary>
    public static readonly Scalar OneDouble = 1.0.ToScalar();
    /// <summary>Negative infinity as a double scalar (masks, banned tokens).</summary>
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity.ToScalar();
    /// <summary>false as a bool scalar.</summary>
    public static readonly Scalar False = false.ToScalar();
    /// <summary>true as a bool scalar.</summary>
    public static readonly Scalar True = true.ToScalar();
    /// <summary>255 as a float scalar (byte pixels to [0, 1] and back).</summary>
    public static readonly Scalar Byte255Float = 255.0f.ToScalar();
    /// <summary>The 1.702 of quick_gelu (double).</summary>
    public static readonly Scalar QuickGelu = 1.702.ToScalar();
    /// <summary>The 0.044715 of tanh-approximated GELU (double).</summary>
    public static readonly Scalar GeluCubic = 0.044715.ToScalar();
    /// <summary>sqrt(2/pi) of tanh-approximated GELU (double).</summary>
    public static readonly Scalar SqrtTwoOverPi = Math.Sqrt(2.0 / Math.PI).ToScalar();

    /// <summary><c>arange(start, stop)</c> (step 1) with its scalars kept alive for the call.</summary>
    public static Tensor Arange(long start, long stop, ScalarType dtype, Device? device = null)
    {
        using var a = start.ToScalar();
        using var b = stop.ToScalar();
        return arange(a, b, One, dtype, device);
    }

    /// <summary><c>t * k</c> for a value known only now, its scalar kept alive for the call.</summary>
    public static Tensor Times(this Tensor t, double k)
    {
        using var s = k.ToScalar();
        return t.mul(s);
    }

    /// <summary><c>t + k</c> for a value known only now, its scalar and alpha kept alive for the call.</summary>
    public static Tensor PlusValue(this Tensor t, double k)
    {
        using var s = k.ToScalar();
        return t.add(s, One);
    }

    /// <summary><c>a + b</c> with a rooted alpha (what <c>a + b</c> computes, without the implicit alpha).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a += b</c> in place with a rooted alpha.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary><c>a + s</c> with a rooted alpha; <paramref name="s"/> must itself be kept alive by the caller.</summary>
    public static Tensor Plus(this Tensor a, Scalar s) => a.add(s, One);

    /// <summary><c>a += s</c> in place with a rooted alpha; <paramref name="s"/> must itself be kept alive by the caller.</summary>
    public static Tensor PlusInPlace(this Tensor a, Scalar s) => a.add_(s, One);
}
