using System.Text;
using NUnit.Framework;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Torch.Tests.Processing.Tokenizers;

/// <summary>Our NFC/NFD/NFKC/NFKD against Unicode 15's NormalizationTest.txt (parts 0 and 1, 17k lines).</summary>
public sealed class UnicodeNormalizationTests
{
    [Test]
    public void Conformance_with_NormalizationTest()
    {
        var lines = TokenizerTestData.ReadGzLines(TestPaths.TestData("unicode", "NormalizationTest-part0-1.txt.gz")).ToList();
        Assert.That(lines, Has.Count.GreaterThan(17000));
        var failures = new List<string>();
        foreach (var line in lines.Where(l => !l.StartsWith('@')))
        {
            var c = line.Split(';').Take(5).Select(f => string.Concat(f.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(h => char.ConvertFromUtf32(Convert.ToInt32(h, 16))))).ToArray();
            void Check(string form, string input, NormalizationForm f, string want)
            {
                var got = UnicodeNormalization.Normalize(input, f);
                if (got != want) failures.Add($"{line}: {form}({Hex(input)}) = {Hex(got)}, want {Hex(want)}");
            }
            // the invariants stated in NormalizationTest.txt
            foreach (var x in new[] { c[0], c[1], c[2] }) { Check("NFC", x, NormalizationForm.FormC, c[1]); Check("NFD", x, NormalizationForm.FormD, c[2]); }
            foreach (var x in c) { Check("NFKC", x, NormalizationForm.FormKC, c[3]); Check("NFKD", x, NormalizationForm.FormKD, c[4]); }
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} failures\n" + string.Join("\n", failures.Take(10)));
    }

    [Test]
    public void Ascii_is_returned_unchanged_and_hangul_composes()
    {
        const string ascii = "plain ASCII text 123";
        Assert.That(ReferenceEquals(UnicodeNormalization.Normalize(ascii, NormalizationForm.FormC), ascii), Is.True);
        Assert.That(UnicodeNormalization.Normalize("\u1100\u1161\u11A8", NormalizationForm.FormC), Is.EqualTo("\uAC01"));
        Assert.That(UnicodeNormalization.Normalize("\uAC01", NormalizationForm.FormD), Is.EqualTo("\u1100\u1161\u11A8"));
        Assert.That(UnicodeNormalization.Normalize("e\u0301", NormalizationForm.FormC), Is.EqualTo("\u00E9"));
        Assert.That(UnicodeNormalization.Normalize("ﬁ½", NormalizationForm.FormKC), Is.EqualTo("fi1\u20442"));
    }

    private static string Hex(string s) => string.Join(" ", s.EnumerateRunes().Select(r => r.Value.ToString("X4")));
}
