using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests;

/// <summary>Comparisons shared by the parity tests.</summary>
public static class TestMath
{
    /// <summary>‖a − b‖ / ‖b‖ (the fixtures' relative error), with every intermediate disposed.</summary>
    public static double RelErr(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return ((a - b).norm() / b.norm()).item<float>();
    }
}
