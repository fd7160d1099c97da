namespace SafeCoDe.Cli;

/// <summary>
/// The SafeScenes demonstration model (weights/safescenes-tiny, 2.6 MB) that the build copies next to safecode.dll and
/// the tool package carries, so <c>--model</c> can be omitted outside a clone (right after <c>dotnet tool install</c>).
/// </summary>
public static class ShippedModel
{
    /// <summary>Its folder under the tool's own files.</summary>
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "models", "safescenes-tiny");

    /// <summary>What <c>--help</c> says about the default.</summary>
    public const string HelpText = "omitted: the SafeScenes demonstration model shipped with safecode, a toy for that world, not a real MLLM";
}
