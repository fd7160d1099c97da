using SafeCoDe.Cli;

using var sigint = CliCancel.Install(Console.Out, Console.Error);
return Cli.Run(args);
