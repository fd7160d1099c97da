using System.Runtime.InteropServices;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// CPU time of the calling thread (Linux: clock_gettime with CLOCK_THREAD_CPUTIME_ID), for profiles that must not
/// count the time a thread waits for a core on a loaded machine. Elsewhere it reads 0 and profiles show 0.
/// </summary>
internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Sec; public long NSec; }

    [LibraryImport("libc.so.6", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec ts);

    private static readonly bool Supported = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>The calling thread's CPU time so far in ms (0 where not supported).</summary>
    public static double Ms()
    {
        if (!Supported) return 0;
        try { return ClockGetTime(ClockThreadCpuTimeId, out var ts) == 0 ? ts.Sec * 1e3 + ts.NSec / 1e6 : 0; }
        catch (DllNotFoundException) { return 0; }
        catch (EntryPointNotFoundException) { return 0; }
    }
}
