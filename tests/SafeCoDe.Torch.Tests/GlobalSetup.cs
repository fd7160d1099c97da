using NUnit.Framework;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Torch.Tests;

/// <summary>Brings up the CPU libtorch once for the whole test run (tests never need a GPU).</summary>
[SetUpFixture]
public sealed class GlobalSetup
{
    public static RuntimeReport Runtime { get; private set; } = null!;

    [OneTimeSetUp]
    public void Init() => Runtime = NativeRuntime.Initialize(new RuntimeOptions { Device = DeviceRequest.Cpu });
}
