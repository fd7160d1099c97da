namespace SafeCoDe.Cli;

internal static class VerifyCommand
{
    public static int Run(Args a, TextWriter o, TextWriter e)
    {
        var family = "unknown";
        o.WriteLine($"verify: FAIL family={family} error=not implemented yet");
        return 1;
    }
}
