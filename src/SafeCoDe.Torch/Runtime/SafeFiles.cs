using System.IO.Enumeration;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// File-system primitives the input checks share: opening a file only when the opened descriptor is a regular file
/// (so a FIFO swapped in after a check cannot block the open), the real path of a file (every link and <c>..</c>
/// resolved), and a bounded walk of a folder tree that never follows linked folders.
/// </summary>
public static class SafeFiles
{
    private const int ReadOnly = 0, NonBlocking = 0x800, CloseOnExec = 0x80000, SetFlags = 4, EmptyPath = 0x1000;

    /// <summary>
    /// Opens <paramref name="path"/> for reading if it is a regular file. On Linux the open itself does not block
    /// (O_NONBLOCK: a FIFO without a writer returns at once) and the type is checked on the opened descriptor, so
    /// nothing swapped in between a check and the open is read.
    /// </summary>
    /// <exception cref="InputFileException">Missing, a directory, a FIFO, a device, a socket.</exception>
    public static FileStream OpenRegular(string path, string what = "file")
    {
        BoundedFile.EnsureRegularFile(path, what);
        if (!OperatingSystem.IsLinux()) return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        int fd = open(path, ReadOnly | NonBlocking | CloseOnExec);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                2 => new InputFileException(path, $"the {what} does not exist"),
                13 => new UnauthorizedAccessException($"{path}: permission denied"),
                _ => new IOException($"{path}: the {what} cannot be opened (errno {errno})"),
            };
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        var kind = KindOf(fd);
        if (kind is not null and not "regular file")
        {
            handle.Dispose();
            throw new InputFileException(path, $"the {what} is a {kind}, not a regular file");
        }
        _ = fcntl(fd, SetFlags, 0); // back to blocking reads: a regular file never blocks, but FileStream expects it
        return new FileStream(handle, FileAccess.Read, 1 << 16);
    }

    /// <summary>
    /// <paramref name="path"/> with every symbolic link and <c>..</c> resolved (the file must exist); null when it
    /// cannot be resolved (missing, a loop, no permission). Off Linux: the full path with the final link resolved.
    /// </summary>
    public static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            try
            {
                var full = Path.GetFullPath(path);
                var info = new FileInfo(full);
                var target = info.LinkTarget is null ? null : info.ResolveLinkTarget(true);
                return target?.FullName ?? (File.Exists(full) || Directory.Exists(full) ? full : null);
            }
            catch (IOException) { return null; }
        }
        var p = realpath(path, IntPtr.Zero);
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { free(p); }
    }

    /// <summary>True when <paramref name="path"/> (both real paths) is <paramref name="root"/> or lies below it.</summary>
    public static bool IsUnder(string path, string root) =>
        path == root || path.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>
    /// The files below <paramref name="root"/> whose names match <paramref name="pattern"/>, depth first in ordinal
    /// order. Linked folders are not entered (a link loop cannot make the walk endless), hidden entries (a leading '.')
    /// are skipped, and the walk stops with <see cref="InputLimitException"/> past
    /// <see cref="InputLimits.MaxWalkDepth"/> levels or <see cref="InputLimits.MaxWalkEntries"/> entries.
    /// </summary>
    public static List<string> Walk(string root, string pattern)
    {
        var limits = InputLimits.Current;
        var found = new List<string>();
        long seen = 0;
        var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = FileAttributes.Hidden, IgnoreInaccessible = true };
        void Visit(string dir, int depth)
        {
            foreach (var e in new DirectoryInfo(dir).EnumerateFileSystemInfos("*", options).OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                if (++seen > limits.MaxWalkEntries)
                    throw new InputLimitException($"{root}: more than {limits.MaxWalkEntries:N0} entries below it (InputLimits.MaxWalkEntries)");
                if (e.Name.StartsWith('.')) continue;
                if (e is DirectoryInfo d)
                {
                    if (d.LinkTarget is not null) continue;
                    if (depth + 1 > limits.MaxWalkDepth)
                        throw new InputLimitException($"{root}: folders nested more than {limits.MaxWalkDepth} deep (InputLimits.MaxWalkDepth)");
                    Visit(d.FullName, depth + 1);
                }
                else if (FileSystemName.MatchesSimpleExpression(pattern, e.Name)) found.Add(e.FullName);
            }
        }
        Visit(root, 0);
        return found;
    }

    private static string? KindOf(int fd)
    {
        try
        {
            Span<byte> buf = stackalloc byte[256];
            int rc;
            unsafe { fixed (byte* b = buf) rc = statx(fd, "", EmptyPath, 0x1, b); }
            if (rc != 0) return null;
            return BoundedFile.KindOfMode(BitConverter.ToUInt16(buf[28..30]) & 0xF000);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int cmd, int arg);

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buf);

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr p);
}

/// <summary>
/// A read-only view of a stream that fails once more than a cap is read: with <see cref="InputLimitException"/> naming
/// the file, or with the exception <paramref name="tooLarge"/> makes (an endpoint's reply body, say).
/// </summary>
public sealed class CappedStream(Stream inner, long maxBytes, string path, string what, Func<Exception>? tooLarge = null) : Stream
{
    private long _read;

    /// <summary>Bytes read so far.</summary>
    public long BytesRead => _read;

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));
    /// <inheritdoc/>
    public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));
    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));
    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Count(int n)
    {
        _read += n;
        if (_read > maxBytes) throw tooLarge?.Invoke() ?? new InputLimitException($"{path}: the {what} is larger than the {BoundedFile.Human(maxBytes)} limit (InputLimits)");
        return n;
    }

    /// <inheritdoc/>
    public override bool CanRead => true;
    /// <inheritdoc/>
    public override bool CanSeek => false;
    /// <inheritdoc/>
    public override bool CanWrite => false;
    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();
    /// <inheritdoc/>
    public override long Position { get => _read; set => throw new NotSupportedException(); }
    /// <inheritdoc/>
    public override void Flush() { }
    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();
    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    /// <inheritdoc/>
    protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
}

/// <summary>
/// One line of a <see cref="BoundedLines"/> read: its 1-based number, its text (null when it was longer than the cap,
/// or not valid UTF-8), where it starts in the stream, and whether a newline ended it (false only for a last line).
/// </summary>
public readonly record struct BoundedLine(int Number, string? Text, long Offset, long Bytes, bool Terminated, string? Problem);

/// <summary>
/// Reads lines without ever holding more than a cap of one line: an over-long line is skipped to its newline and
/// reported (its text is null), so one huge line costs no memory and the lines after it are still read.
/// </summary>
public static class BoundedLines
{
    private static readonly UTF8Encoding Strict = new(false, true);

    /// <summary>The lines of <paramref name="s"/>, each at most <paramref name="maxBytes"/> bytes (without the newline).</summary>
    public static IEnumerable<BoundedLine> Read(Stream s, long maxBytes)
    {
        var buffer = new byte[1 << 16];
        var line = new MemoryStream();
        long offset = 0, start = 0, length = 0;
        bool over = false;
        int number = 0, n;
        while ((n = s.Read(buffer, 0, buffer.Length)) > 0)
        {
            int from = 0;
            for (int i = 0; i < n; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                Append(buffer, from, i - from);
                yield return Make(++number, true);
                start = offset + i + 1; from = i + 1; length = 0; over = false; line.SetLength(0);
            }
            Append(buffer, from, n - from);
            offset += n;
        }
        if (length > 0) yield return Make(++number, false);

        void Append(byte[] b, int at, int count)
        {
            length += count;
            if (over) return;
            if (length > maxBytes) { over = true; line.SetLength(0); return; }
            line.Write(b, at, count);
        }
        BoundedLine Make(int no, bool terminated)
        {
            if (over) return new BoundedLine(no, null, start, length, terminated, $"line {no} is longer than the {BoundedFile.Human(maxBytes)} limit (InputLimits.MaxJsonlLineBytes)");
            var bytes = line.GetBuffer().AsSpan(0, (int)line.Length);
            if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
            if (no == 1 && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
            try { return new BoundedLine(no, Strict.GetString(bytes), start, length, terminated, null); }
            catch (DecoderFallbackException e) { return new BoundedLine(no, null, start, length, terminated, $"line {no} is not valid UTF-8 (byte {e.Index})"); }
        }
    }

    /// <summary>Lines of text of at most <paramref name="maxChars"/> characters; a longer line's text is null (skipped to its end).</summary>
    public static IEnumerable<(int Number, string? Text)> Read(TextReader reader, int maxChars)
    {
        var sb = new StringBuilder();
        var buffer = new char[1 << 14];
        int number = 0, n;
        bool over = false, any = false;
        while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                char c = buffer[i];
                if (c == '\n')
                {
                    yield return (++number, Text());
                    sb.Clear(); over = false; any = false;
                    continue;
                }
                any = true;
                if (over) continue;
                if (sb.Length > maxChars) { over = true; sb.Clear(); continue; } // one spare for a '\r'
                sb.Append(c);
            }
        }
        if (any) yield return (++number, Text());

        string? Text()
        {
            if (over) return null;
            var t = sb.ToString().TrimEnd('\r');
            return t.Length > maxChars ? null : t;
        }
    }
}
