using NUnit.Framework;
using SafeCoDe.Torch.Models.Qwen;

namespace SafeCoDe.Torch.Tests.Models.Qwen;

/// <summary>M-RoPE position ids worked out by hand from HF's get_rope_index rules.</summary>
public class MRopeIndexTests
{
    private const long P = -1, T = 7, VS = 8, VE = 9, I = 5; // pad, text, vision start/end, image placeholder

    // Row 0: two pads, text, one image of grid (1,4,6) = 2x3 merged tokens, text. Row 1: an image of grid (1,2,2) (one token)
    // and a two-frame image of grid (2,2,4) = 2 frames x 1x2 merged tokens.
    private static readonly long[][] Rows =
    [
        [P, P, T, T, VS, I, I, I, I, I, I, VE, T],
        [T, VS, I, VE, VS, I, I, I, I, VE, T, T, T],
    ];
    private static readonly List<(long, long, long)> Grids = [(1, 4, 6), (1, 2, 2), (2, 2, 4)];

    private static (bool[] valid, bool[] image) Flags(long[][] rows) =>
        (rows.SelectMany(r => r.Select(x => x != P)).ToArray(), rows.SelectMany(r => r.Select(x => x == I)).ToArray());

    private static long[] Axis(long[] pos, int axis, int row, int seq) => pos.Skip(axis * Rows.Length * seq + row * seq).Take(seq).ToArray();

    [TestCase(true)]
    [TestCase(false)]
    public void ImagesAndTextAndLeftPadding(bool temporalIndex)
    {
        var (valid, image) = Flags(Rows);
        var (pos, next) = MRopeIndex.Compute(2, 13, valid, image, Grids, 2, temporalIndex);
        // row 0: padding at 1; text 0..2 (vision start included); image at base 3 over a 2x3 grid; text resumes at 3 + 2 + 1
        Assert.That(Axis(pos, 0, 0, 13), Is.EqualTo(new long[] { 1, 1, 0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7 }));
        Assert.That(Axis(pos, 1, 0, 13), Is.EqualTo(new long[] { 1, 1, 0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7 }));
        Assert.That(Axis(pos, 2, 0, 13), Is.EqualTo(new long[] { 1, 1, 0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7 }));
        // row 1: a one-token image at 2; the two-frame image at base 5 (Qwen2-VL numbers its frames, Qwen2.5-VL's
        // seconds-per-grid is 0 for images); text resumes one past the largest position
        long[] t1 = temporalIndex ? [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 9, 10] : [0, 1, 2, 3, 4, 5, 5, 5, 5, 7, 8, 9, 10];
        Assert.That(Axis(pos, 0, 1, 13), Is.EqualTo(t1));
        Assert.That(Axis(pos, 1, 1, 13), Is.EqualTo(new long[] { 0, 1, 2, 3, 4, 5, 5, 5, 5, 7, 8, 9, 10 }));
        Assert.That(Axis(pos, 2, 1, 13), Is.EqualTo(new long[] { 0, 1, 2, 3, 4, 5, 6, 5, 6, 7, 8, 9, 10 }));
        Assert.That(next, Is.EqualTo(new long[] { 8, 11 }), "next position = largest + 1 (rope delta + cache length)");
    }

    [Test]
    public void TextOnly_NoImageInput_IsCumulativeWithHFsPaddingRule()
    {
        long[][] rows = [[P, P, P, T], [T, T, T, T]];
        var (valid, image) = Flags(rows);
        var (pos, next) = MRopeIndex.Compute(2, 4, valid, image, null, 2, true);
        Assert.That(pos.Take(8).ToArray(), Is.EqualTo(new long[] { 1, 1, 1, 0, 0, 1, 2, 3 }));
        // HF's no-image branch takes the row maximum over the padding's position 1 as well
        Assert.That(next, Is.EqualTo(new long[] { 2, 4 }));
    }

    [Test]
    public void TooFewImageTokens_Throws()
    {
        long[][] rows = [[T, VS, I, I, I, I, I, VE, T]]; // 5 placeholders for a 6-token grid
        var (valid, image) = Flags(rows);
        var ex = Assert.Throws<ArgumentException>(() => MRopeIndex.Compute(1, 9, valid, image, [(1, 4, 6)], 2, true));
        Assert.That(ex!.Message, Does.Contain("needs 6"));
    }

    [Test]
    public void MoreGridsThanImages_Throws()
    {
        long[][] rows = [[T, VS, I, VE, T]];
        var (valid, image) = Flags(rows);
        var ex = Assert.Throws<ArgumentException>(() => MRopeIndex.Compute(1, 5, valid, image, [(1, 2, 2), (1, 2, 2)], 2, true));
        Assert.That(ex!.Message, Does.Contain("2 image(s)"));
    }

    [Test]
    public void ImageTokensWithoutGrids_Throw()
    {
        long[][] rows = [[T, VS, I, VE, T]];
        var (valid, image) = Flags(rows);
        Assert.Throws<ArgumentException>(() => MRopeIndex.Compute(1, 5, valid, image, null, 2, true));
    }
}
