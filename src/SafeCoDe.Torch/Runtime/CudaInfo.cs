using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;

namespace SafeCoDe.Torch.Runtime;

/// <summary>CUDA device names and memory, read from the CUDA runtime libtorch already loaded (and nvidia-smi for names).</summary>
internal static class CudaInfo
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int MemGetInfo(out nuint free, out nuint total);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int SetDevice(int device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetDevice(out int device);

    public static IReadOnlyList<CudaDeviceInfo> Devices()
    {
        int n = torch.cuda.device_count();
        var names = NvidiaSmiNames();
        var result = new List<CudaDeviceInfo>();
        IntPtr rt = IntPtr.Zero;
        foreach (var so in new[] { "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so" })
            if ((rt = Libdl.DlOpen(so, Libdl.RTLD_LAZY | Libdl.RTLD_NOLOAD)) != IntPtr.Zero) break;
        MemGetInfo? memInfo = null; SetDevice? setDev = null; GetDevice? getDev = null;
        if (rt != IntPtr.Zero)
        {
            var a = Libdl.DlSym(rt, "cudaMemGetInfo"); var b = Libdl.DlSym(rt, "cudaSetDevice"); var c = Libdl.DlSym(rt, "cudaGetDevice");
            if (a != IntPtr.Zero && b != IntPtr.Zero && c != IntPtr.Zero)
            {
                memInfo = Marshal.GetDelegateForFunctionPointer<MemGetInfo>(a);
                setDev = Marshal.GetDelegateForFunctionPointer<SetDevice>(b);
                getDev = Marshal.GetDelegateForFunctionPointer<GetDevice>(c);
            }
        }
        int current = 0;
        getDev?.Invoke(out current);
        for (int i = 0; i < n; i++)
        {
            long total = -1, free = -1;
            if (memInfo is not null && setDev!(i) == 0 && memInfo(out var f, out var t) == 0) { total = (long)t; free = (long)f; }
            result.Add(new CudaDeviceInfo(i, i < names.Count ? names[i] : "CUDA device " + i, total, free));
        }
        setDev?.Invoke(current);
        return result;
    }

    private static List<string> NvidiaSmiNames()
    {
        try
        {
            var psi = new ProcessStartInfo("nvidia-smi", "--query-gpu=name --format=csv,noheader")
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            var text = p.StandardOutput.ReadToEnd();
            p.WaitForExit(10_000);
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        }
        catch { return []; }
    }
}
