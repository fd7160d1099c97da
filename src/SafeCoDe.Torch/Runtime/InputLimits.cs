using System.Runtime.InteropServices;
using System.Text;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// The one place that says how much input the library accepts. Every boundary reads its limit from
/// <see cref="Current"/> (files through <see cref="BoundedFile"/>, config values through
/// <c>Checkpoints.ConfigLimits</c>, tokenizer files, prompts, options), so a small hostile input cannot make the
/// process use unbounded memory or time. The defaults fit every supported checkpoint with a wide margin; raise them
/// for unusual models by setting <see cref="Current"/> (e.g. <c>InputLimits.Current = InputLimits.Default with { … }</c>)
/// before loading. Documented in docs/security.md.
/// </summary>
public sealed record InputLimits
{
    /// <summary>The defaults.</summary>
    public static InputLimits Default { get; } = new();

    private static InputLimits _current = Default;
    /// <summary>The limits in force for the process (default <see cref="Default"/>).</summary>
    public static InputLimits Current
    {
        get => Volatile.Read(ref _current);
        set => Volatile.Write(ref _current, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>config.json, preprocessor/generation/tokenizer_config.json, shard index, chat template files (default 16 MiB).</summary>
    public long MaxConfigFileBytes { get; init; } = 16L << 20;
    /// <summary>tokenizer.json, tokenizer.model, vocab.json, merges.txt, vocab.txt (default 128 MiB).</summary>
    public long MaxTokenizerFileBytes { get; init; } = 128L << 20;
    /// <summary>A judge cache file (default 256 MiB).</summary>
    public long MaxCacheFileBytes { get; init; } = 256L << 20;
    /// <summary>Largest vocabulary / token id + 1 a tokenizer or config may declare (default 4,194,304).</summary>
    public int MaxVocabSize { get; init; } = 1 << 22;
    /// <summary>Time one regular expression from a tokenizer file may take on one input (default 2 s).</summary>
    public TimeSpan RegexTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>
    /// Largest image a preprocessor may resize to, in pixels (default 33,554,432: a 2000×9 strip resized to LLaVA's
    /// 336 shortest edge is 74,666×336 = 25 M; Qwen2-VL's default max_pixels is 12.8 M).
    /// </summary>
    public long MaxProcessedPixels { get; init; } = 1L << 25;
    /// <summary>Longest prompt or system prompt in characters, checked before tokenising (default 262,144).</summary>
    public int MaxPromptChars { get; init; } = 1 << 18;
    /// <summary>Largest number of new tokens a request may ask for (also bounded by the model's context; default 65,536).</summary>
    public int MaxNewTokens { get; init; } = 1 << 16;
    /// <summary>Allow symbolic links in a model folder that point outside it (default false; Hugging Face cache blobs are always allowed).</summary>
    public bool AllowExternalLinks { get; init; }

    /// <summary>A benchmark's JSON or CSV file, a run folder's run.json, a judge cache read whole (default 256 MiB).</summary>
    public long MaxDataFileBytes { get; init; } = 256L << 20;
    /// <summary>One line of a JSON Lines file: a prompt set, records.jsonl, problems.jsonl (default 16 MiB).</summary>
    public long MaxJsonlLineBytes { get; init; } = 16L << 20;
    /// <summary>Entries a folder walk may visit (the search for a benchmark's parquet shards; default 100,000).</summary>
    public int MaxWalkEntries { get; init; } = 100_000;
    /// <summary>Folder levels a walk may descend (default 16; linked folders are never entered).</summary>
    public int MaxWalkDepth { get; init; } = 16;
    /// <summary>
    /// Let a benchmark file name files outside its data folder: absolute paths, <c>..</c> and links that lead out of
    /// it (default false: such a record is a problem record, nothing outside is read; <c>eval run --allow-outside-data</c>).
    /// Hugging Face cache snapshots may always link into their repository's <c>blobs/</c>.
    /// </summary>
    public bool AllowDataOutsideRoot { get; init; }
    /// <summary>Largest <c>safescenes --count</c> (chat queries of an evaluation world; default 10,000).</summary>
    public int MaxSceneCount { get; init; } = 10_000;
    /// <summary>Largest <c>safescenes --renders</c>, <c>--object-renders</c>, <c>--clutter-renders</c> (images per combination; default 200).</summary>
    public int MaxSceneRenders { get; init; } = 200;
}

/// <summary>An input is over a limit of <see cref="InputLimits"/> (or of the model, such as its context size).</summary>
public class InputLimitException(string message) : ArgumentException(message);

/// <summary>An input file cannot be used as one: missing, a directory, a FIFO, a device, or a link out of its folder.</summary>
public sealed class InputFileException(string path, string reason) : IOException($"{path}: {reason}")
{
    /// <summary>The file concerned.</summary>
    public string FilePath { get; } = path;
    /// <summary>Why it was refused.</summary>
    public string Reason { get; } = reason;
}

/// <summary>
/// Reads input files with a byte cap, never trusting the length the file system reports, and only when they are
/// regular files: FIFOs (which block forever), character devices such as <c>/dev/zero</c> (endless) and directories
/// are refused before they are opened.
/// </summary>
public static class BoundedFile
{
    /// <summary>Throws <see cref="InputFileException"/> unless <paramref name="path"/> is an existing regular file (after links).</summary>
    public static void EnsureRegularFile(string path, string what = "file")
    {
        if (Directory.Exists(path)) throw new InputFileException(path, $"the {what} is a directory, not a file");
        if (!File.Exists(path)) throw new InputFileException(path, $"the {what} does not exist");
        var kind = FileKind(path);
        if (kind is not null and not "regular file")
            throw new InputFileException(path, $"the {what} is a {kind}, not a regular file");
    }

    /// <summary>Opens a regular file for reading without blocking on a FIFO (see <see cref="SafeFiles.OpenRegular"/>).</summary>
    public static FileStream OpenRead(string path, string what = "file") => SafeFiles.OpenRegular(path, what);

    /// <summary>A regular file as a stream that fails with <see cref="InputLimitException"/> past <paramref name="maxBytes"/>.</summary>
    public static CappedStream OpenCapped(string path, long maxBytes, string what = "file") => new(OpenRead(path, what), maxBytes, path, what);

    /// <summary>All bytes of a regular file, at most <paramref name="maxBytes"/> (read to the end, whatever its reported length).</summary>
    /// <exception cref="InputLimitException">The file is longer than <paramref name="maxBytes"/>.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what = "file")
    {
        using var fs = OpenRead(path, what);
        long hint = 0;
        try { hint = fs.Length; } catch (IOException) { }
        using var ms = new MemoryStream((int)Math.Clamp(hint, 0, Math.Min(maxBytes, 64L << 20)));
        var buffer = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = fs.Read(buffer, 0, buffer.Length)) > 0)
        {
            total += n;
            if (total > maxBytes)
                throw new InputLimitException($"{path}: the {what} is larger than the {Human(maxBytes)} limit (InputLimits)");
            ms.Write(buffer, 0, n);
        }
        return ms.ToArray();
    }

    /// <summary>A regular file as strict UTF-8 text (a BOM is skipped; invalid UTF-8 is an error), at most <paramref name="maxBytes"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not valid UTF-8.</exception>
    public static string ReadAllText(string path, long maxBytes, string what = "file")
    {
        var bytes = ReadAllBytes(path, maxBytes, what);
        return DecodeUtf8(bytes, path, what);
    }

    /// <summary>Strict UTF-8 decoding with a clear error naming the byte offset (not the content).</summary>
    public static string DecodeUtf8(byte[] bytes, string path, string what = "file")
    {
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        try { return Strict.GetString(bytes, start, bytes.Length - start); }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{path}: the {what} is not valid UTF-8 (invalid bytes at offset {e.Index + start})", e);
        }
    }

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    internal static string Human(long bytes) => bytes >= 1L << 40 ? $"{bytes / (double)(1L << 40):0.#} TiB" : bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.#} GiB" : bytes >= 1L << 20 ? $"{bytes / (double)(1L << 20):0.#} MiB" : $"{bytes:N0} bytes";

    /// <summary>"regular file", "directory", "FIFO", "character device", "block device", "socket"; null when unknown (not Linux).</summary>
    public static string? FileKind(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            Span<byte> buf = stackalloc byte[256];
            int rc;
            unsafe { fixed (byte* p = buf) rc = statx(-100, path, 0, 0x1 /* STATX_TYPE */, p); }
            if (rc != 0) return null;
            return KindOfMode(BitConverter.ToUInt16(buf[28..30]) & 0xF000);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return null; }
    }

    internal static string KindOfMode(int mode) => mode switch
    {
        0x8000 => "regular file", 0x4000 => "directory", 0x1000 => "FIFO", 0x2000 => "character device",
        0x6000 => "block device", 0xC000 => "socket", _ => "special file",
    };

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buf);
}

/// <summary>Checks a model folder's symbolic links: a link whose target leaves the folder is refused.</summary>
public static class ModelFolder
{
    /// <summary>
    /// Refuses links (files or folders, two levels deep) whose final target is outside <paramref name="dir"/>, unless
    /// the target lies in the Hugging Face cache's blobs folder of the same repository (snapshots/REV/x → ../../blobs/…)
    /// or <see cref="InputLimits.AllowExternalLinks"/> is set.
    /// </summary>
    public static void CheckLinks(string dir)
    {
        if (InputLimits.Current.AllowExternalLinks || !Directory.Exists(dir)) return;
        var root = Real(dir);
        var allowed = new List<string> { root };
        // the Hub cache: .../models--org--name/snapshots/<rev>/ links into .../models--org--name/blobs/
        var parent = Directory.GetParent(root);
        if (parent?.Name == "snapshots" && parent.Parent is { } repo) allowed.Add(Path.Combine(repo.FullName, "blobs"));
        Walk(new DirectoryInfo(dir), 0);

        void Walk(DirectoryInfo d, int depth)
        {
            foreach (var e in d.EnumerateFileSystemInfos())
            {
                if (e.LinkTarget is not null)
                {
                    FileSystemInfo? target;
                    try { target = e.ResolveLinkTarget(returnFinalTarget: true); }
                    catch (IOException) { target = null; }
                    var full = target is null ? null : Path.GetFullPath(target.FullName);
                    if (full is null || !allowed.Any(a => full == a || full.StartsWith(a.TrimEnd('/') + "/", StringComparison.Ordinal)))
                        throw new InputFileException(e.FullName, "is a symbolic link that leads outside the model folder (allow with InputLimits.AllowExternalLinks)");
                }
                else if (e is DirectoryInfo sub && depth < 2) Walk(sub, depth + 1);
            }
        }
    }

    private static string Real(string dir)
    {
        var info = new DirectoryInfo(Path.GetFullPath(dir));
        var t = info.LinkTarget is null ? null : info.ResolveLinkTarget(true);
        return Path.GetFullPath((t ?? info).FullName).TrimEnd('/');
    }
}

/// <summary>Checks of a request's text against the input limits, done once when a request starts (the options records check their own ranges).</summary>
public static class OptionChecks
{
    /// <summary>Prompt and system prompt within <see cref="InputLimits.MaxPromptChars"/> (checked before tokenising or judging).</summary>
    public static void CheckPromptChars(string? prompt, string? systemPrompt)
    {
        int max = InputLimits.Current.MaxPromptChars;
        if (prompt is { Length: var n } && n > max) throw new InputLimitException($"the prompt has {n:N0} characters, over the {max:N0}-character limit (InputLimits.MaxPromptChars)");
        if (systemPrompt is { Length: var m } && m > max) throw new InputLimitException($"the system prompt has {m:N0} characters, over the {max:N0}-character limit (InputLimits.MaxPromptChars)");
    }

    /// <summary>
    /// The prompt must fit the model's context, and an explicit new-token limit may not exceed it either (the KV
    /// cache is sized from both).
    /// </summary>
    /// <exception cref="InputLimitException">The prompt, or the explicit limit, is longer than the context.</exception>
    public static void CheckContext(int promptTokens, long? maxNewTokens, int contextSize)
    {
        if (contextSize <= 0) return;
        if (promptTokens > contextSize)
            throw new InputLimitException($"the prompt has {promptTokens:N0} tokens but the model's context holds {contextSize:N0}");
        if (maxNewTokens is { } n && n > contextSize)
            throw new InputLimitException($"max new tokens {n:N0} exceeds the model's context of {contextSize:N0} tokens");
    }
}
