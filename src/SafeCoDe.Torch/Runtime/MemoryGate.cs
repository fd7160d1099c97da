using System.Runtime.InteropServices;

namespace SafeCoDe.Torch.Runtime;

/// <summary>
/// A budget of bytes that requests wait for in arrival order (unlike a rejecting budget): the engine's decoded
/// images take their size from it while they are decoded, judged and preprocessed, so eight 40-megapixel images sent
/// at once are worked on a few at a time instead of all at once. A request larger than the whole budget runs when it
/// is alone. When a large holder leaves, the memory it used is given back to the system (<see cref="ReturnMemory"/>),
/// so garbage of finished images does not pile up during a burst and a server's resident size falls back after it.
/// </summary>
public sealed class MemoryGate(long capacity)
{
    /// <summary>A holder of at least this many bytes gives memory back to the system when it leaves.</summary>
    public const long LargeBytes = 64L << 20;

    private readonly object _lock = new();
    private readonly LinkedList<(long Bytes, TaskCompletionSource Ready)> _waiting = new();
    private long _used;
    private static int _returning;

    /// <summary>The budget in bytes.</summary>
    public long Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "the budget must be positive");

    /// <summary>Bytes held now.</summary>
    public long InUse { get { lock (_lock) return _used; } }

    /// <summary>Waits until <paramref name="bytes"/> fit (or nothing else is held) and takes them; dispose the result to give them back.</summary>
    public async Task<IDisposable> EnterAsync(long bytes, CancellationToken cancel)
    {
        if (bytes <= 0) return Held.None;
        TaskCompletionSource ready;
        LinkedListNode<(long, TaskCompletionSource)> node;
        lock (_lock)
        {
            if (_waiting.Count == 0 && Fits(bytes)) { _used += bytes; return new Held(this, bytes); }
            ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            node = _waiting.AddLast((bytes, ready));
        }
        using (cancel.Register(() => { lock (_lock) if (node.List is not null) { _waiting.Remove(node); ready.TrySetCanceled(cancel); } }))
            await ready.Task.ConfigureAwait(false);
        return new Held(this, bytes);
    }

    private bool Fits(long bytes) => _used == 0 || _used + bytes <= Capacity;

    private void Leave(long bytes)
    {
        lock (_lock)
        {
            _used -= bytes;
            while (_waiting.First is { } first && Fits(first.Value.Bytes))
            {
                _waiting.RemoveFirst();
                _used += first.Value.Bytes;
                first.Value.Ready.TrySetResult();
            }
        }
        if (bytes >= LargeBytes) ReturnMemorySoon();
    }

    /// <summary>
    /// <see cref="ReturnMemory"/> on the thread pool a moment later; a call while one runs makes it run once more
    /// after (the last caller of a burst must not be lost to one that started in the middle of it).
    /// </summary>
    public static void ReturnMemorySoon()
    {
        // 0: idle, 1: running, 2: running and asked again
        if (Interlocked.Increment(ref _returning) > 1) { Interlocked.Exchange(ref _returning, 2); return; }
        _ = Task.Run(async () =>
        {
            do
            {
                // what the caller still holds on its way out (a response being written) is garbage by then
                await Task.Delay(200).ConfigureAwait(false);
                Volatile.Write(ref _returning, 1);
                ReturnMemory();
            }
            while (Interlocked.CompareExchange(ref _returning, 0, 1) != 1);
        });
    }

    /// <summary>
    /// A full, compacting collection that decommits what the managed heap no longer uses, then (glibc) hands the
    /// native heap's free pages back: large decoded images leave both behind.
    /// </summary>
    public static void ReturnMemory()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (!OperatingSystem.IsLinux()) return;
        try { _ = malloc_trim(0); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { } // not glibc
    }

    /// <summary>
    /// For a long-running server (glibc only): at most <paramref name="arenas"/> native heaps, and blocks of a megabyte
    /// or more always mapped on their own, so they go back to the system when freed. glibc's defaults (eight heaps a
    /// core, a threshold that rises after large frees) kept 40-50 % more memory resident after a burst of large requests.
    /// </summary>
    public static void TuneNativeHeap(int arenas = 2)
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = mallopt(ArenaMax, arenas);
            _ = mallopt(MmapThreshold, 1 << 20);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { } // not glibc
    }

    private const int ArenaMax = -8, MmapThreshold = -3;

    [DllImport("libc")]
    private static extern int malloc_trim(UIntPtr pad);

    [DllImport("libc")]
    private static extern int mallopt(int param, int value);

    private sealed class Held(MemoryGate? gate, long bytes) : IDisposable
    {
        public static readonly Held None = new(null, 0);
        private int _done;

        public void Dispose()
        {
            if (gate is null || Interlocked.Exchange(ref _done, 1) == 1) return;
            gate.Leave(bytes);
        }
    }
}
