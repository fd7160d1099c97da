using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace SafeCoDe.Torch.Tests.Cli;

/// <summary>The safecode command run in-process, as a user runs it.</summary>
public class CliTests
{
    private static (int code, string stdout, string stderr) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SafeCoDe.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string Fixture(string rel) => Path.Combine(TestPaths.Root, "weights", "fixtures", rel);

    private static readonly Regex VerifyLine = new(
        @"^verify: (PASS|FAIL) family=(\w+) logits_rel_err=(\d\.\d\de[+-]\d\d) noised_rel_err=(\d\.\d\de[+-]\d\d) greedy_match=(\d+)/(\d+)$");

    [Test]
    public void Help_TeachesEveryCommand()
    {
        var (code, o, _) = Run("--help");
        Assert.That(code, Is.EqualTo(0));
        Assert.That(o, Does.Contain("inspect").And.Contain("verify").And.Contain("doctor").And.Contain("SAFECODE_LIBTORCH"));
    }

    [Test]
    public void UnknownCommandOrOption_ExitsWith2AndSaysWhy()
    {
        var (code, _, e) = Run("frobnicate");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(e, Does.Contain("unknown command 'frobnicate'"));
        (code, _, e) = Run("inspect", "--model", Fixture("llava/hub"), "--jsn");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(e, Does.Contain("unknown option: --jsn"));
        (code, _, e) = Run("inspect");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(e, Does.Contain("'--model' is required"));
    }

    [Test]
    public void Inspect_TextAndJson()
    {
        var (code, o, _) = Run("inspect", "--model", Fixture("qwen2_vl/hub"));
        Assert.That(code, Is.EqualTo(0));
        Assert.That(o, Does.Contain("family     qwen2_vl").And.Contain("mrope_section=[2,3,3]").And.Contain("model.safetensors"));
        (code, o, _) = Run("inspect", "--model", Fixture("qwen2_vl/hub"), "--json");
        Assert.That(code, Is.EqualTo(0));
        var j = JsonNode.Parse(o)!;
        Assert.That(j["family"]!.GetValue<string>(), Is.EqualTo("qwen2_vl"));
        Assert.That(j["parameters_by_component"]!["vision"]!.GetValue<long>(), Is.GreaterThan(0));
        Assert.That(j["text"]!["layers"]!.GetValue<int>(), Is.EqualTo(2));
    }

    [Test]
    public void Inspect_MissingFolder_IsAClearError()
    {
        var (code, _, e) = Run("inspect", "--model", "/nonexistent/model");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(e, Does.Contain("/nonexistent/model").And.Contain("not found"));
    }

    [Test]
    public void Verify_PassEndsWithTheSummaryLine()
    {
        var (code, o, _) = Run("verify", "--model", Fixture("llava_next/v5"));
        var last = o.TrimEnd().Split('\n')[^1];
        var m = VerifyLine.Match(last);
        Assert.That(m.Success, Is.True, last);
        Assert.That(m.Groups[1].Value, Is.EqualTo("PASS"));
        Assert.That(m.Groups[2].Value, Is.EqualTo("llava_next"));
        Assert.That(m.Groups[5].Value, Is.EqualTo(m.Groups[6].Value));
        Assert.That(code, Is.EqualTo(0));
        Assert.That(o, Does.Contain("logits_noised"));
    }

    [Test]
    public void Verify_WrongReference_Fails()
    {
        // the llava reference's token ids run through the llava_next model: the comparison must fail, not crash
        var (code, o, _) = Run("verify", "--model", Fixture("llava/hub"), "--reference", Path.Combine(Fixture("llava/v5"), "reference.safetensors"), "--dtype", "float32");
        Assert.That(code, Is.EqualTo(0), "same weights, other layout: must pass");
        (code, o, _) = Run("verify", "--model", Fixture("llava_next/hub"), "--reference", Path.Combine(Fixture("llava/hub"), "reference.safetensors"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(o.TrimEnd().Split('\n')[^1], Does.StartWith("verify: FAIL family=llava_next"));
    }

    [Test]
    public void Verify_ErrorsGiveTheOneLineFailForm()
    {
        var (code, o, _) = Run("verify", "--model", "/nonexistent/model");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(o.Trim(), Does.StartWith("verify: FAIL family=unknown error=").And.Contain("/nonexistent/model"));
        Assert.That(o.Trim().Split('\n'), Has.Length.EqualTo(1));

        (code, o, _) = Run("verify", "--model", Fixture("llava/hub"), "--dtype", "int3");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(o.Trim(), Does.StartWith("verify: FAIL family=llava error=unknown dtype 'int3'"));
    }

    [Test]
    public void Verify_Bfloat16_PassesAtItsTolerance()
    {
        var (code, o, _) = Run("verify", "--model", Fixture("llava/v5"), "--dtype", "bfloat16");
        var m = VerifyLine.Match(o.TrimEnd().Split('\n')[^1]);
        Assert.That(m.Success, Is.True, o);
        Assert.That(double.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(3e-2).And.GreaterThan(1e-4),
            "bf16 differs from fp32 by more than fp32 rounding, less than the bound");
        Assert.That(code, Is.EqualTo(0));
    }

    [Test]
    public void Doctor_ReportsTheLoaderPath()
    {
        var (code, o, _) = Run("doctor", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(0), o);
        var j = JsonNode.Parse(o)!;
        Assert.That(j["backend"]!.GetValue<string>(), Is.EqualTo("cpu"));
        Assert.That(j["compat_used"]!.GetValue<bool>(), Is.EqualTo(GlobalSetup.Runtime.CompatUsed));
        Assert.That(j["libtorchsharp"]!.GetValue<string>(), Is.EqualTo(GlobalSetup.Runtime.LibTorchSharpPath));
        Assert.That(j["smoke_test"]!.GetValue<string>(), Does.StartWith("ok"));
        Assert.That(j["cuda_unavailable_reason"]!.GetValue<string>(), Is.Not.Empty);
    }
}
