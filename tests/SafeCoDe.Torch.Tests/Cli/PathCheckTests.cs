using System.Diagnostics;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>Path mistakes are found before the native runtime loads, in the real executable.</summary>
[NonParallelizable]
public class PathCheckTests
{
    /// <summary>
    /// With a CUDA device asked for and a libtorch folder that does not exist, loading the native runtime fails with
    /// exit code 3; a missing model folder is reported first (usage, exit 2), so the runtime was never touched.
    /// </summary>
    [Test]
    public void AMissingModel_IsReportedBeforeTheNativeRuntimeLoads()
    {
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "safecode")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "generate", "--model", "/nonexistent/model", "--prompt", "hi", "--device", "cuda" }) psi.ArgumentList.Add(a);
        psi.Environment["SAFECODE_LIBTORCH"] = "/nonexistent/libtorch";
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        Assert.That(p.WaitForExit(60_000), Is.True);
        Assert.That(p.ExitCode, Is.EqualTo(2), err.Result);
        Assert.That(err.Result, Does.StartWith("safecode generate: invalid usage — --model /nonexistent/model: folder not found"));
        Assert.That(err.Result, Does.Not.Contain("libtorch").And.Not.Contain("runtime"));
        Assert.That(o, Is.Empty);

        // the same runtime settings with a model that exists: the runtime is what fails, so the check above came first
        psi.ArgumentList[2] = Path.Combine(TestPaths.Root, "weights", "safescenes-tiny");
        using var q = Process.Start(psi)!;
        var err2 = q.StandardError.ReadToEndAsync();
        q.StandardOutput.ReadToEnd();
        Assert.That(q.WaitForExit(60_000), Is.True);
        Assert.That(q.ExitCode, Is.EqualTo(3), err2.Result);
    }
}
