using SafeCoDe.Torch.Decoding.Scheduling;
using SafeCoDe.Torch.Decoding.Sessions;
using SafeCoDe.Torch.Models;
using SafeCoDe.Torch.Safety;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// Decodes a prefilled session with its method's phases through a scheduler: the engine's (shared with every other
/// request) or, for a one-off caller, a private one that runs it alone.
/// </summary>
public static class MethodDecoder
{
    /// <summary>
    /// Decodes <paramref name="session"/> (prefilled with the branches the method needs) with the method of
    /// <paramref name="options"/>, alone; <paramref name="refusal"/> is the refusal token space of the default phrases.
    /// </summary>
    public static DecodeOutcome Decode(IBackbone model, DecodeSession session, Verdict verdict, DecodingOptions options, ITokenCodec codec,
        RefusalTokens refusal, IReadOnlyList<long> eosIds, int promptLength, Action<long>? onToken = null, CancellationToken cancel = default,
        IReadOnlyList<long>? bannedIds = null)
    {
        options.Validate();
        using var scheduler = new DecodeScheduler(model, Math.Max(2, session.Rows));
        return Decode(scheduler, model, session, verdict, options, codec, refusal, eosIds, promptLength, onToken, cancel, bannedIds);
    }

    /// <summary><see cref="Decode(IBackbone, DecodeSession, Verdict, DecodingOptions, ITokenCodec, RefusalTokens, IReadOnlyList{long}, int, Action{long}?, CancellationToken, IReadOnlyList{long}?)"/> on a shared scheduler (options already validated).</summary>
    internal static DecodeOutcome Decode(DecodeScheduler scheduler, IBackbone model, DecodeSession session, Verdict verdict, DecodingOptions options, ITokenCodec codec,
        RefusalTokens refusal, IReadOnlyList<long> eosIds, int promptLength, Action<long>? onToken, CancellationToken cancel, IReadOnlyList<long>? bannedIds)
    {
        using var context = new DecodeContext(options, model.Family, model.VocabSize, model.Device, codec, eosIds.ToHashSet(), bannedIds ?? [], verdict, promptLength,
            phrases => ReferenceEquals(phrases, refusal.Phrases) || phrases.SequenceEqual(refusal.Phrases) ? refusal : new RefusalTokens(phrases, codec, model.VocabSize));
        session.Emit = onToken;
        session.Cancel = cancel;
        // a CPU generator and CPU draws: the same seed gives the same tokens on every device
        session.Generator ??= options.Greedy ? null : new TorchSharp.torch.Generator(options.Seed is { } s ? (ulong)s : (ulong)Random.Shared.NextInt64());
        cancel.ThrowIfCancellationRequested();
        session.Begin(DecodingMethods.Of(options).Plan(context, session));
        scheduler.Decode(session);
        return DecodeOutcome.Of(session, context.Budget);
    }
}
