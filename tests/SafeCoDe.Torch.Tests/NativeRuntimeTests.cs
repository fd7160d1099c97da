using NUnit.Framework;
using SafeCoDe.Torch.Runtime;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Tests;

public class NativeRuntimeTests
{
    /// <summary>Reads the libstdc++ file the dynamic loader would pick and looks for the version string, independently of the loader's dlvsym check.</summary>
    private static bool SystemLibStdCxxFileHasVersion(string version)
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int at = line.IndexOf('/');
            if (at < 0) continue;
            var path = line[at..];
            if (!Path.GetFileName(path).StartsWith("libstdc++.so")) continue;
            var bytes = File.ReadAllBytes(path);
            return System.Text.Encoding.ASCII.GetString(bytes).Contains(version + "\0");
        }
        Assert.Fail("libstdc++ is not mapped into the test process");
        return false;
    }

    private static IEnumerable<string> MappedFiles() =>
        File.ReadLines("/proc/self/maps").Select(l => l.IndexOf('/') is var i and >= 0 ? l[i..] : "").Where(p => p.Length > 0).Distinct();

    [Test]
    public void LoaderTookThePathThisSystemNeeds_AndATensorOpRuns()
    {
        Assume.That(OperatingSystem.IsLinux(), "the compat path exists on Linux only");
        var r = GlobalSetup.Runtime;
        bool needsCompat = !SystemLibStdCxxFileHasVersion("GLIBCXX_3.4.32");
        Assert.That(r.CompatUsed, Is.EqualTo(needsCompat), r.CompatReason);
        Assert.That(r.Backend, Is.EqualTo("cpu"));

        var mapped = MappedFiles().ToList();
        Assert.That(mapped, Has.Some.EqualTo(r.LibTorchSharpPath), "the loaded libLibTorchSharp.so is the one the report names");
        if (needsCompat)
        {
            Assert.That(mapped, Has.Some.EqualTo(r.CompatLibrary));
            Assert.That(ElfVersionPatcher.Inspect(File.ReadAllBytes(r.LibTorchSharpPath), "GLIBCXX_3.4.32"), Is.EqualTo(ElfVersionPatcher.NeedState.Weak));
        }

        using var a = arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        using var b = a.matmul(a.t());
        Assert.That(b.data<float>().ToArray(), Is.EqualTo(new float[] { 5, 14, 14, 50 }));
        using var x = tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        using var y = x.matmul(x);
        Assert.That(y.data<float>().ToArray(), Is.EqualTo(new float[] { 7, 10, 15, 22 }));
        using var bf = x.to(ScalarType.BFloat16).matmul(x.to(ScalarType.BFloat16)).to(ScalarType.Float32);
        Assert.That(bf.data<float>().ToArray(), Is.EqualTo(new float[] { 7, 10, 15, 22 }));
    }

    [Test]
    public void ElfPatcher_MarksOnlyTheNamedRequirementWeak()
    {
        var path = Path.Combine(NativeRuntime.FindPackagedNativeDir(), "libLibTorchSharp.so");
        var bytes = File.ReadAllBytes(path);
        var original = (byte[])bytes.Clone();
        Assert.That(ElfVersionPatcher.Inspect(bytes, "GLIBCXX_3.4.32"), Is.EqualTo(ElfVersionPatcher.NeedState.Strong));
        Assert.That(ElfVersionPatcher.MarkWeak(bytes, "GLIBCXX_3.4.32"), Is.True);
        Assert.That(ElfVersionPatcher.Inspect(bytes, "GLIBCXX_3.4.32"), Is.EqualTo(ElfVersionPatcher.NeedState.Weak));
        Assert.That(ElfVersionPatcher.Inspect(bytes, "GLIBCXX_3.4.19"), Is.EqualTo(ElfVersionPatcher.NeedState.Strong));
        Assert.That(ElfVersionPatcher.MarkWeak(bytes, "GLIBCXX_9.9.99"), Is.False);
        int changed = bytes.Zip(original).Count(p => p.First != p.Second);
        Assert.That(changed, Is.EqualTo(1), "a one-bit flag change in one byte");
    }

    [Test]
    public void DeviceParsing()
    {
        Assert.That(RuntimeOptions.ParseDevice("CUDA"), Is.EqualTo(DeviceRequest.Cuda));
        Assert.That(RuntimeOptions.ParseDevice("auto"), Is.EqualTo(DeviceRequest.Auto));
        Assert.Throws<ArgumentException>(() => RuntimeOptions.ParseDevice("tpu"));
    }
}
