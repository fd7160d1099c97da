using System.Diagnostics;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Serve;

/// <summary>
/// The npm packages the node client test needs, installed from the committed lockfile (<c>npm ci</c>) when
/// <c>node_modules</c> is missing, so <c>dotnet test SafeCoDe.Torch.sln</c> works on a fresh clone without a manual step.
/// </summary>
internal static class NodePackages
{
    private static readonly object Gate = new();

    /// <summary>Makes sure <paramref name="package"/> is installed under <paramref name="dir"/>; fails the test with npm's output when it cannot be.</summary>
    public static void Ensure(string dir, string package)
    {
        lock (Gate)
        {
            if (Directory.Exists(Path.Combine(dir, "node_modules", package))) return;
            var psi = new ProcessStartInfo("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            {
                WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            Process p;
            try { p = Process.Start(psi)!; }
            catch (System.ComponentModel.Win32Exception ex)
            {
                Assert.Fail($"node_modules/{package} is missing in {dir} and npm (node 20+) is not on PATH to install it from the lockfile: {ex.Message}");
                return;
            }
            using (p)
            {
                var err = p.StandardError.ReadToEndAsync();
                var output = p.StandardOutput.ReadToEnd();
                if (!p.WaitForExit(300_000)) { p.Kill(true); Assert.Fail($"npm ci in {dir} did not finish in 5 minutes"); }
                Assert.That(p.ExitCode, Is.EqualTo(0), $"npm ci in {dir} failed:\n{output}{err.Result}");
            }
            Assert.That(Directory.Exists(Path.Combine(dir, "node_modules", package)), $"npm ci in {dir} did not install {package}");
        }
    }
}
