using NUnit.Framework;
using SafeCoDe.Torch.Checkpoints;
using SafeCoDe.Torch.Processing.Chat;
using SafeCoDe.Torch.Processing.Images;

namespace SafeCoDe.Torch.Tests.Processing.Chat;

/// <summary>Golden strings: what each family's official chat template (and the reference code's prompt) renders.</summary>
public class ChatFormatTests
{
    private static readonly ChatTurn[] OneImage = [ChatTurn.User("What is this?", 1)];

    private static string Render(string family, PromptStyle style, IReadOnlyList<ChatTurn> turns, params ImageLayout[] layouts)
    {
        var f = ChatFormat.For(family, style);
        return f.ExpandImages(f.Render(turns, addGenerationPrompt: true), layouts);
    }

    private static ImageLayout Tokens(int n) => new(80, 60, n);

    [TestCase(ModelFamilies.Llava)]
    [TestCase(ModelFamilies.LlavaNext)]
    public void Llava(string family)
    {
        Assert.That(Render(family, PromptStyle.Official, OneImage, Tokens(3)), Is.EqualTo("USER: <image><image><image>\nWhat is this? ASSISTANT:"));
        // the llava-hf template: system text without a role prefix, every text followed by a space, images first
        var turns = new[] { ChatTurn.System("Be brief."), ChatTurn.User("Q1", 1), ChatTurn.Assistant("A1"), ChatTurn.User("Q2") };
        Assert.That(Render(family, PromptStyle.Official, turns, Tokens(1)), Is.EqualTo("Be brief. USER: <image>\nQ1 ASSISTANT: A1 USER: Q2 ASSISTANT:"));
    }

    [TestCase(ModelFamilies.Qwen2VL)]
    [TestCase(ModelFamilies.Qwen25VL)]
    public void Qwen(string family)
    {
        Assert.That(Render(family, PromptStyle.Official, OneImage, Tokens(2)), Is.EqualTo(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>What is this?<|im_end|>\n<|im_start|>assistant\n"));
        Assert.That(Render(family, PromptStyle.Reference, OneImage, Tokens(1)), Does.EndWith("<|im_start|>assistant\n\nassistant:"), "the reference code's extra suffix");
        var custom = new[] { ChatTurn.System("Only JSON."), ChatTurn.User("Hi") };
        Assert.That(Render(family, PromptStyle.Official, custom), Is.EqualTo("<|im_start|>system\nOnly JSON.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    }

    [Test]
    public void Idefics3_SplitImageAndGlobalTile()
    {
        var layout = new ImageLayout(80, 60, 20, Tiles: 5, Rows: 2, Cols: 2, TokensPerTile: 4);
        string img4 = "<image><image><image><image>";
        var expected = "<|im_start|>User:"
            + "<fake_token_around_image><row_1_col_1>" + img4 + "<fake_token_around_image><row_1_col_2>" + img4 + "\n"
            + "<fake_token_around_image><row_2_col_1>" + img4 + "<fake_token_around_image><row_2_col_2>" + img4 + "\n"
            + "\n<fake_token_around_image><global-img>" + img4 + "<fake_token_around_image>"
            + "What is this?<end_of_utterance>\nAssistant:";
        Assert.That(Render(ModelFamilies.Idefics3, PromptStyle.Official, OneImage, layout), Is.EqualTo(expected));
        var single = new ImageLayout(40, 40, 4, TokensPerTile: 4);
        Assert.That(Render(ModelFamilies.Idefics3, PromptStyle.Official, OneImage, single),
            Is.EqualTo("<|im_start|>User:<fake_token_around_image><global-img>" + img4 + "<fake_token_around_image>What is this?<end_of_utterance>\nAssistant:"));
        Assert.That(Render(ModelFamilies.Idefics3, PromptStyle.Official, [ChatTurn.User("Hi")]), Is.EqualTo("<|im_start|>User: Hi<end_of_utterance>\nAssistant:"));
    }

    [Test]
    public void Idefics_OfficialAndReference()
    {
        Assert.That(Render(ModelFamilies.Idefics, PromptStyle.Official, OneImage, Tokens(1)),
            Is.EqualTo("User:<fake_token_around_image><image><fake_token_around_image>What is this?<end_of_utterance>\nAssistant:"));
        Assert.That(Render(ModelFamilies.Idefics, PromptStyle.Reference, OneImage, Tokens(1)),
            Is.EqualTo("user:<fake_token_around_image><image><fake_token_around_image>What is this?ASSISTANT:"));
        var two = ChatFormat.For(ModelFamilies.Idefics).Render([ChatTurn.User("Compare", 2)], true);
        Assert.That(IdeficsFormat.CollapseFakes(ChatFormat.For(ModelFamilies.Idefics).ExpandImages(two, [Tokens(1), Tokens(1)])),
            Does.StartWith("User:<fake_token_around_image><image><fake_token_around_image><image><fake_token_around_image>Compare"), "consecutive images share fake tokens");
    }

    [Test]
    public void InstructBlip_RawInstructionOrReferenceMarker()
    {
        var f = ChatFormat.For(ModelFamilies.InstructBlip);
        Assert.That(f.Render([ChatTurn.User("What is this?")], true), Is.EqualTo("What is this?"));
        Assert.That(ChatFormat.For(ModelFamilies.InstructBlip, PromptStyle.Reference).Render([ChatTurn.User("What is this?")], true), Is.EqualTo("What is this?ANSWER_BEGINS_HERE:"));
    }

    [Test]
    public void PlaceholderCountMustMatchTheImages()
    {
        var f = ChatFormat.For(ModelFamilies.Llava);
        var rendered = f.Render(OneImage, true);
        Assert.Throws<ArgumentException>(() => f.ExpandImages(rendered, []));
        Assert.Throws<NotSupportedException>(() => ChatFormat.For("gpt9"));
    }
}
