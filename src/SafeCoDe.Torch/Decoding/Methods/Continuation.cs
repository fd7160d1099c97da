using SafeCoDe.Torch.Decoding.Rules;
using SafeCoDe.Torch.Decoding.Sessions;

namespace SafeCoDe.Torch.Decoding.Methods;

/// <summary>
/// The plain decoding phase every method ends with: a first rule over the session's rows (the real row, or a
/// contrast), the placeholder ban, then argmax (temperature ≤ 0) or temperature → top-k → top-p → softmax → a draw
/// with the session's generator; it stops at an end-of-sequence id or its budget.
/// </summary>
public static class Continuation
{
    /// <summary>The phase; <paramref name="first"/> defaults to the real row.</summary>
    public static DecodePhase Phase(DecodeContext context, DecodeSession session, int budget, double temperature, double topP, int topK, LogitsRule? first = null)
    {
        var chain = new RuleChain(first ?? new RealRow(), context.Ban());
        if (temperature <= 0)
            return new DecodePhase { Name = "continuation", Chain = chain, Selector = new Argmax(), Budget = budget, Eos = context.Eos };
        return new DecodePhase
        {
            Name = "continuation", Chain = chain.Then(new Temperature(temperature), new TopK(topK), new TopP(topP), new Softmax()),
            Selector = new Multinomial(session.Generator), Budget = budget, Eos = context.Eos,
        };
    }
}
