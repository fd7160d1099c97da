using System.Globalization;
using System.Text.RegularExpressions;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// Turns libtorch's error text (many lines with a C++ backtrace) into one short line: an out-of-memory error says how
/// much was asked for and on which device; anything else keeps its first meaningful line.
/// </summary>
public static class NativeErrors
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(1);
    private static readonly Regex CpuOom = new(@"you tried to allocate (\d+) bytes", RegexOptions.CultureInvariant, T);
    private static readonly Regex CudaOom = new(@"CUDA out of memory\. Tried to allocate ([\d.]+ ?[KMGTP]?i?B)(?:.*?GPU (\d+))?", RegexOptions.CultureInvariant | RegexOptions.Singleline, T);

    /// <summary>True when the exception carries a libtorch error (TorchSharp raises them as <see cref="System.Runtime.InteropServices.ExternalException"/>).</summary>
    public static bool IsNative(Exception e) => e is System.Runtime.InteropServices.ExternalException && e is not System.ComponentModel.Win32Exception;

    /// <summary>True for an allocation failure (libtorch's or the runtime's).</summary>
    public static bool IsOutOfMemory(Exception e) => e is OutOfMemoryException || IsNative(e) && (CpuOom.IsMatch(e.Message) || e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase));

    /// <summary>One line describing a native error.</summary>
    public static string Summarize(Exception e)
    {
        var m = e.Message ?? "";
        if (CpuOom.Match(m) is { Success: true } c && long.TryParse(c.Groups[1].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes))
            return $"out of memory: libtorch asked for {BoundedFile.Human(bytes)} on the CPU";
        if (CudaOom.Match(m) is { Success: true } g)
            return $"out of memory: libtorch asked for {g.Groups[1].Value} on cuda:{(g.Groups[2].Success ? g.Groups[2].Value : "?")}";
        if (e is OutOfMemoryException) return "out of memory (.NET allocation)";
        var line = m.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0 && !l.StartsWith("Exception raised from", StringComparison.Ordinal) && !l.StartsWith("frame #", StringComparison.Ordinal)) ?? "native error";
        line = Regex.Replace(line, @"\s*\(most recent call first\):?$", "", RegexOptions.None, T);
        return line.Length > 300 ? line[..300] + "…" : line;
    }
}
