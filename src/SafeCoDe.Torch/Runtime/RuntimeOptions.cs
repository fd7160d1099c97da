namespace SafeCoDe.Torch.Runtime;

/// <summary>Which device a run asks for.</summary>
public enum DeviceRequest
{
    /// <summary>CUDA when a CUDA libtorch is found and a GPU answers, otherwise the CPU.</summary>
    Auto,
    /// <summary>The CPU libtorch shipped with the package.</summary>
    Cpu,
    /// <summary>CUDA, or a clear error saying why not.</summary>
    Cuda,
}

/// <summary>What to do about the GCC 13 libstdc++ symbol that libLibTorchSharp.so needs (docs/runtime-linux.md).</summary>
public enum CompatMode
{
    /// <summary>Use the shim only when the system libstdc++ lacks GLIBCXX_3.4.32.</summary>
    Auto,
    /// <summary>Never use it (the load fails on GCC 12 systems).</summary>
    Off,
    /// <summary>Always use it (for testing the path on newer systems).</summary>
    Force,
}

/// <summary>Options for bringing up the native runtime; environment variables fill what is left null.</summary>
public sealed record RuntimeOptions
{
    /// <summary>Requested device; default <see cref="DeviceRequest.Auto"/>.</summary>
    public DeviceRequest Device { get; init; } = DeviceRequest.Auto;

    /// <summary>A libtorch folder with CUDA (e.g. a PyTorch wheel's torch/lib). Default: SAFECODE_LIBTORCH, then python3's torch.</summary>
    public string? LibTorchDir { get; init; }

    /// <summary>Compat shim policy. Default: SAFECODE_STDCXX_COMPAT (auto|off|force), else auto.</summary>
    public CompatMode? Compat { get; init; }

    /// <summary>Where the shim and the patched library are built. Default: SAFECODE_NATIVE_CACHE, else ~/.cache/safecode/native.</summary>
    public string? CacheDir { get; init; }

    /// <summary>Parses "cpu|cuda|auto" (case-insensitive).</summary>
    public static DeviceRequest ParseDevice(string text) => text.Trim().ToLowerInvariant() switch
    {
        "cpu" => DeviceRequest.Cpu,
        "cuda" or "gpu" => DeviceRequest.Cuda,
        "auto" => DeviceRequest.Auto,
        _ => throw new ArgumentException($"unknown device '{text}': expected cpu, cuda or auto"),
    };
}
