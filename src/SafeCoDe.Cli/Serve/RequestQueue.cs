namespace SafeCoDe.Cli.Serve;

/// <summary>
/// Admission and scheduling of generation requests. <see cref="TryAdmit"/> admits a request while fewer than the
/// queue length are admitted (else the caller answers 429); <see cref="Ticket.WaitTurnAsync"/> waits for one of the
/// execution slots. The slots are the requests the engine runs at once (<c>--max-batch-rows</c> / 2): requests
/// holding a slot decode together as rows of one batch; the HTTP layer only sees tickets.
/// </summary>
public sealed class RequestQueue
{
    private readonly SemaphoreSlim _slots;
    private readonly int _capacity;
    private int _admitted;
    private int _running;

    /// <summary>A queue of <paramref name="capacity"/> admitted requests, <paramref name="slots"/> of them running at once.</summary>
    public RequestQueue(int capacity, int slots)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), "the queue length must be at least 1");
        if (slots < 1) throw new ArgumentOutOfRangeException(nameof(slots), "at least one slot");
        _capacity = capacity;
        _slots = new SemaphoreSlim(slots, slots);
    }

    /// <summary>Requests admitted (waiting or running).</summary>
    public int Admitted => Volatile.Read(ref _admitted);
    /// <summary>Requests running.</summary>
    public int Running => Volatile.Read(ref _running);
    /// <summary>Requests waiting for a slot.</summary>
    public int Waiting => Math.Max(0, Admitted - Running);
    /// <summary>The queue length.</summary>
    public int Capacity => _capacity;

    /// <summary>Admits a request, or returns null when the queue is full.</summary>
    public Ticket? TryAdmit()
    {
        while (true)
        {
            int n = Volatile.Read(ref _admitted);
            if (n >= _capacity) return null;
            if (Interlocked.CompareExchange(ref _admitted, n + 1, n) == n) return new Ticket(this);
        }
    }

    /// <summary>An admitted request; dispose it when the request ends (frees its place and its slot).</summary>
    public sealed class Ticket : IDisposable
    {
        private readonly RequestQueue _q;
        private bool _hasSlot, _disposed;

        internal Ticket(RequestQueue q) => _q = q;

        /// <summary>Waits for an execution slot (cancellable: a client that leaves while waiting leaves the queue).</summary>
        public async Task WaitTurnAsync(CancellationToken cancel)
        {
            await _q._slots.WaitAsync(cancel).ConfigureAwait(false);
            _hasSlot = true;
            Interlocked.Increment(ref _q._running);
        }

        /// <summary>Frees the slot and the place in the queue.</summary>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (_hasSlot)
            {
                Interlocked.Decrement(ref _q._running);
                _q._slots.Release();
            }
            Interlocked.Decrement(ref _q._admitted);
        }
    }
}
