using System.CommandLine;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Runtime;

namespace SafeCoDe.Cli;

/// <summary><c>safecode doctor</c>: which native runtime loaded, from where, and whether kernels run.</summary>
public static class DoctorCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var device = CliOptions.Device();
        var json = CliOptions.Json();
        var cmd = new Command("doctor", """
            Show the native runtime: backend, which libtorch was loaded and from where, whether the libstdc++ compat
            path was used, CUDA devices and memory, or why CUDA is not usable. Runs a small matmul on every device.
            """) { device, json };
        Cli.SetExamples(cmd, "safecode doctor", "safecode doctor --device cuda --json");
        cmd.SetHandler((p, io) => Run(RuntimeOptions.ParseDevice(p.GetValue(device)!), p.GetValue(json), io.Out));
        return cmd;
    }

    private static int Run(DeviceRequest device, bool json, TextWriter o)
    {
        var r = NativeRuntime.Initialize(new RuntimeOptions { Device = device });
        var ok = RuntimeSmokeTest(r);
        if (json)
        {
            o.WriteLine(CliJson.Write(new
            {
                backend = r.Backend, libtorch_dir = r.LibTorchDir, libtorch_source = r.LibTorchSource, libtorchsharp = r.LibTorchSharpPath,
                compat_used = r.CompatUsed, compat_library = r.CompatLibrary, compat_reason = r.CompatReason,
                cuda_unavailable_reason = r.CudaUnavailableReason, torchsharp_libtorch = TorchSharp.torch.__version__,
                cuda_devices = r.CudaDevices.Select(d => new { index = d.Index, name = d.Name, total_bytes = d.TotalBytes, free_bytes = d.FreeBytes }),
                smoke_test = ok,
            }));
        }
        else
        {
            o.WriteLine($"backend        {r.Backend}");
            o.WriteLine($"libtorch       {r.LibTorchDir}");
            o.WriteLine($"  from         {r.LibTorchSource} (TorchSharp built for libtorch {TorchSharp.torch.__version__})");
            o.WriteLine($"LibTorchSharp  {r.LibTorchSharpPath}");
            o.WriteLine($"compat path    {(r.CompatUsed ? "used" : "not used")}: {r.CompatReason}");
            if (r.CompatLibrary is not null) o.WriteLine($"  shim         {r.CompatLibrary}");
            if (r.CudaDevices.Count == 0) o.WriteLine($"cuda           not usable: {r.CudaUnavailableReason ?? "unknown"}");
            foreach (var d in r.CudaDevices)
                o.WriteLine($"cuda:{d.Index}         {d.Name}  {(d.TotalBytes < 0 ? "memory unknown" : $"{InspectReport.HumanBytes(d.FreeBytes)} free of {InspectReport.HumanBytes(d.TotalBytes)}")}");
            o.WriteLine($"smoke test     {ok}");
        }
        return ok.StartsWith("ok") ? ExitCodes.Ok : ExitCodes.Runtime;
    }

    /// <summary>A matmul on every available device, so "doctor" proves the kernels run, not only that libraries loaded.</summary>
    private static string RuntimeSmokeTest(RuntimeReport r)
    {
        try
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            var devices = new List<TorchSharp.torch.Device> { TorchSharp.torch.CPU };
            if (r.Backend == "cuda") devices.Add(TorchSharp.torch.CUDA);
            foreach (var d in devices)
            {
                var x = TorchSharp.torch.ones(64, 64, device: d);
                var s = x.matmul(x).sum().item<float>();
                if (s != 64f * 64 * 64) return $"FAILED on {d}: matmul sum {s}";
            }
            return "ok (matmul on " + string.Join(", ", devices.Select(d => d.ToString())) + ")";
        }
        catch (Exception ex) { return "FAILED: " + ex.Message; }
    }
}
