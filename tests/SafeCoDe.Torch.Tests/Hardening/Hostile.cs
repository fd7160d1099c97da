using System.Diagnostics;
using System.Runtime.InteropServices;
using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing;
using SafeCoDe.Torch.Processing.Images;
using SafeCoDe.Torch.Runtime;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Tests.Hardening;

/// <summary>
/// Shared rules of the fuzz and abuse suite: which outcomes count as clean, the per-case time limit, the seeded
/// random source, and the size of the run (CI by default; SAFECODE_FUZZ=nightly multiplies the mutant counts).
/// </summary>
public static class Hostile
{
    /// <summary>True when SAFECODE_FUZZ=nightly: many more mutants per generator.</summary>
    public static bool Nightly => Environment.GetEnvironmentVariable("SAFECODE_FUZZ") == "nightly";

    /// <summary>Mutants per generator: <paramref name="ci"/> in CI, 25× in the nightly mode.</summary>
    public static int Count(int ci) => Nightly ? ci * 25 : ci;

    /// <summary>The seed of every generator (SAFECODE_FUZZ_SEED overrides, to replay a nightly finding).</summary>
    public static int Seed => int.TryParse(Environment.GetEnvironmentVariable("SAFECODE_FUZZ_SEED"), out var s) ? s : 20260501;

    /// <summary>The most one case may take.</summary>
    public static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Exceptions a caller (the CLI) turns into one clean line: the library's and the harness's typed errors and the
    /// argument / format / IO families. Everything else — NullReference, IndexOutOfRange, DivideByZero, Overflow, InvalidCast,
    /// KeyNotFound, OutOfMemory, native (SEH/External) errors — is a bug.
    /// </summary>
    public static bool IsClean(Exception e) => e is CheckpointException or ImageDecodeException or JudgeException or NativeRuntimeException
        or InputLimitException or InputFileException or PromptException or SafeCoDe.Torch.Processing.Tokenizers.TokenizerFormatException
        or SafeCoDe.Eval.Benchmarks.BenchmarkLayoutException
        or ArgumentException or FormatException or IOException or NotSupportedException or InvalidOperationException
        && e is not (ArgumentNullException or ObjectDisposedException);

    /// <summary>Runs one case: it must finish within <see cref="CaseLimit"/> and succeed or fail cleanly; returns the error, if any.</summary>
    public static Exception? Run(string name, Action action)
    {
        var sw = Stopwatch.StartNew();
        Exception? error = null;
        var task = Task.Run(() =>
        {
            try { action(); }
            catch (Exception e) { error = e; }
        });
        if (!task.Wait(CaseLimit)) Assert.Fail($"{name}: still running after {CaseLimit.TotalSeconds} s");
        if (error is not null && !IsClean(error))
            Assert.Fail($"{name}: unclean {error.GetType().Name}: {error.Message}\n{error.StackTrace}");
        TestContext.Out.WriteLine($"{name}: {(error is null ? "ok" : error.GetType().Name + ": " + Trim(error.Message))} ({sw.Elapsed.TotalMilliseconds:F0} ms)");
        return error;
    }

    private static string Trim(string s) => s.Length > 160 ? s[..160] + "…" : s;

    /// <summary>Makes a FIFO (named pipe) at <paramref name="path"/>.</summary>
    public static void MkFifo(string path)
    {
        if (mkfifo(path, 0x180) != 0) Assert.Fail($"mkfifo failed (errno {Marshal.GetLastPInvokeError()})");
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int mkfifo([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint mode);

    /// <summary>The shipped default model folder.</summary>
    public static string DefaultModel
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "SafeCoDe.Torch.sln"))) return Path.Combine(d.FullName, "weights", "llava-next-tiny");
            throw new DirectoryNotFoundException("repository root not found");
        }
    }

    /// <summary>A copy of the default model folder in a temp folder (files copied, so they can be mutated).</summary>
    public static string CopyDefaultModel(string into)
    {
        Directory.CreateDirectory(into);
        foreach (var f in Directory.GetFiles(DefaultModel)) File.Copy(f, Path.Combine(into, Path.GetFileName(f)));
        return into;
    }

    /// <summary>Peak resident memory of this process so far (VmHWM), in bytes; -1 when unknown.</summary>
    public static long PeakRss(int pid = 0)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{(pid == 0 ? "self" : pid.ToString())}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        return -1;
    }
}
