using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// Owns the loading of libtorch and libLibTorchSharp: the libstdc++ compat path on GCC 12 systems
/// (docs/runtime-linux.md), bring-your-own CUDA libtorch (docs/cuda.md), and the device choice. TorchSharp's own loader is
/// redirected here through a DllImport resolver, so the order below holds whichever code touches torch first.
/// </summary>
public static class NativeRuntime
{
    private const string IosInitSymbol = "_ZSt21ios_base_library_initv";
    private const string IosInitVersion = "GLIBCXX_3.4.32";

    private static readonly object Gate = new();
    private static NativeLoad? _load;          // set once the native libraries are in the process
    private static RuntimeReport? _report;     // set once torch itself answered
    private static int _resolverRegistered;

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "the resolver must exist before TorchSharp's first P/Invoke")]
    internal static void RegisterResolver()
    {
        if (Interlocked.Exchange(ref _resolverRegistered, 1) != 0) return;
        if (!OperatingSystem.IsLinux()) return; // elsewhere TorchSharp's own loading is used unchanged
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(torch).Assembly, Resolve);
        }
        catch (InvalidOperationException)
        {
            // Somebody else owns TorchSharp's resolver; Initialize() still preloads in the right order.
        }
    }

    /// <summary>The report of the runtime brought up in this process, or null before <see cref="Initialize"/>.</summary>
    public static RuntimeReport? Current => _report;

    /// <summary>
    /// Brings up libtorch for <paramref name="options"/> (once per process) and returns what was loaded from where.
    /// A second call must not ask for a different backend than the first chose.
    /// </summary>
    public static RuntimeReport Initialize(RuntimeOptions? options = null)
    {
        options ??= new RuntimeOptions();
        lock (Gate)
        {
            if (_report is not null)
            {
                if (options.Device == DeviceRequest.Cuda && _report.Backend != "cuda")
                    throw new NativeRuntimeException(
                        "CUDA was requested, but this process already runs the CPU libtorch" +
                        (_report.CudaUnavailableReason is { } r ? $" ({r})" : "") + "; libtorch cannot be swapped in a running process.");
                return _report;
            }
            var load = _load ??= LoadNatives(options);
            _report = BringUpTorch(load, options);
            return _report;
        }
    }

    /// <summary>Initialises the runtime and returns the torch device for a request.</summary>
    public static Device SelectDevice(DeviceRequest request)
    {
        var report = Initialize(new RuntimeOptions { Device = request });
        return report.Backend == "cuda" && request != DeviceRequest.Cpu ? CUDA : CPU;
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        NativeLoad load;
        lock (Gate)
        {
            // TorchSharp was touched before Initialize(): load with the default options (env vars still apply).
            load = _load ??= LoadNatives(new RuntimeOptions());
        }
        return name switch
        {
            "LibTorchSharp" or "libLibTorchSharp" or "libLibTorchSharp.so" => load.LibTorchSharp,
            "torch_cuda" => load.TorchCuda,
            "torch_cpu" => load.TorchCpu,
            _ => IntPtr.Zero,
        };
    }

    private sealed record NativeLoad(
        IntPtr LibTorchSharp, IntPtr TorchCpu, IntPtr TorchCuda, string LibTorchDir, string LibTorchSource,
        string LibTorchSharpPath, bool CompatUsed, string? CompatLibrary, string CompatReason, string? CudaReason);

    private static NativeLoad LoadNatives(RuntimeOptions options)
    {
        if (!OperatingSystem.IsLinux())
            return new NativeLoad(IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, "", "TorchSharp default loader", "", false, null,
                "not Linux: TorchSharp's own loader", null);

        string packagedDir = FindPackagedNativeDir();
        string originalLts = Path.Combine(packagedDir, "libLibTorchSharp.so");

        // 1. Which libtorch: a CUDA one (TorchSharp-cuda package, SAFECODE_LIBTORCH, python3's torch) or the CPU package.
        string? cudaReason = null;
        string libDir = packagedDir, source = "NuGet package libtorch-cpu-linux-x64";
        bool packagedCpu = File.Exists(Path.Combine(packagedDir, "libtorch_cpu.so"));
        bool cuda = false;
        if (File.Exists(Path.Combine(packagedDir, "libtorch_cuda.so")))
        {
            cuda = options.Device != DeviceRequest.Cpu;
            source = "NuGet package (TorchSharp-cuda)";
        }
        else if (options.Device != DeviceRequest.Cpu)
        {
            var (dir, from, why) = FindCudaLibTorch(options.LibTorchDir);
            if (dir is not null) { libDir = dir; source = from!; cuda = true; }
            else
            {
                cudaReason = why;
                if (options.Device == DeviceRequest.Cuda)
                    throw new NativeRuntimeException($"CUDA was requested but no CUDA libtorch was found: {why}");
            }
        }
        else cudaReason = "CPU requested";
        if (!cuda && !packagedCpu)
        {
            // built without the CPU package: any external libtorch (CUDA or CPU build) will do
            var ext = options.LibTorchDir ?? Environment.GetEnvironmentVariable("SAFECODE_LIBTORCH") ?? PythonTorchLibDir(out _);
            if (ext is null || !File.Exists(Path.Combine(ext, "libtorch_cpu.so")))
                throw new NativeRuntimeException("this build has no packaged libtorch (SafeCoDeTorchBackend=external) and no libtorch was found: set SAFECODE_LIBTORCH to a torch/lib folder");
            libDir = Path.GetFullPath(ext); source = "external libtorch (CPU use)";
        }

        // 2. The libstdc++ question.
        var compat = options.Compat ?? ParseCompat(Environment.GetEnvironmentVariable("SAFECODE_STDCXX_COMPAT"));
        bool systemHasSymbol = SystemLibStdCxxHas(IosInitSymbol, IosInitVersion);
        byte[] ltsBytes = File.ReadAllBytes(originalLts);
        var need = ElfVersionPatcher.Inspect(ltsBytes, IosInitVersion);
        bool useCompat = compat switch
        {
            CompatMode.Off => false,
            CompatMode.Force => need != ElfVersionPatcher.NeedState.Absent,
            _ => need == ElfVersionPatcher.NeedState.Strong && !systemHasSymbol,
        };
        string compatReason = need == ElfVersionPatcher.NeedState.Absent
            ? $"libLibTorchSharp.so does not require {IosInitVersion}"
            : systemHasSymbol
                ? $"system libstdc++ provides {IosInitVersion}" + (useCompat ? " (compat forced)" : "")
                : $"system libstdc++ lacks {IosInitVersion}" + (useCompat ? "" : " (compat switched off: loading will fail)");

        string ltsPath = originalLts;
        string? compatLib = null;
        if (useCompat)
        {
            (compatLib, ltsPath) = PrepareCompat(ltsBytes, options.CacheDir);
            Libdl.OpenOrThrow(compatLib, Libdl.RTLD_NOW | Libdl.RTLD_GLOBAL);
        }

        // 3. libtorch in dependency order, by full path, then LibTorchSharp.
        int mode = Libdl.RTLD_LAZY | Libdl.RTLD_GLOBAL;
        IntPtr torchCpu = IntPtr.Zero, torchCuda = IntPtr.Zero;
        try
        {
            Libdl.OpenOrThrow(Path.Combine(libDir, "libc10.so"), mode);
            foreach (var gomp in Directory.GetFiles(libDir, "libgomp*.so*")) Libdl.OpenOrThrow(gomp, mode);
            torchCpu = Libdl.OpenOrThrow(Path.Combine(libDir, "libtorch_cpu.so"), mode);
            if (cuda)
            {
                Libdl.OpenOrThrow(Path.Combine(libDir, "libc10_cuda.so"), mode);
                torchCuda = Libdl.OpenOrThrow(Path.Combine(libDir, "libtorch_cuda.so"), mode);
            }
            Libdl.OpenOrThrow(Path.Combine(libDir, "libtorch.so"), mode);
        }
        catch (NativeRuntimeException e) when (cuda && options.Device == DeviceRequest.Auto && torchCpu == IntPtr.Zero)
        {
            // Nothing of the CUDA libtorch got in; fall back to the packaged CPU one.
            cudaReason = $"CUDA libtorch at {libDir} did not load: {e.Message}";
            cuda = false; libDir = packagedDir; source = "NuGet package libtorch-cpu-linux-x64";
            Libdl.OpenOrThrow(Path.Combine(libDir, "libc10.so"), mode);
            foreach (var gomp in Directory.GetFiles(libDir, "libgomp*.so*")) Libdl.OpenOrThrow(gomp, mode);
            torchCpu = Libdl.OpenOrThrow(Path.Combine(libDir, "libtorch_cpu.so"), mode);
            Libdl.OpenOrThrow(Path.Combine(libDir, "libtorch.so"), mode);
        }

        IntPtr lts = Libdl.DlOpen(ltsPath, Libdl.RTLD_NOW | Libdl.RTLD_GLOBAL);
        if (lts == IntPtr.Zero)
        {
            var err = Libdl.LastError();
            var hint = err.Contains(IosInitVersion)
                ? $" The system libstdc++ lacks {IosInitVersion}; leave SAFECODE_STDCXX_COMPAT unset (auto) so the compat shim is used."
                : "";
            throw new NativeRuntimeException($"could not load {ltsPath}: {err}.{hint}");
        }
        return new NativeLoad(lts, torchCpu, torchCuda, libDir, source, ltsPath, useCompat, compatLib, compatReason, cudaReason);
    }

    private static RuntimeReport BringUpTorch(NativeLoad load, RuntimeOptions options)
    {
        bool cudaLoaded = load.TorchCuda != IntPtr.Zero || (load.LibTorchSource.Contains("TorchSharp-cuda") && options.Device != DeviceRequest.Cpu);
        string? cudaReason = load.CudaReason;
        string backend = "cpu";
        torch.InitializeDeviceType(DeviceType.CPU);
        if (cudaLoaded)
        {
            bool ok;
            try { ok = torch.TryInitializeDeviceType(DeviceType.CUDA) && torch.cuda.is_available(); }
            catch (Exception e) { ok = false; cudaReason = "CUDA initialisation failed: " + e.Message; }
            if (ok) backend = "cuda";
            else
            {
                cudaReason ??= "libtorch_cuda loaded but torch.cuda.is_available() is false (no GPU visible, or the driver is too old for this libtorch's CUDA)";
                if (options.Device == DeviceRequest.Cuda)
                    throw new NativeRuntimeException("CUDA was requested but is not usable: " + cudaReason);
            }
        }
        var devices = backend == "cuda" ? CudaInfo.Devices() : [];
        return new RuntimeReport(backend, load.LibTorchDir, load.LibTorchSource, load.LibTorchSharpPath, load.CompatUsed,
            load.CompatLibrary, load.CompatReason, cudaReason, devices);
    }

    private static CompatMode ParseCompat(string? env) => env?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => CompatMode.Auto,
        "off" or "0" or "false" => CompatMode.Off,
        "force" or "on" or "1" or "true" => CompatMode.Force,
        var other => throw new NativeRuntimeException($"SAFECODE_STDCXX_COMPAT='{other}': expected auto, off or force"),
    };

    /// <summary>True when the libstdc++ the process would use exports <paramref name="symbol"/>@<paramref name="version"/>.</summary>
    internal static bool SystemLibStdCxxHas(string symbol, string version)
    {
        var h = Libdl.DlOpen("libstdc++.so.6", Libdl.RTLD_NOW | Libdl.RTLD_GLOBAL);
        return h != IntPtr.Zero && Libdl.DlVSym(h, symbol, version) != IntPtr.Zero;
    }

    /// <summary>The folder holding the packaged libLibTorchSharp.so (app folder, runtimes/…/native, or the probing paths).</summary>
    internal static string FindPackagedNativeDir()
    {
        var candidates = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string dirs)
            candidates.AddRange(dirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        string baseDir = AppContext.BaseDirectory;
        candidates.Add(baseDir);
        candidates.Add(Path.Combine(baseDir, "runtimes", "linux-x64", "native"));
        var tsDir = Path.GetDirectoryName(typeof(torch).Assembly.Location);
        if (!string.IsNullOrEmpty(tsDir))
        {
            candidates.Add(tsDir);
            candidates.Add(Path.GetFullPath(Path.Combine(tsDir, "..", "..", "runtimes", "linux-x64", "native")));
        }
        // prefer a folder with the packaged CPU libtorch next to LibTorchSharp; a build without it (SafeCoDeTorchBackend=external)
        // only has LibTorchSharp and must get libtorch from SAFECODE_LIBTORCH / python3.
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, "libLibTorchSharp.so")) && File.Exists(Path.Combine(c, "libtorch_cpu.so")))
                return Path.GetFullPath(c);
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, "libLibTorchSharp.so")))
                return Path.GetFullPath(c);
        throw new NativeRuntimeException(
            "libLibTorchSharp.so was not found next to the application (looked in: " +
            string.Join(", ", candidates.Distinct()) + "). Build with the libtorch-cpu-linux-x64 package referenced.");
    }

    private static (string? dir, string? source, string reason) FindCudaLibTorch(string? explicitDir)
    {
        static bool HasCuda(string d) => File.Exists(Path.Combine(d, "libtorch_cuda.so")) && File.Exists(Path.Combine(d, "libc10_cuda.so"));
        if (!string.IsNullOrWhiteSpace(explicitDir))
            return HasCuda(explicitDir) ? (Path.GetFullPath(explicitDir), "option LibTorchDir", "")
                : (null, null, $"{explicitDir} has no libtorch_cuda.so / libc10_cuda.so");
        var env = Environment.GetEnvironmentVariable("SAFECODE_LIBTORCH");
        if (!string.IsNullOrWhiteSpace(env))
            return HasCuda(env) ? (Path.GetFullPath(env), "SAFECODE_LIBTORCH", "")
                : (null, null, $"SAFECODE_LIBTORCH={env} has no libtorch_cuda.so / libc10_cuda.so");
        var py = PythonTorchLibDir(out var pyWhy);
        if (py is null) return (null, null, "SAFECODE_LIBTORCH is not set and " + pyWhy);
        return HasCuda(py) ? (py, "python3 torch", "")
            : (null, null, $"SAFECODE_LIBTORCH is not set and python3's torch at {py} is a CPU-only build");
    }

    private static string? PythonTorchLibDir(out string why)
    {
        try
        {
            var psi = new ProcessStartInfo("python3")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            psi.ArgumentList.Add("-c");
            // find_spec locates the package without importing it (importing torch takes seconds).
            psi.ArgumentList.Add("import importlib.util,os;s=importlib.util.find_spec('torch');print(os.path.join(os.path.dirname(s.origin),'lib') if s and s.origin else '')");
            using var p = Process.Start(psi);
            if (p is null) { why = "python3 could not be started"; return null; }
            string output = p.StandardOutput.ReadToEnd().Trim();
            if (!p.WaitForExit(20_000)) { try { p.Kill(); } catch { } why = "python3 did not answer"; return null; }
            if (output.Length == 0 || !Directory.Exists(output)) { why = "python3 has no torch package"; return null; }
            why = ""; return output;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            why = "no python3 on PATH"; return null;
        }
    }

    private static (string compatLib, string patchedLts) PrepareCompat(byte[] ltsBytes, string? cacheDir)
    {
        string src = ReadResource("native.stdcxx-compat.cpp"), map = ReadResource("native.stdcxx-compat.map");
        string key = Convert.ToHexString(SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes(src + "\0" + map + "\0" + Convert.ToHexString(SHA256.HashData(ltsBytes)))))[..16].ToLowerInvariant();
        string root = cacheDir ?? Environment.GetEnvironmentVariable("SAFECODE_NATIVE_CACHE") ?? DefaultCacheRoot();
        string dir = Path.Combine(root, key);
        Directory.CreateDirectory(dir);
        string compatLib = PrebuiltCompatShim() ?? Path.Combine(dir, "libsafecode_stdcxx_compat.so");
        string patched = Path.Combine(dir, "libLibTorchSharp.so");

        if (!File.Exists(compatLib)) // no prebuilt shim from the package: compile it once into the cache
        {
            string srcPath = Path.Combine(dir, "ios_base_compat.cpp"), mapPath = Path.Combine(dir, "ios_base_compat.map");
            File.WriteAllText(srcPath, src);
            File.WriteAllText(mapPath, map);
            string tmp = compatLib + "." + Environment.ProcessId + ".tmp";
            RunCompiler(["-shared", "-fPIC", "-O2", "-Wl,--version-script=" + mapPath, "-o", tmp, srcPath]);
            File.Move(tmp, compatLib, overwrite: true);
        }
        if (!File.Exists(patched))
        {
            var copy = (byte[])ltsBytes.Clone();
            ElfVersionPatcher.MarkWeak(copy, IosInitVersion);
            string tmp = patched + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(tmp, copy);
            File.Move(tmp, patched, overwrite: true);
        }
        return (compatLib, patched);
    }

    /// <summary>File name of the libstdc++ compat shim, prebuilt into the NuGet package by <c>dotnet pack</c>.</summary>
    public const string CompatShimFileName = "libsafecode_stdcxx_compat.so";

    /// <summary>
    /// The shim <c>dotnet pack</c> compiled into the package's runtimes/linux-x64/native/, as an app (build output,
    /// publish folder, or the package folder itself) has it; null when there is none, and the shim is compiled.
    /// </summary>
    internal static string? PrebuiltCompatShim()
    {
        var dirs = new List<string> { AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native") };
        var asm = Path.GetDirectoryName(typeof(NativeRuntime).Assembly.Location);
        if (!string.IsNullOrEmpty(asm))
        {
            dirs.Add(asm);
            dirs.Add(Path.GetFullPath(Path.Combine(asm, "..", "..", "runtimes", "linux-x64", "native"))); // lib/net10.0 → package root
        }
        return dirs.Select(d => Path.Combine(d, CompatShimFileName)).FirstOrDefault(File.Exists);
    }

    private static void RunCompiler(IReadOnlyList<string> args)
    {
        string compiler = Environment.GetEnvironmentVariable("CXX") is { Length: > 0 } cxx ? cxx : "g++";
        var psi = new ProcessStartInfo(compiler) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process? p;
        try { p = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new NativeRuntimeException(
                $"The system libstdc++ lacks {IosInitVersion}, which TorchSharp's native library needs, and the compat shim " +
                $"must be compiled, but the C++ compiler '{compiler}' was not found. Install g++ (Debian/Ubuntu: apt-get install g++) " +
                "or set CXX to a C++ compiler.");
        }
        using (p)
        {
            string err = p!.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new NativeRuntimeException($"compiling the libstdc++ compat shim with {compiler} failed (exit {p.ExitCode}): {err.Trim()}");
        }
    }

    private static string DefaultCacheRoot()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(string.IsNullOrEmpty(home) ? Path.GetTempPath() : home, ".cache");
        return Path.Combine(root, "safecode", "native");
    }

    private static string ReadResource(string name)
    {
        using var s = typeof(NativeRuntime).Assembly.GetManifestResourceStream(name)
            ?? throw new NativeRuntimeException($"embedded resource {name} is missing from SafeCoDe.Torch.dll");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }
}

/// <summary>What the native runtime loaded, from where, and why.</summary>
public sealed record RuntimeReport(
    string Backend,
    string LibTorchDir,
    string LibTorchSource,
    string LibTorchSharpPath,
    bool CompatUsed,
    string? CompatLibrary,
    string CompatReason,
    string? CudaUnavailableReason,
    IReadOnlyList<CudaDeviceInfo> CudaDevices);

/// <summary>One CUDA device as the driver reports it.</summary>
public sealed record CudaDeviceInfo(int Index, string Name, long TotalBytes, long FreeBytes);
