using NUnit.Framework;
using SafeCoDe.Torch.Processing.Tokenizers;

namespace SafeCoDe.Torch.Tests.Processing.Tokenizers;

/// <summary><c>safecode tokenize</c> run in-process through <see cref="SafeCoDe.Cli.Cli.Run"/> with stdin redirected.</summary>
[NonParallelizable]
public sealed class TokenizeCommandTests
{
    private string _llama = null!, _qwen = null!;

    [OneTimeSetUp]
    public void Setup()
    {
        // folders holding only tokenizer.json + tokenizer_config.json
        _llama = TokenizerTestData.MaterializeHfFolder("llama2");
        _qwen = TokenizerTestData.MaterializeHfFolder("qwen3");
    }

    [OneTimeTearDown]
    public void Cleanup() { Directory.Delete(_llama, true); Directory.Delete(_qwen, true); }

    private static (int Code, string Out, string Err) Run(string stdin, params string[] args)
    {
        var saved = Console.In;
        var o = new StringWriter();
        var e = new StringWriter();
        try
        {
            Console.SetIn(new StringReader(stdin));
            int code = SafeCoDe.Cli.Cli.Run(args, o, e);
            return (code, o.ToString(), e.ToString());
        }
        finally { Console.SetIn(saved); }
    }

    [Test]
    public void Plain_lines_give_one_json_array_each_without_bos()
    {
        var (code, output, err) = Run("Hello world\n<s>Hi</s>\n\n😀\n", "tokenize", "--model", _llama);
        Assert.That(code, Is.EqualTo(0), err);
        var tok = TokenizerLoader.Load(_llama);
        string Arr(string s) => "[" + string.Join(",", tok.Encode(s, false)) + "]";
        Assert.That(output, Is.EqualTo($"[22557,1526]\n[1,15359,2]\n[]\n{Arr("😀")}\n"));
    }

    [Test]
    public void Add_special_tokens_adds_bos()
    {
        var (code, output, err) = Run("Hello world\n", "tokenize", "--model", _llama, "--add-special-tokens");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Is.EqualTo("[1,22557,1526]\n"));
    }

    [Test]
    public void Jsonl_lines_are_json_string_literals()
    {
        var (code, output, err) = Run("\"<|im_start|>user\\nHi<|im_end|>\"\n\"\"\n\"tab\\there\"\n", "tokenize", "--model", _qwen, "--jsonl");
        Assert.That(code, Is.EqualTo(0), err);
        var tok = TokenizerLoader.Load(_qwen);
        Assert.That(output, Is.EqualTo($"[151644,872,198,13048,151645]\n[]\n[{string.Join(",", tok.Encode("tab\there", false))}]\n"));
    }

    [Test]
    public void Errors_are_reported()
    {
        var (code, _, err) = Run("x\n", "tokenize");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("'--model' is required"));

        (code, _, err) = Run("x\n", "tokenize", "--model", Path.Combine(_llama, "missing"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("does not exist"));

        (code, _, err) = Run("not json\n", "tokenize", "--model", _llama, "--jsonl");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(err, Does.Contain("line 1: not a JSON string literal"));

        (code, _, err) = Run("x\n", "tokenize", "--model", _llama, "--jsnol");
        Assert.That(code, Is.EqualTo(2));
        Assert.That(err, Does.Contain("--jsnol"));
    }
}
