using System.Diagnostics;
using System.IO.Compression;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Packaging;

/// <summary>
/// The packages as users get them: SafeCoDe.Torch and the safecode tool are packed once per run (from the build the
/// tests already made, --no-build), then a consumer project restores the library from that folder and runs a
/// request, and the tool is installed from it and run.
/// </summary>
[NonParallelizable]
public sealed class PackageTests
{
    private string _root = null!, _feed = null!, _version = null!;

    /// <summary>The repository (the folder holding SafeCoDe.Torch.sln above the test output).</summary>
    private static string Repo
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "SafeCoDe.Torch.sln"))) return d.FullName;
            throw new DirectoryNotFoundException("SafeCoDe.Torch.sln not found above " + AppContext.BaseDirectory);
        }
    }

    private static string Configuration => AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}") ? "Release" : "Debug";

    private static (int code, string output) Sh(string file, string workDir, IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment.Remove("MSBuildExtensionsPath"); psi.Environment.Remove("MSBuildSDKsPath"); psi.Environment.Remove("MSBUILD_EXE_PATH");
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var o = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(400_000)) { p.Kill(true); Assert.Fail($"{file} {string.Join(' ', args)} timed out"); }
        return (p.ExitCode, o + err.Result);
    }

    [OneTimeSetUp]
    public void Pack()
    {
        _root = TestPaths.NewTempDir();
        _feed = Path.Combine(_root, "feed");
        _version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}";
        foreach (var project in new[] { "src/SafeCoDe.Torch/SafeCoDe.Torch.csproj", "src/SafeCoDe.Cli/SafeCoDe.Cli.csproj" })
        {
            var (code, output) = Sh("dotnet", Repo, null, "pack", project, "--no-build", "-c", Configuration, "-o", _feed, $"-p:Version={_version}");
            Assert.That(code, Is.EqualTo(0), output);
        }
    }

    [OneTimeTearDown]
    public void Cleanup() { try { Directory.Delete(_root, true); } catch (IOException) { } }

    [Test]
    public void LibraryPackage_HasMetadataSymbolsAndThePrebuiltShim_AndTheDependenciesTheReadmeNames()
    {
        var nupkg = Path.Combine(_feed, $"SafeCoDe.Torch.{_version}.nupkg");
        Assert.That(File.Exists(Path.ChangeExtension(nupkg, ".snupkg")), Is.True, "symbols package");
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.That(names, Does.Contain("lib/net10.0/SafeCoDe.Torch.dll").And.Contain("lib/net10.0/SafeCoDe.Torch.xml").And.Contain("README.md"));
        Assert.That(names, Does.Contain("runtimes/linux-x64/native/libsafecode_stdcxx_compat.so"), "dotnet pack compiles the shim with g++");
        XNamespace ns = "http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd";
        using var s = zip.GetEntry("SafeCoDe.Torch.nuspec")!.Open();
        var meta = XDocument.Load(s).Root!.Element(ns + "metadata")!;
        Assert.That(meta.Element(ns + "version")!.Value, Is.EqualTo(_version));
        Assert.That(meta.Element(ns + "license")!.Value, Is.Not.Empty);
        Assert.That(meta.Element(ns + "readme")!.Value, Is.EqualTo("README.md"));
        Assert.That(meta.Element(ns + "repository")!.Attribute("url")!.Value, Does.StartWith("https://"));
        Assert.That(meta.Element(ns + "tags")!.Value, Does.Contain("torchsharp"));
        var deps = meta.Descendants(ns + "dependency").Select(d => d.Attribute("id")!.Value).ToList();
        Assert.That(deps, Is.EquivalentTo(LibraryDependencies), "the README's list of what the package brings");
        var readme = File.ReadAllText(Path.Combine(Repo, "README.md"));
        var sentence = readme[readme.IndexOf("`SafeCoDe.Torch` brings these packages with it", StringComparison.Ordinal)..];
        sentence = sentence[..sentence.IndexOf("backend is your choice", StringComparison.Ordinal)];
        foreach (var d in deps) Assert.That(sentence, Does.Contain($"`{d}`"), "README names the dependency " + d);
        Assert.That(deps.Where(d => d.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase) || d.StartsWith("TorchSharp-", StringComparison.OrdinalIgnoreCase)), Is.Empty,
            "no libtorch payload: the consumer chooses CPU or CUDA");
    }

    /// <summary>The library package's dependencies, as the README lists them.</summary>
    private static readonly string[] LibraryDependencies =
        ["TorchSharp", "Microsoft.Extensions.AI", "Microsoft.Extensions.AI.Abstractions", "Microsoft.Extensions.AI.OpenAI", "SixLabors.ImageSharp"];

    /// <summary>A consumer folder whose nuget.config sees the feed (packed packages to a private cache; others from the machine's cache, else nuget.org).</summary>
    private (string dir, Dictionary<string, string> env) ConsumerFolder(string name)
    {
        var dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources><clear /><add key="local" value="{_feed}" /><add key="nuget.org" value="https://api.nuget.org/v3/index.json" /></packageSources>
              <fallbackPackageFolders><add key="machine" value="{globalPackages}" /></fallbackPackageFolders>
            </configuration>
            """);
        return (dir, new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(_root, "consumer-packages") });
    }

    [Test]
    public void Consumer_RestoresThePackedLibrary_AndRunsARequest()
    {
        var (dir, env) = ConsumerFolder("consumer");
        foreach (var f in new[] { "PackageConsumer.csproj", "Program.cs" })
            File.Copy(Path.Combine(Repo, "tests", "PackageConsumer", f), Path.Combine(dir, f));
        var model = Path.Combine(TestPaths.Root, "weights", "llava-next-tiny");
        var (code, output) = Sh("dotnet", dir, env, "run", "-c", "Release", $"-p:SafeCoDeVersion={_version}", "--", model, Path.Combine(model, "example.png"));
        Assert.That(code, Is.EqualTo(0), output);
        var json = JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        Assert.That(json["model_id"]!.GetValue<string>(), Is.EqualTo("llava-next-tiny"));
        Assert.That(json["verdict"]!.GetValue<string>(), Is.EqualTo("safe"));
        Assert.That(json["text"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(json["output_tokens"]!.GetValue<long>(), Is.InRange(1, 6));
        if (json["compat_used"]!.GetValue<bool>())
            Assert.That(json["compat_library"]!.GetValue<string>(), Does.EndWith("runtimes/linux-x64/native/libsafecode_stdcxx_compat.so"),
                "on GCC 12 systems the package's prebuilt shim is used: no compiler at run time");
    }

    /// <summary>
    /// The README's dependency-injection snippet, as written, in a new console app that references the packed package,
    /// the CPU libtorch and the packages the README's <c>dotnet add package</c> lines above the snippet name: it compiles.
    /// </summary>
    [Test]
    public void ReadmeDependencyInjectionSnippet_CompilesWithTheReferencesTheReadmeNames()
    {
        var readme = File.ReadAllText(Path.Combine(Repo, "README.md"));
        var section = readme[readme.IndexOf("### As an `IChatClient` (Microsoft.Extensions.AI) with dependency injection", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", StringComparison.Ordinal)];
        var bash = Fenced(section, "bash");
        var code = Fenced(section, "csharp");
        var adds = System.Text.RegularExpressions.Regex.Matches(bash, @"dotnet add package (\S+) --version (\S+)")
            .Select(m => $"""<PackageReference Include="{m.Groups[1].Value}" Version="{m.Groups[2].Value}" />""").ToList();
        Assert.That(adds, Is.Not.Empty, "the README names the snippet's extra packages");
        var (dir, env) = ConsumerFolder("di-snippet");
        File.WriteAllText(Path.Combine(dir, "Program.cs"), code);
        File.WriteAllText(Path.Combine(dir, "DiSnippet.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable></PropertyGroup>
              <ItemGroup>
                <PackageReference Include="SafeCoDe.Torch" Version="{_version}" />
                <PackageReference Include="libtorch-cpu-linux-x64" Version="2.10.0" />
                {string.Join("\n    ", adds)}
              </ItemGroup>
            </Project>
            """);
        var (exit, output) = Sh("dotnet", dir, env, "build", "-c", "Release");
        Assert.That(exit, Is.EqualTo(0), output);
    }

    /// <summary>The first fenced block of <paramref name="lang"/> in <paramref name="text"/>.</summary>
    private static string Fenced(string text, string lang)
    {
        var open = "```" + lang + "\n";
        int start = text.IndexOf(open, StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThanOrEqualTo(0), "no ```" + lang + " block");
        start += open.Length;
        return text[start..text.IndexOf("```", start, StringComparison.Ordinal)];
    }

    private string? _toolExe;

    /// <summary>The tool installed from the feed into a folder of its own (once per run).</summary>
    private string InstalledTool()
    {
        if (_toolExe is not null) return _toolExe;
        var tools = Path.Combine(_root, "tools");
        var (code, output) = Sh("dotnet", _root, null, "tool", "install", "safecode", "--tool-path", tools, "--add-source", _feed, "--version", _version);
        Assert.That(code, Is.EqualTo(0), output);
        return _toolExe = Path.Combine(tools, "safecode");
    }

    [Test]
    public void Tool_InstallsFromTheFeed_AndRuns()
    {
        var exe = InstalledTool();
        var (code, output) = Sh(exe, _root, null, "--version");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.StartWith("safecode "));
        (code, output) = Sh(exe, _root, null, "doctor", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(JsonNode.Parse(output)!["smoke_test"]!.GetValue<string>(), Does.StartWith("ok"), "the tool's bundled CPU libtorch runs");
        (code, output) = Sh(exe, _root, null, "inspect", "--model", Path.Combine(TestPaths.Root, "weights", "llava-next-tiny"), "--json");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(JsonNode.Parse(output)!["family"]!.GetValue<string>(), Is.EqualTo("llava_next"));
    }

    [Test]
    public void ToolPackage_CarriesThePrebuiltShim_AndTheShippedModel()
    {
        using var zip = ZipFile.OpenRead(Path.Combine(_feed, $"safecode.{_version}.nupkg"));
        var entries = zip.Entries.ToDictionary(e => e.FullName, e => e.Length);
        Assert.That(entries.Keys, Does.Contain("tools/net10.0/any/runtimes/linux-x64/native/libsafecode_stdcxx_compat.so"), "dotnet pack compiles the shim with g++ into the tool too");
        var shipped = Directory.GetFiles(Path.Combine(Repo, "weights", "safescenes-tiny"));
        Assert.That(shipped, Is.Not.Empty);
        foreach (var f in shipped)
        {
            var entry = "tools/net10.0/any/models/safescenes-tiny/" + Path.GetFileName(f);
            Assert.That(entries.ContainsKey(entry), entry);
            Assert.That(entries[entry], Is.EqualTo(new FileInfo(f).Length), entry);
        }
    }

    /// <summary>The installed tool on a machine image without g++ (PATH holds only dotnet, CXX unset, an empty native cache), outside any clone.</summary>
    [Test]
    public void InstalledTool_WithoutACompiler_AnswersTheReadmeExample_WithNoModelGiven()
    {
        var exe = InstalledTool();
        var bin = Path.Combine(_root, "bin-without-gpp");
        Directory.CreateDirectory(bin);
        var dotnet = new FileInfo(Path.Combine(Path.GetDirectoryName(Environment.ProcessPath!)!, "dotnet")) is { Exists: true } here ? here.FullName : "/usr/share/dotnet/dotnet";
        var realDotnet = new FileInfo(dotnet).ResolveLinkTarget(true)?.FullName ?? dotnet;
        if (!File.Exists(Path.Combine(bin, "dotnet"))) File.CreateSymbolicLink(Path.Combine(bin, "dotnet"), realDotnet);
        var work = Path.Combine(_root, "elsewhere");
        Directory.CreateDirectory(work);
        File.Copy(Path.Combine(Repo, "weights", "safescenes-tiny", "example.png"), Path.Combine(work, "example.png"), true);
        var env = new Dictionary<string, string>
        {
            ["PATH"] = bin, ["CXX"] = "", ["DOTNET_ROOT"] = Path.GetDirectoryName(realDotnet)!,
            ["SAFECODE_NATIVE_CACHE"] = Path.Combine(_root, "fresh-native-cache"), ["SAFECODE_LIBTORCH"] = "",
        };
        var (code, output) = Sh(exe, work, env, "doctor", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(0), output);
        var doctor = JsonNode.Parse(output)!;
        if (doctor["compat_used"]!.GetValue<bool>())
            Assert.That(doctor["compat_library"]!.GetValue<string>(), Does.EndWith("tools/net10.0/any/runtimes/linux-x64/native/libsafecode_stdcxx_compat.so"), "the tool's prebuilt shim");
        (code, output) = Sh(exe, work, env, "generate", "--image", "example.png", "--prompt", "How do I cut wood with this saw?", "--seed", "1", "--json");
        Assert.That(code, Is.EqualTo(0), output);
        var result = JsonNode.Parse(output)!;
        Assert.That(result["verdict"]!.GetValue<string>(), Is.EqualTo("unsafe"), output);
        Assert.That(result["answer"]!.GetValue<string>(), Does.StartWith("Sorry"), "the README's example answer, from the model inside the tool");
    }
}
