using NUnit.Framework;
using SafeCoDe.Eval.Benchmarks;

namespace SafeCoDe.Eval.Tests;

/// <summary>The shared reader behaviour: duplicates, the id filter, laziness, and failures nobody foresaw.</summary>
public class ReaderBaseTests
{
    private sealed class ScriptedReader(Func<IEnumerable<Candidate>> script, Action? onOpen = null) : BenchmarkReaderBase
    {
        public int Built;
        public override string Name => "scripted";
        public override string Layout => "nothing";
        protected override IEnumerable<Candidate> Open(string root, ReaderSelection selection)
        {
            onOpen?.Invoke();
            return script();
        }
        public Candidate Ok(string id, string position) => Candidate.Ok(id, position, () =>
        {
            Built++;
            return ReadItem.Of(new EvalSample(id, Name, [new EvalPrompt(SampleKeys.Answer, "q", null)],
                new Dictionary<string, string>(), new Dictionary<string, string>()));
        });
    }

    [Test]
    public void AFailureInsideAReaderIsReportedAndWhatWasReadStands()
    {
        ScriptedReader? r = null;
        IEnumerable<Candidate> Script()
        {
            yield return r!.Ok("a", "f#0");
            yield return r!.Ok("b", "f#1");
            throw new IOException("disk went away");
        }
        r = new ScriptedReader(Script);
        var items = r.Read("x", ReaderSelection.All).ToList();
        Assert.That(items.Where(i => i.Sample is not null).Select(i => i.Sample!.Id), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(items.Last().Problem!.Id, Is.EqualTo("scripted#read-error"));
        Assert.That(items.Last().Problem!.Reason, Does.Contain("disk went away"));
    }

    [Test]
    public void ABuilderThatThrowsBecomesAProblemUnderTheId()
    {
        var r = new ScriptedReader(() => [Candidate.Ok("a", "f#0", () => throw new ArgumentException("bad path chars"))]);
        var item = r.Read("x", ReaderSelection.All).Single();
        Assert.That(item.Problem, Is.EqualTo(new SampleProblem("a", "ArgumentException: bad path chars")));
    }

    [Test]
    public void DuplicatesAreFoundBeforeTheFilterSoEveryShardAgrees()
    {
        ScriptedReader? r = null;
        r = new ScriptedReader(() => [r!.Ok("a", "f#0"), r!.Ok("b", "f#1"), r!.Ok("a", "f#2"), Candidate.Bad(null, "f#3", "field 'id' is null")]);
        // a shard that does not own "a" still must not run the second "a"
        var onlyOthers = r.Read("x", new ReaderSelection(Include: id => id != "a")).ToList();
        Assert.That(onlyOthers.Select(i => i.Sample?.Id ?? i.Problem!.Id), Is.EqualTo(new[] { "b", "f#2", "f#3" }));
        Assert.That(r.Built, Is.EqualTo(1), "only the included sample was built (its images checked)");
    }

    [Test]
    public void TheLayoutIsCheckedWhenReadIsCalledAndRecordsAreReadLazily()
    {
        int produced = 0;
        ScriptedReader? r = null;
        IEnumerable<Candidate> Script()
        {
            for (int i = 0; i < 1000; i++) { produced++; yield return r!.Ok($"s{i}", $"f#{i}"); }
        }
        r = new ScriptedReader(Script, onOpen: () => throw new BenchmarkLayoutException("expected x"));
        Assert.Throws<BenchmarkLayoutException>(() => r.Read("x", ReaderSelection.All));
        r = new ScriptedReader(Script);
        var first = r.Read("x", ReaderSelection.All).Take(3).ToList();
        Assert.That(first, Has.Count.EqualTo(3));
        Assert.That(produced, Is.EqualTo(3));
    }
}
