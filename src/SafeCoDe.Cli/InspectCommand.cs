using System.CommandLine;
using SafeCoDe.Torch.Checkpoints;

namespace SafeCoDe.Cli;

/// <summary><c>safecode inspect</c>: describe a checkpoint folder from its headers.</summary>
public static class InspectCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var model = CliOptions.Model("Hugging Face checkpoint folder (config.json + *.safetensors)");
        var json = CliOptions.Json();
        var cmd = new Command("inspect", """
            Describe a Hugging Face checkpoint folder: family, config summary, parameter counts per component, dtypes,
            files. Reads headers only; runs no model.
            """) { model, json };
        Cli.SetExamples(cmd, "safecode inspect --model weights/fixtures/qwen2_5_vl/hub", "safecode inspect --model weights/llava-next-tiny --json");
        cmd.SetHandler((p, io) =>
        {
            var report = InspectReport.From(ModelDirectory.Open(p.GetValue(model)!));
            io.Out.WriteLine(p.GetValue(json) ? report.ToJson() : report.ToText());
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
