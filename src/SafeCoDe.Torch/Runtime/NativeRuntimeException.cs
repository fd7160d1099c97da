namespace SafeCoDe.Torch.Runtime;

/// <summary>The native runtime (libtorch, LibTorchSharp, the libstdc++ shim, CUDA) could not be brought up.</summary>
public sealed class NativeRuntimeException(string message, Exception? inner = null) : Exception(message, inner);
