using System.Runtime.InteropServices;

namespace SafeCoDe.Torch.Runtime;

/// <summary>The few libdl entry points the loader needs (glibc keeps them in libc.so.6 since 2.34).</summary>
internal static partial class Libdl
{
    public const int RTLD_LAZY = 0x0001;
    public const int RTLD_NOW = 0x0002;
    public const int RTLD_NOLOAD = 0x0004;
    public const int RTLD_GLOBAL = 0x0100;

    [LibraryImport("libc.so.6", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr DlOpen(string? file, int mode);

    [LibraryImport("libc.so.6", EntryPoint = "dlerror")]
    private static partial IntPtr DlErrorRaw();

    [LibraryImport("libc.so.6", EntryPoint = "dlsym", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr DlSym(IntPtr handle, string name);

    [LibraryImport("libc.so.6", EntryPoint = "dlvsym", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr DlVSym(IntPtr handle, string name, string version);

    public static string LastError()
    {
        var p = DlErrorRaw();
        return p == IntPtr.Zero ? "unknown dlopen error" : Marshal.PtrToStringUTF8(p) ?? "unknown dlopen error";
    }

    /// <summary>dlopen that throws with the loader's own message.</summary>
    public static IntPtr OpenOrThrow(string path, int mode)
    {
        var h = DlOpen(path, mode);
        if (h == IntPtr.Zero)
            throw new NativeRuntimeException($"could not load {path}: {LastError()}");
        return h;
    }
}
