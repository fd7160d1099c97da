using SafeCoDe.Cli;

return Cli.Run(args);
