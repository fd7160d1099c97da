using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;

namespace SafeCoDe.Eval.Tests;

public class ProjectSmokeTests
{
    [Test]
    public void ReadItemHoldsExactlyOneOfSampleOrProblem()
    {
        var bad = ReadItem.Bad("x/1", "field 'queries' is null");
        Assert.That(bad.Sample, Is.Null);
        Assert.That(bad.Problem!.Reason, Does.Contain("queries"));
    }
}
